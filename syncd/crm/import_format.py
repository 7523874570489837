"""One import record, validated: the shape of a JSONL line (docs/import-format.md) and
the checks that need the configuration (known lists and purposes) or the clock.

Errors name the field and the problem, never the value: an address in a bad line must
not reach a terminal, a log or a CI transcript (I9)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)

from syncd.addresses import Address, parse_address
from syncd.clock import parse_timestamp
from syncd.consent.ledger import ConsentRecord
from syncd.consent.policy import Action
from syncd.crm import import_purchases
from syncd.crm.import_purchases import PurchaseLine
from syncd.errors import InputError

# Versioned: a change of what the content hash covers, or of the line checks, starts the
# next version (nothing then matches: every line is checked and applied once).
CONTENT_HASH_VERSION = "syncd-import-v2"
PRECHECKED_MESSAGE = "a pre-ticked box is not consent (rule 2, CJEU Planet49 C-673/17)"
DEFAULT_SOURCE = "import"
# Bounds on every field, so that no line stores more than a contact can need.
MAX_EMAIL = 320  # RFC 5321: 64 local + @ + 255 domain
MAX_ATTRIBUTES = 100
MAX_LISTS = 100
MAX_CONSENTS = 500
AttributeName = Annotated[str, StringConstraints(min_length=1, max_length=100)]
AttributeValue = Annotated[str, StringConstraints(max_length=2000)]
ListName = Annotated[str, StringConstraints(max_length=100)]


@dataclass(frozen=True)
class LineError:
    line: int
    field: str | None
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" + (f", field {self.field}" if self.field else "")
        return f"{where}: {self.message}"


def _timestamp(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return parse_timestamp(value)
        except ValueError:
            raise ValueError("not an ISO 8601 timestamp (e.g. 2026-03-01T09:00:00Z)") from None
    if isinstance(value, datetime):
        return value
    raise ValueError("must be an ISO 8601 timestamp string")


class ConsentLine(BaseModel):
    """One consent event as an import line states it (rule 4: the evidence)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    purpose: str = Field(min_length=1, max_length=64)
    action: Literal["given", "confirmed", "withdrawn", "soft_opt_in"]
    at: datetime
    source: str = Field(default=DEFAULT_SOURCE, min_length=1, max_length=64)
    form_url: str | None = Field(default=None, max_length=2000)
    text_version: str | None = Field(default=None, max_length=200)
    privacy_notice_version: str | None = Field(default=None, max_length=200)
    ip: str | None = Field(default=None, max_length=64)
    user_agent: str | None = Field(default=None, max_length=1000)
    prechecked: bool = False
    confirmation_token_hash: str | None = Field(default=None, max_length=200)

    _at = field_validator("at", mode="before")(_timestamp)

    def record(self) -> ConsentRecord:
        return ConsentRecord(
            purpose=self.purpose, action=Action(self.action), occurred_at=self.at,
            source=self.source, form_url=self.form_url, text_version=self.text_version,
            privacy_notice_version=self.privacy_notice_version, ip=self.ip,
            user_agent=self.user_agent, confirmation_token_hash=self.confirmation_token_hash)


