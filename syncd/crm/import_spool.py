"""The check pass's accepted lines, kept for the apply pass: each valid line as the values
it applies (address, contact fields, lists, consent records, purchases), one compact JSON
array per line in an anonymous temporary file. The apply pass reads them back in file
order instead of decoding and validating every line a second time (pydantic, the address
check and the JSON decode were a quarter of a first import's time: docs/performance.md).

Memory stays bounded: records are written as they are checked and read back a chunk at a
time. The file holds personal data only while the import runs: it is created unlinked
(no name on disk, readable by this process only) and gone when it is closed or the
process ends. Nothing from the file is evaluated: the values are plain JSON, turned into
the same records the check built (timestamps and days by `fromisoformat`)."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import IO, Any

from syncd.addresses import Address
from syncd.consent.ledger import ConsentRecord
from syncd.consent.policy import Action
from syncd.crm.import_format import ImportRecord
from syncd.crm.import_purchases import PurchaseLine

_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)
_DECODER = json.JSONDecoder()
_ACTIONS = {str(action): action for action in Action}


@dataclass(slots=True)
class Checked:
    """A line that passed every check: what the apply pass writes for it."""

    line: int
    address: Address
    first_name: str | None
    last_name: str | None
    crm_id: str | None
    customer: bool | None
    attributes: Mapping[str, str] | None
    lists: Sequence[str]
    records: Sequence[ConsentRecord]
    purchases: Sequence[PurchaseLine]


def checked(record: ImportRecord) -> Checked:
    """The record as the apply pass takes it (for a line it had to check itself)."""
    data = record.data
    return Checked(record.line, record.address, data.first_name, data.last_name,
                   data.crm_id, data.customer, data.attributes, data.lists, record.records,
                   data.purchases)


def _row(record: ImportRecord) -> list[Any]:
    data = record.data
    return [record.line, record.address.key, record.address.display, data.first_name,
            data.last_name, data.crm_id, data.customer, data.attributes, data.lists,
            [[c.purpose, c.action, c.at.isoformat(), c.source, c.form_url, c.text_version,
              c.privacy_notice_version, c.ip, c.user_agent, c.confirmation_token_hash]
             for c in data.consents],
            [[p.day.isoformat(), p.category, p.paid] for p in data.purchases]]


def _load(raw: bytes) -> Checked:
    (line, key, display, first_name, last_name, crm_id, customer, attributes, lists,
     consents, purchases) = _DECODER.decode(raw.decode("utf-8"))
    return Checked(
        line, Address(key, display), first_name, last_name, crm_id, customer, attributes,
        lists,
        [ConsentRecord(c[0], _ACTIONS[c[1]], datetime.fromisoformat(c[2]), *c[3:])
         for c in consents],
        [PurchaseLine.model_construct(day=date.fromisoformat(day), category=category,
                                      paid=paid) for day, category, paid in purchases])


@contextmanager
def spool() -> Iterator[Spool]:
    """A spool in an unlinked temporary file, closed (and so gone) at the block's end."""
    with tempfile.TemporaryFile(prefix="syncd-import-") as file:
        yield Spool(file)


class Spool:
    """Write every accepted record in file order, then `take` them back chunk by chunk."""

    def __init__(self, file: IO[bytes]) -> None:
        self._file = file
        self.written = 0  # records written so far
        self._reading = False
        self._next: Checked | None = None

    def write(self, records: Sequence[ImportRecord]) -> None:
        self.written += len(records)
        self._file.write(b"".join((_ENCODER.encode(_row(r)) + "\n").encode()
                                  for r in records))

    def take(self, last_line: int) -> dict[int, Checked]:
        """The records of the lines up to `last_line` not taken yet, by line number."""
        if not self._reading:
            self._file.seek(0)
            self._reading = True
        found: dict[int, Checked] = {}
        while True:
            if self._next is None:
                raw = self._file.readline()
                if not raw:
                    return found
                self._next = _load(raw)
            if self._next.line > last_line:
                return found
            found[self._next.line] = self._next
            self._next = None
