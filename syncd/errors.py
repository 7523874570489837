"""Error roots. Configuration errors stay outside `SyncdError` on purpose: a broad
`except SyncdError` in a sync loop must never swallow a bad setting."""

from __future__ import annotations


class ConfigError(Exception):
    """A setting is missing or wrong; the message names the setting."""


class SyncdError(Exception):
    """Base for every runtime error syncd raises on purpose."""


class InputError(SyncdError):
    """Bad input from a user or a file; the message names the problem."""