class ContactLine(BaseModel):
    """One contact with its lists and consent events."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    email: str = Field(max_length=MAX_EMAIL)
    first_name: str | None = Field(default=None, max_length=200)
    last_name: str | None = Field(default=None, max_length=200)
    crm_id: str | None = Field(default=None, min_length=1, max_length=200)
    # An existing customer: the soft opt-in basis (rule 7), never newsletter consent.
    customer: bool | None = None
    attributes: dict[AttributeName, AttributeValue] | None = Field(
        default=None, max_length=MAX_ATTRIBUTES)
    lists: list[ListName] = Field(default_factory=list, max_length=MAX_LISTS)
    consents: list[ConsentLine] = Field(default_factory=list, max_length=MAX_CONSENTS)
    # The soft opt-in basis (rule 11): syncd.crm.import_purchases.
    purchases: list[PurchaseLine] = Field(default_factory=list,
                                          max_length=import_purchases.MAX_PURCHASES)


@dataclass(frozen=True)
class ImportRecord:
    """A line that passed every check, ready to apply."""

    line: int
    address: Address
    data: ContactLine

    @property
    def records(self) -> list[ConsentRecord]:
        return [consent.record() for consent in self.data.consents]


@dataclass(frozen=True)
class Vocabulary:
    """What the configuration knows: list names and purposes."""

    lists: frozenset[str]
    purposes: frozenset[str]


def _field_name(loc: Iterable[int | str]) -> str:
    name = ""
    for part in loc:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name


def _message(error: Mapping[str, Any], allowed: Iterable[str]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"unknown key (allowed: {', '.join(sorted(allowed))})"
    if kind == "missing":
        return "required but missing"
    if kind == "literal_error":
        return "must be one of: given, confirmed, withdrawn, soft_opt_in"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def _allowed_keys(loc: tuple[int | str, ...]) -> Iterable[str]:
    if "purchases" in loc[:-1]:
        return ("date", "category", "paid")
    return ConsentLine.model_fields if "consents" in loc[:-1] else ContactLine.model_fields


def check(line: int, raw: Any, vocabulary: Vocabulary, now: datetime, *,
          address: Address | None = None) -> ImportRecord | list[LineError]:
    """Validate one decoded line: a record, or every problem found in it. `address`: the
    line's address as `parse_address` already gave it for this line's `email` (the
    importer's apply pass parses it for the content-hash skip), so it is not parsed
    again."""
    if not isinstance(raw, dict):
        return [LineError(line, None, f"expected a JSON object, got {_json_kind(raw)}")]
    errors: list[LineError] = []
    try:
        data = ContactLine.model_validate(raw)
    except ValidationError as exc:
        for error in exc.errors(include_input=False, include_url=False):
            loc = tuple(error["loc"])
            errors.append(LineError(line, _field_name(loc) or None,
                                    _message(error, _allowed_keys(loc))))
        # The address is checked even when other fields are wrong: report it too.
        email = raw.get("email")
        if isinstance(email, str) and not any(e.field == "email" for e in errors):
            _address(line, email, errors)
        return errors
    if address is None:
        address = _address(line, data.email, errors)
    for index, name in enumerate(data.lists):
        if name not in vocabulary.lists:
            errors.append(LineError(line, f"lists[{index}]",
                                    f"unknown list {name!r} (configured: "
                                    f"{', '.join(sorted(vocabulary.lists))})"))
    for index, consent in enumerate(data.consents):
        errors.extend(_check_consent(line, index, consent, vocabulary, now))
    errors.extend(LineError(*problem) for problem in
                  import_purchases.check(line, data.purchases, now.date()))
    if errors or address is None:
        return errors
    return ImportRecord(line=line, address=address, data=data)


def _address(line: int, email: str, errors: list[LineError]) -> Address | None:
    try:
        return parse_address(email)
    except InputError as exc:
        # parse_address never repeats the address in its message.
        reason = str(exc).removeprefix("email address is not valid: ")
        errors.append(LineError(line, "email", f"not a valid address: {reason}"))
        return None


def _check_consent(line: int, index: int, consent: ConsentLine, vocabulary: Vocabulary,
                   now: datetime) -> list[LineError]:
    where = f"consents[{index}]"
    errors = []
    if consent.purpose not in vocabulary.purposes:
        errors.append(LineError(line, f"{where}.purpose",
                                f"unknown purpose {consent.purpose!r} (known: "
                                f"{', '.join(sorted(vocabulary.purposes))})"))
    if consent.prechecked:
        if consent.action in ("given", "confirmed"):
            errors.append(LineError(line, f"{where}.prechecked", PRECHECKED_MESSAGE))
        else:
            errors.append(LineError(line, f"{where}.prechecked",
                                    f"only a consent being given can be pre-ticked, "
                                    f"not {consent.action!r}"))
    if consent.at > now:
        errors.append(LineError(line, f"{where}.at", "is in the future"))
    return errors


def _json_kind(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


def hash_prefix(vocabulary: Vocabulary) -> bytes:
    """What every line's content hash starts with: the version and the configuration the
    line was checked against. A line whose hash a contact holds passed every check of
    this version with these lists and purposes (the clock only moves on: a timestamp in
    the past stays there), so a re-import need not check it again; a change of either
    makes every line new once."""
    known = json.dumps([sorted(vocabulary.lists), sorted(vocabulary.purposes)])
    return f"{CONTENT_HASH_VERSION}:{known}:".encode()


def content_hash(prefix: bytes, content: bytes) -> str:
    """SHA-256 of a line's content as the reader gives it (syncd.crm.import_readers.Line:
    a JSONL line as written, a CSV row as canonical JSON) after `hash_prefix`: hashed
    before decoding, so that an unchanged line of a re-import costs a hash and a look-up,
    not a parse and a check (syncd.store.import_marks). A line written differently
    (another key order) is simply applied again, which changes nothing."""
    return hashlib.sha256(prefix + content).hexdigest()
