"""Documented exit codes of every `syncd` command (README, "Exit codes")."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1  # the run failed (ESP unreachable, run-level ESP error, database down)
    CONFIG = 2  # a setting is missing or wrong, or the command line is wrong
    INVALID_INPUT = 3  # input (an import file, an address) was refused; nothing written
    REFUSED = 4  # the safety limit refused the plan (use --force if intended)
    BUSY = 5  # another run holds the single-runner lock; nothing done
    PARTIAL = 6  # the run finished, but some contacts were parked or failed
    NOT_FOUND = 7  # the contact or object asked for does not exist
    # `syncd audience audit`: somebody is mailed against or without the ledger.
    AUDIT_FINDINGS = 8
