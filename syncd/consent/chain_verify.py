"""`syncd ledger verify`: walk the consent ledger's hash chain in order and name the first
event that was changed, removed or put out of order (events and tombstones together,
page by page, so memory stays bounded for any size of ledger)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from syncd.store import ledger_walk as walk
from syncd.store.ledger import head
from syncd.store.ledger_hash import GENESIS, event_hash
from syncd.store.ledger_walk import Link

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


def _walk(session: Session) -> Iterator[Link]:
    """Events and tombstones merged by chain position, a page of each at a time."""
    after = 0
    while True:
        events, stones = walk.page(session, after, PAGE)
        # A full page may continue: merge only up to where both pages are complete.
        ends = [page[-1].seq for page in (events, stones) if len(page) == PAGE]
        bound = min(ends) if ends else None
        links = events + stones
        if bound is not None:
            links = [link for link in links if link.seq <= bound]
        if not links:
            return
        links.sort(key=lambda link: (link.seq, link.tombstone))
        yield from links
        after = links[-1].seq


def _name(link: Link) -> str:
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


def _broken(session: Session, link: Link, previous: Link | None) -> Problem:
    """Why `link` does not follow `previous`: it belongs elsewhere, or what it followed
    is gone."""
    before = _name(previous) if previous is not None else "the start of the ledger"
    holder = walk.holder_of(session, link.prev) if link.prev != GENESIS else (0, 0)
    if holder is not None:
        where = ("the start of the ledger" if holder == (0, 0)
                 else f"event {holder[0]} (chain position {holder[1]})")
        return Problem("out_of_order", f"{_name(link)} is out of order: it was written after "
                       f"{where}, but stands after {before}", link.event_id, link.seq)
    return Problem("removed", f"an event was removed before {_name(link)}: the event it was "
                   f"written after is gone (it stands after {before})", link.event_id, link.seq)
