"""`python -m syncd.service.healthcheck`: the container HEALTHCHECK (the slim image has no
curl). Asks the local `/healthz` on SYNCD_HTTP_PORT (default 8080); exit 0 if it answers
200, else 1. Liveness only: a database outage must not get the container restarted."""

from __future__ import annotations

import os
import sys
import urllib.request

TIMEOUT_SECONDS = 4


def main() -> int:
    port = os.environ.get("SYNCD_HTTP_PORT", "8080")
    try:
        with urllib.request.urlopen(
                f"http://127.0.0.1:{port}/healthz", timeout=TIMEOUT_SECONDS) as answer:
            return 0 if answer.status == 200 else 1
    except OSError as exc:
        print(f"syncd healthcheck: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
