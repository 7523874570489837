"""`make bench`: every benchmark, one after the other, on this machine.

Each script writes its figures to benchmarks/results/*.json and prints a table; the
README's "Performance" section quotes those files. Timings are never asserted anywhere:
these 2-core machines are noisy, so read medians and side-by-side ratios.

    python benchmarks/run_all.py            # default sizes (takes several minutes)
    python benchmarks/run_all.py --quick    # smaller sizes, for a first look
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    args = parser.parse_args()
    runs = [
        ["push_bench.py", *(["--contacts", "5000"] if args.quick else [])],
        ["webhook_bench.py", *(["--seconds", "3"] if args.quick else [])],
        ["import_bench.py", *(["--sizes", "10000"] if args.quick else [])],
        ["signup_bench.py", *(["--quick"] if args.quick else [])],
    ]
    failed = []
    for script, *options in runs:
        print(f"\n=== {script} {' '.join(options)}", flush=True)
        result = subprocess.run([sys.executable, str(HERE / script), *options],
                                check=False, env=os.environ.copy())
        if result.returncode != 0:
            failed.append(script)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
        return 1
    print(f"\nresults in {HERE / 'results'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
