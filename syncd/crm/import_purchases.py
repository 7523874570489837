"""The `purchases` of an import line (docs/import-format.md): day, product category, paid
or not; the soft opt-in basis (docs/consent-rules.md rules 7 and 11) rests on them. Checked
with the line (a bad purchase names its line and field and refuses that line only) and
written with its chunk, in one statement."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.orm import Session

from syncd.store import purchases
from syncd.store.contacts import ContactRef

MAX_PURCHASES = 1000


def _day(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise ValueError("not an ISO 8601 date (e.g. 2026-03-01)") from None
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    raise ValueError("must be an ISO 8601 date string (e.g. 2026-03-01)")


class PurchaseLine(BaseModel):
    """One purchase: a quote or a free product is `paid: false` (no customer by it)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    day: date = Field(alias="date")
    category: str = Field(min_length=1, max_length=100)
    paid: bool

    _day = field_validator("day", mode="before")(_day)


def check(line: int, bought: Iterable[PurchaseLine], today: date
          ) -> list[tuple[int, str | None, str]]:
    """(line, field, message) for each purchase dated after today."""
    return [(line, f"purchases[{index}].date", "is in the future")
            for index, purchase in enumerate(bought) if purchase.day > today]


def apply(session: Session, items: Sequence[tuple[ContactRef, Sequence[PurchaseLine]]]
          ) -> int:
    """Write the purchases of a chunk's contacts; each contact that got a new one owes a
    revision bump (the sync looks at it again). Returns how many were added."""
    refs = {ref.id: ref for ref, _ in items}
    added = purchases.add(session, [(ref.id, p.day, p.category, p.paid)
                                    for ref, bought in items for p in bought])
    for cid in set(added):
        refs[cid].bumps += 1
    return len(added)
