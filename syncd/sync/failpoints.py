"""Test hook for crash tests (I8): `SYNCD_FAILPOINT=<name>` makes the process kill
itself, like `kill -9`, the first time it reaches that point of a sync run:

- `before_push`: contacts planned and attempt markers written, no ESP write made yet;
- `after_push_before_checkpoint`: the ESP confirmed a write, push_state not updated;
- `after_checkpoint`: the first checkpoint committed, the run not finished.

Harmless when unset (the default); never set it in production.
"""

from __future__ import annotations

import os
import sys

ENV = "SYNCD_FAILPOINT"
NAMES = ("before_push", "after_push_before_checkpoint", "after_checkpoint")
KILLED_EXIT_CODE = 137  # what a shell reports for a process killed by SIGKILL


def reached(name: str) -> None:
    if os.environ.get(ENV) == name:
        sys.stderr.flush()
        os._exit(KILLED_EXIT_CODE)  # no cleanup, no commit, no unlock: a real crash
