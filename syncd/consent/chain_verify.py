"""`syncd ledger verify`: walk the consent ledger's hash chain in order and name the first
event that was changed, removed or put out of order (events and tombstones together,
page by page, so memory stays bounded for any size of ledger)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from syncd.consent.chain import GENESIS, HASHED_FIELDS, event_hash, head
from syncd.schema import ConsentEvent, LedgerTombstone

PAGE = 2000


@dataclass(frozen=True)
class Problem:
    # changed | removed | out_of_order | unlinked | head_mismatch | expected_head_missing
    kind: str
    message: str
    event_id: int | None = None
    seq: int | None = None


@dataclass
class Verdict:
    events: int = 0
    tombstones: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS
    problem: Problem | None = None
    checked: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.problem is None

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "events": self.events, "tombstones": self.tombstones,
                "head": {"seq": self.head_seq, "hash": self.head_hash},
                "problem": None if self.problem is None else {
                    "kind": self.problem.kind, "message": self.problem.message,
                    "event_id": self.problem.event_id, "seq": self.problem.seq}}


@dataclass(frozen=True)
class _Link:
    seq: int
    prev: str
    stored: str
    event_id: int
    tombstone: bool
    content: dict[str, Any] | None


_COLUMNS = [getattr(ConsentEvent, name) for name in HASHED_FIELDS]


def _walk(session: Session) -> Iterator[_Link]:
    """Events and tombstones merged by chain position, a page of each at a time."""
    after = 0
    while True:
        events = session.execute(
            select(ConsentEvent.chain_seq, ConsentEvent.chain_prev, ConsentEvent.chain_hash,
                   ConsentEvent.id, *_COLUMNS)
            .where(ConsentEvent.chain_seq > after).order_by(ConsentEvent.chain_seq)
            .limit(PAGE)).all()
        stones = session.execute(
            select(LedgerTombstone.seq, LedgerTombstone.prev_hash, LedgerTombstone.event_hash,
                   LedgerTombstone.event_id)
            .where(LedgerTombstone.seq > after).order_by(LedgerTombstone.seq)
            .limit(PAGE)).all()
        # A full page may continue: merge only up to where both pages are complete.
        ends = [int(page[-1][0]) for page in (events, stones) if len(page) == PAGE]
        bound = min(ends) if ends else None
        links = [_Link(int(r[0]), r[1], r[2], int(r[3]), False,
                       dict(zip(HASHED_FIELDS, r[4:], strict=True))) for r in events]
        links += [_Link(int(r[0]), r[1], r[2], int(r[3]), True, None) for r in stones]
        if bound is not None:
            links = [link for link in links if link.seq <= bound]
        if not links:
            return
        links.sort(key=lambda link: (link.seq, link.tombstone))
        yield from links
        after = links[-1].seq


def _holder_of(session: Session, link: str) -> tuple[int, int] | None:
    """(event id, chain position) of the event or tombstone whose link is `link`."""
    found = session.execute(select(ConsentEvent.id, ConsentEvent.chain_seq)
                            .where(ConsentEvent.chain_hash == link).limit(1)).first()
    if found is None:
        found = session.execute(select(LedgerTombstone.event_id, LedgerTombstone.seq)
                                .where(LedgerTombstone.event_hash == link).limit(1)).first()
    return None if found is None else (int(found[0]), int(found[1]))


def _name(link: _Link) -> str:
    what = "erased event" if link.tombstone else "event"
    return f"{what} {link.event_id} (chain position {link.seq})"


def verify(session: Session, *, expected: tuple[int, str] | None = None) -> Verdict:
    """Walk the whole chain. `expected`: a head exported earlier (position, link), which
    must still be in the chain: what catches a chain rewritten from the start."""
    verdict = Verdict()
    recorded = head(session)
    verdict.head_seq, verdict.head_hash = recorded.seq, recorded.hash
    prev, previous = GENESIS, None
    expected_found = expected is None
    for link in _walk(session):
        if link.tombstone:
            verdict.tombstones += 1
        else:
            verdict.events += 1
        if previous is not None and link.seq == previous.seq:
            verdict.problem = Problem("out_of_order", f"{_name(link)} shares its chain "
                                      f"position with {_name(previous)}", link.event_id,
                                      link.seq)
            return verdict
        if link.content is not None and event_hash(link.prev, link.content) != link.stored:
            verdict.problem = Problem(
                "changed", f"{_name(link)} was changed after it was written: its content "
                "no longer matches its hash", link.event_id, link.seq)
            return verdict
        if link.prev != prev:
            verdict.problem = _broken(session, link, previous)
            return verdict
        if expected is not None and link.seq == expected[0]:
            if link.stored != expected[1]:
                verdict.problem = Problem(
                    "expected_head_missing", f"the exported head (position {expected[0]}) "
                    f"is not in the ledger: {_name(link)} has another link, so the chain "
                    "was rewritten up to there", link.event_id, link.seq)
                return verdict
            expected_found = True
        prev, previous = link.stored, link
    last_seq = previous.seq if previous is not None else 0
    if (last_seq, prev) != (recorded.seq, recorded.hash):
        what = ("the newest events were removed" if recorded.seq > last_seq
                else "events were added without moving the chain head")
        verdict.problem = Problem(
            "head_mismatch", f"{what}: the recorded head is position {recorded.seq}, the "
            f"ledger ends at position {last_seq}", None, last_seq)
        return verdict
    if not expected_found and expected is not None:
        verdict.problem = Problem(
            "expected_head_missing", f"the exported head (position {expected[0]}) is beyond "
            f"the ledger's end (position {last_seq}): events after it were removed", None,
            last_seq)
    return verdict


def _broken(session: Session, link: _Link, previous: _Link | None) -> Problem:
    """Why `link` does not follow `previous`: it belongs elsewhere, or what it followed
    is gone."""
    before = _name(previous) if previous is not None else "the start of the ledger"
    holder = _holder_of(session, link.prev) if link.prev != GENESIS else (0, 0)
    if holder is not None:
        where = ("the start of the ledger" if holder == (0, 0)
                 else f"event {holder[0]} (chain position {holder[1]})")
        return Problem("out_of_order", f"{_name(link)} is out of order: it was written after "
                       f"{where}, but stands after {before}", link.event_id, link.seq)
    return Problem("removed", f"an event was removed before {_name(link)}: the event it was "
                   f"written after is gone (it stands after {before})", link.event_id, link.seq)
