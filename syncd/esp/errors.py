"""ESP errors carry their decision (permanent or transient) with status and detail.

`EspConfigurationError` (bad API key, unknown audience) fails a run loudly;
`EspPermanentError` parks one contact; `EspTransientError` is retried with backoff."""

from __future__ import annotations

from syncd.errors import SyncdError


class EspError(SyncdError):
    def __init__(self, message: str, *, status: int | None = None, title: str | None = None,
                 detail: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.detail = detail


class EspTransientError(EspError):
    """Retry later: 429, bodyless 403, 5xx, timeouts, resets, temporary refusals."""

    def __init__(self, message: str, *, status: int | None = None, title: str | None = None,
                 detail: str | None = None, throttled: bool = False) -> None:
        super().__init__(message, status=status, title=title, detail=detail)
        self.throttled = throttled


class EspPermanentError(EspError):
    """Never retry as is: compliance state, forgotten address, fake address, merge fields.
    Parks the contact until it changes."""


class EspConfigurationError(EspError):
    """Run-level: 401 API Key Invalid, 403 forbidden, 404 unknown audience."""
