"""The sync's input as the planner takes it: the candidates of syncd.store.candidates
(contacts changed since the ESP last settled them), chunk by chunk, as ContactFacts and
the KnownState of the member at the ESP."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine

from syncd.consent.facts import in_policy_terms
from syncd.consent.policy import ConsentFact, PurchaseFact, SuppressionFact
from syncd.frozen import quick_init
from syncd.keys import Keyring
from syncd.store import candidates
from syncd.store.facts import attributes, moment
from syncd.sync.plan import LIVE, ContactFacts, KnownState


class _Attributes(Mapping[str, str]):
    """A contact's stored attributes (JSON text), decoded on first read: the planner
    reads them only for a merge field mapped to an attribute, and most targets map none."""

    __slots__ = ("_decoded", "_raw")

    def __init__(self, raw: object) -> None:
        self._raw = raw
        self._decoded: dict[str, str] | None = None

    def _map(self) -> dict[str, str]:
        if self._decoded is None:
            self._decoded = attributes(self._raw)
        return self._decoded

    def __getitem__(self, key: str) -> str:
        return self._map()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._map())

    def __len__(self) -> int:
        return len(self._map())

    def __repr__(self) -> str:
        return repr(self._map())


_NO_ATTRIBUTES = (None, "{}", "null")


@quick_init
@dataclass(frozen=True)
class Candidate:
    facts: ContactFacts
    known: KnownState | None


def iter_candidates(engine: Engine, audience_id: str, keyring: Keyring, *, chunk_size: int,
                    purpose_lists: tuple[str, ...], live_only: bool = False,
                    pulled_at: datetime | None = None,
                    everyone: bool = False, purchases: bool = True,
                    ids: Sequence[int] | None = None) -> Iterator[list[Candidate]]:
    """Chunks of contacts to look at, in id order. `live_only`: only those syncd knows are
    live at the ESP (the safety limit's pre-count of unsubscribes). `everyone`: the
    contacts already settled too (a re-plan of the whole target). `purchases`: read
    them (False: a consent target, which never looks at them). `ids`: only these (the
    contacts changed since the last complete run, syncd.store.candidates.Changes)."""
    no_events: tuple[ConsentFact, ...] = ()
    no_blocks: tuple[SuppressionFact, ...] = ()
    no_lists: tuple[str, ...] = ()
    no_purchases: tuple[PurchaseFact, ...] = ()
    for chunk in candidates.chunks(engine, audience_id, keyring, chunk_size=chunk_size,
                                   purpose_lists=purpose_lists,
                                   live=tuple(LIVE) if live_only else None,
                                   pulled_at=pulled_at, everyone=everyone,
                                   purchases=purchases, ids=ids):
        found = in_policy_terms(chunk.facts)
        events, blocks, inbox, lists, bought = (found.events, found.suppressions,
                                                found.inbox_blocked, chunk.lists,
                                                found.purchases)
        out = []
        for (cid, revision, email, first, last_name, raw_attributes, customer, bounced,
             settled, print_, status, esp_email, parked, attempt, retry_after, esp_changed,
             created, esp_permissions) in chunk.rows:
            # Positional, in ContactFacts' field order: built for every candidate.
            facts = ContactFacts(
                cid, revision, email, first, last_name,
                {} if raw_attributes in _NO_ATTRIBUTES else _Attributes(raw_attributes),
                bool(customer), None if bounced is None else moment(bounced),
                lists.get(cid, no_lists), events.get(cid, no_events),
                blocks.get(cid, no_blocks), bought.get(cid, no_purchases), cid in inbox,
                # unknown_to_pull:
                status is None and pulled_at is not None and created is not None
                and moment(created) > pulled_at)
            known = None if settled is None else KnownState(
                settled_revision=settled, fingerprint=print_, esp_status=status,
                esp_email=esp_email, parked_reason=parked, attempt_fingerprint=attempt,
                retry_after=None if retry_after is None else moment(retry_after),
                esp_last_changed=None if esp_changed is None else moment(esp_changed),
                esp_permissions=esp_permissions)
            out.append(Candidate(facts, known))
        yield out
