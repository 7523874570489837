"""One sign-up as a form or the API states it, validated: every problem named by its field,
never by its value (an address in a bad request must not reach a log, I9).

Rule 2: a box that was pre-ticked is not consent; `prechecked` true in any spelling
refuses the whole sign-up with 422. Rule 1: one value per ticked box, each a configured
purpose. Rule 4: what the person was shown (text and privacy notice versions) is
required, so the consent can be shown later."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from syncd.addresses import Address, parse_address
from syncd.config import Settings
from syncd.crm.import_format import PRECHECKED_MESSAGE
from syncd.errors import InputError

TRUE = frozenset({"true", "1", "yes", "on", "y", "t", "checked", "ja", "waar"})
FALSE = frozenset({"false", "0", "no", "off", "n", "f", "", "nee", "onwaar"})
MAX_PURPOSES = 20
LIMITS = {"first_name": 200, "last_name": 200, "text_version": 200,
          "privacy_notice_version": 200, "form_url": 2000}
SINGLE = ("email", "first_name", "last_name", "text_version", "privacy_notice_version",
          "form_url", "language")
LANGUAGES = ("nl", "en")


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


@dataclass(frozen=True)
class SignupInput:
    address: Address
    purposes: tuple[str, ...]
    text_version: str
    privacy_notice_version: str
    first_name: str | None = None
    last_name: str | None = None
    form_url: str | None = None
    language: str | None = None


def offered_purposes(settings: Settings) -> list[str]:
    """The purposes syncd's own form and the preference page show: the audience's and
    every purpose of a marketing list (an e-book delivery list is not a subscription),
    the audience's first."""
    found = {settings.sync_purpose} | {c.purpose for c in settings.lists.values()
                                       if c.marketing}
    return sorted(found, key=lambda p: (p != settings.sync_purpose, p))


class BotTrap:
    """The honeypot was filled in: answered like a success, nothing recorded."""


def has_control(value: str) -> bool:
    """NUL and other control characters: never in a name, address or version (and
    PostgreSQL text refuses NUL outright)."""
    return any(ord(char) < 32 or 127 <= ord(char) < 160 for char in value)


def _is_prechecked_key(key: str) -> bool:
    return key.lower().replace("-", "").replace("_", "").startswith("prechecked")


def _one(fields: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = fields.get(name)
    if not values:
        return None
    return values[-1].strip() or None


def _check_keys(fields: Mapping[str, Sequence[str]], settings: Settings, strict: bool,
                errors: list[FieldError]) -> None:
    allowed = (*SINGLE, "purposes", settings.signup_honeypot_field)
    for key, values in fields.items():
        if any(has_control(value) for value in values):
            errors.append(FieldError(key[:64], "contains a control character"))
        elif _is_prechecked_key(key):
            for value in values:
                if value.strip().lower() in TRUE:
                    errors.append(FieldError(key, PRECHECKED_MESSAGE))
                elif value.strip().lower() not in FALSE:
                    errors.append(FieldError(key, "must be true or false"))
        elif key in SINGLE and len(values) > 1:
            errors.append(FieldError(key, "given more than once"))
        elif strict and key not in allowed:
            errors.append(FieldError(key, "unknown field (allowed: "
                                          + ", ".join(sorted((*SINGLE, "purposes"))) + ")"))


def _check_address(fields: Mapping[str, Sequence[str]],
                   errors: list[FieldError]) -> Address | None:
    email = _one(fields, "email")
    if email is None:
        errors.append(FieldError("email", "required but missing"))
        return None
    try:
        return parse_address(email)
    except InputError as exc:  # the message never repeats the address
        errors.append(FieldError("email", str(exc)))
        return None


def _check_purposes(fields: Mapping[str, Sequence[str]], settings: Settings,
                    errors: list[FieldError]) -> list[str]:
    purposes: list[str] = []
    for value in fields.get("purposes", ()):
        purpose = value.strip()
        if purpose not in settings.purposes:
            errors.append(FieldError("purposes", f"unknown purpose {purpose[:64]!r} (known: "
                                     + ", ".join(sorted(settings.purposes)) + ")"))
        elif purpose not in purposes:
            purposes.append(purpose)
    if len(purposes) > MAX_PURPOSES:
        errors.append(FieldError("purposes", f"at most {MAX_PURPOSES} purposes"))
    return purposes


def _check_texts(fields: Mapping[str, Sequence[str]], errors: list[FieldError]) -> None:
    for name in ("text_version", "privacy_notice_version"):
        if _one(fields, name) is None:
            errors.append(FieldError(name, "required: the version of the text the person "
                                           "was shown (rule 4)"))
    for name, limit in LIMITS.items():
        given = _one(fields, name)
        if given is not None and len(given) > limit:
            errors.append(FieldError(name, f"longer than {limit} characters"))
    form_url = _one(fields, "form_url")
    if form_url is not None and not form_url.startswith(("https://", "http://")):
        errors.append(FieldError("form_url", "must be an http(s) URL"))
    language = _one(fields, "language")
    if language is not None and language not in LANGUAGES:
        errors.append(FieldError("language", "must be nl or en"))


def parse_signup(fields: Mapping[str, Sequence[str]], settings: Settings, *,
                 strict: bool = False) -> SignupInput | BotTrap | list[FieldError]:
    """`fields`: every field with all its values (a form repeats `purposes`). `strict`
    (the JSON API) refuses unknown fields; a form may carry its submit button and more."""
    honeypot = fields.get(settings.signup_honeypot_field)
    if honeypot and any(value.strip() for value in honeypot):
        return BotTrap()
    errors: list[FieldError] = []
    _check_keys(fields, settings, strict, errors)
    address = _check_address(fields, errors)
    purposes = _check_purposes(fields, settings, errors)
    _check_texts(fields, errors)
    if errors or address is None:
        return errors
    return SignupInput(
        address=address, purposes=tuple(purposes),
        text_version=_one(fields, "text_version") or "",
        privacy_notice_version=_one(fields, "privacy_notice_version") or "",
        first_name=_one(fields, "first_name"), last_name=_one(fields, "last_name"),
        form_url=_one(fields, "form_url"), language=_one(fields, "language"))
