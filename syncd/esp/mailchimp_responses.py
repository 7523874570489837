"""The ONE place where a Mailchimp answer becomes success or a typed error.

The official client (mailchimp-marketing 3.0.80) hides failures in three ways, all
handled here:
- a response with an EMPTY body comes back as a plain `requests.Response` and does not
  raise, whatever its status (a bodyless 403/429 is Mailchimp throttling at volume);
- `ApiClientError.text` is a dict only for `application/json`; Mailchimp's
  `application/problem+json` errors arrive as a raw JSON string;
- transport failures (timeouts, resets) are wrapped as `ApiClientError(text=<exception>)`
  with no status code.

Messages never carry an address or the API key: they may be logged and stored.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import requests
from mailchimp_marketing.api_client import ApiClientError

from syncd.esp.errors import (
    EspConfigurationError,
    EspError,
    EspPermanentError,
    EspTransientError,
)

# "signed up to a lot of lists very recently" is a temporary refusal: Mailchimp asks to
# come back much later. syncd parks the contact and retries after this many hours.
RECENT_SIGNUPS_RETRY_HOURS = 6.0
_ADDRESS = re.compile(r"[^\s@'\"<>]+@[^\s@'\"<>]+\.[^\s@'\"<>]+")
# Where the audience id comes from: a target's, or the single-audience setting's.
_AUDIENCE_SETTING = ("the target's audience_id ([[targets]]), or SYNCD_MAILCHIMP_AUDIENCE_ID "
                     "([mailchimp] audience_id) with the single-audience settings")
_CONFIG_HINTS = {
    401: "Mailchimp refused the API key; check SYNCD_MAILCHIMP_API_KEY "
         "([mailchimp] api_key) and its datacenter suffix",
    403: "Mailchimp forbids this API key the audience; check SYNCD_MAILCHIMP_API_KEY "
         f"([mailchimp] api_key) and {_AUDIENCE_SETTING}",
    404: f"Mailchimp does not know this audience; check {_AUDIENCE_SETTING} and "
         "SYNCD_MAILCHIMP_BASE_URL",
}


class RecentSignupsError(EspTransientError):
    """Mailchimp's temporary refusal of an address that "signed up to a lot of lists very
    recently": retry after hours, not seconds (never retried inside the run)."""

    retry_after_hours = RECENT_SIGNUPS_RETRY_HOURS


class MemberMissingError(EspError):
    """A member-level 404 (the audience itself was verified first)."""


def scrub(text: str) -> str:
    """Remove addresses from an ESP message before it is logged or stored."""
    return _ADDRESS.sub("<address>", text)[:400]


@dataclass(frozen=True)
class Problem:
    status: int | None
    title: str
    detail: str
    fields: tuple[str, ...] = ()


def _problem(status: int | None, body: Any) -> Problem:
    doc: Any = body
    if isinstance(body, str | bytes):
        try:
            doc = json.loads(body)
        except ValueError:
            return Problem(status, "", scrub(body if isinstance(body, str) else ""))
    if not isinstance(doc, dict):
        return Problem(status, "", "")
    fields = tuple(str(e.get("field", "")) for e in doc.get("errors") or []
                   if isinstance(e, dict))
    return Problem(doc.get("status") if isinstance(doc.get("status"), int) else status,
                   str(doc.get("title") or ""), scrub(str(doc.get("detail") or "")), fields)


def classify_problem(problem: Problem, *, what: str, member_level: bool = False) -> EspError:
    """Turn a Mailchimp error (HTTP or batch item) into the typed error that carries the
    retry decision."""
    status, title, detail = problem.status, problem.title, problem.detail
    text = f"{title} {detail}".lower()
    message = f"{what}: Mailchimp answered {status or ''} {title}".strip() + (
        f" ({detail})" if detail else "")
    kwargs: dict[str, Any] = {"status": status, "title": title, "detail": detail}
    if "signed up to a lot of lists very recently" in text:
        return RecentSignupsError(message, **kwargs)
    if status == 429 or (status is not None and status >= 500):
        return EspTransientError(message, throttled=status == 429, **kwargs)
    if status == 404 and member_level:
        return MemberMissingError(message, **kwargs)
    if status in _CONFIG_HINTS:
        return EspConfigurationError(f"{message}. {_CONFIG_HINTS[status]}", **kwargs)
    if status == 400 or status is None:
        # Member In Compliance State, Forgotten Email Not Subscribed, "looks fake or
        # invalid", merge field errors: the same request can never succeed. Park it.
        return EspPermanentError(message, **kwargs)
    return EspPermanentError(message, **kwargs)


def _bodyless(response: requests.Response, what: str) -> EspError:
    status = response.status_code
    if status in (403, 429):
        # Mailchimp's edge answers throttling at high volume with an EMPTY 403 or 429.
        return EspTransientError(f"{what}: throttled by Mailchimp (HTTP {status}, no body)",
                                 status=status, throttled=True)
    return classify_problem(Problem(status, "", ""), what=what)


def interpret(result: Any, *, what: str) -> dict[str, Any] | None:
    """The official client's return value: a dict (JSON success), None (204 or another
    bodyless success); anything else raises the typed error."""
    if isinstance(result, dict):
        return result
    if isinstance(result, requests.Response):
        if result.ok:
            return None
        raise _bodyless(result, what)
    raise EspTransientError(f"{what}: unexpected answer from Mailchimp "
                            f"({type(result).__name__})")


def from_client_error(err: ApiClientError, *, what: str, member_level: bool = False) -> EspError:
    """`ApiClientError` -> typed error (transport failures included)."""
    text = err.text
    if isinstance(text, BaseException):
        kind = ("timeout" if isinstance(text, requests.Timeout)
                else "connection failed" if isinstance(text, requests.ConnectionError)
                else type(text).__name__)
        return EspTransientError(f"{what}: {kind} talking to Mailchimp")
    problem = _problem(err.status_code, text)
    return classify_problem(problem, what=what, member_level=member_level)


def batch_item_error(item: dict[str, Any]) -> EspError | None:
    """An `errors[]` item of the batch answer; None for ERROR_CONTACT_EXISTS (the member
    exists and was left untouched: not an error, an outcome)."""
    if item.get("error_code") == "ERROR_CONTACT_EXISTS":
        return None
    detail = scrub(str(item.get("error") or ""))
    field_name = str(item.get("field") or "")
    if field_name:
        detail = f"{detail} [{field_name}: {scrub(str(item.get('field_message') or ''))}]"
    lowered = detail.lower()
    title = ("Member In Compliance State" if "compliance state" in lowered
             else "Forgotten Email Not Subscribed" if "permanently deleted" in lowered
             else "Invalid Resource")
    return classify_problem(Problem(400, title, detail), what="add member",
                            member_level=True)
