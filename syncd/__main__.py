"""`python -m syncd`: the command line (syncd.cli)."""

from syncd.cli import main

main()
