"""Mailchimp's member state, recorded for members that match a CRM contact: status,
address, `last_changed`, opt-in proof (push_state). The audience pull and the
reconciliation both feed pages of members through `observe_page`.

A withdrawal is reported (through the same inbox and handler as a webhook) only when a
member's status MOVED to unsubscribed/cleaned after the state syncd last knew: Mailchimp
moves `last_changed` on any edit (an admin's, syncd's own write), so a newer
`last_changed` on a member already known unsubscribed is no new unsubscribe (I13)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select

from syncd.clock import as_utc, utcnow
from syncd.context import AppContext
from syncd.db import transaction
from syncd.esp.protocol import RemoteMember
from syncd.schema import Contact, PushState
from syncd.webhooks.mailchimp_form import normalise_address

GONE = frozenset({"unsubscribed", "cleaned"})


@dataclass
class Observation:
    """Counts only: never an address (they are for logs, sync_runs and metrics)."""

    seen: int = 0
    matched: int = 0
    unmatched: int = 0
    recorded: int = 0  # push_state rows added or changed
    by_status: dict[str, int] = field(default_factory=dict)

    def add(self, other: Observation) -> None:
        self.seen += other.seen
        self.matched += other.matched
        self.unmatched += other.unmatched
        self.recorded += other.recorded
        for status, n in other.by_status.items():
            self.by_status[status] = self.by_status.get(status, 0) + n


# Called for a member whose status moved to unsubscribed/cleaned (matched or not, as the
# caller decides): stores and applies it like the webhook Mailchimp would have sent.
Report = Callable[[RemoteMember], None]


def status_moved(member: RemoteMember, known_status: str | None,
                 known_changed: datetime | None) -> bool:
    """A real move to unsubscribed/cleaned after the state syncd knew."""
    if member.status not in GONE:
        return False
    if known_changed is not None and as_utc(member.last_changed) <= known_changed:
        return False  # old news: syncd knew a state at least this recent
    return known_status != member.status


def observe_page(ctx: AppContext, audience_id: str, page: Sequence[RemoteMember], *,
                 report: Report | None, report_unmatched: bool) -> Observation:
    """Record what Mailchimp has for the members of one page that match a contact, in
    one transaction (memory O(page)). `report` is called first for each real move to
    unsubscribed/cleaned, so the withdrawal lands before the state that implies it."""
    seen = Observation()
    members: dict[str, RemoteMember] = {}
    for member in page:
        seen.seen += 1
        seen.by_status[member.status] = seen.by_status.get(member.status, 0) + 1
        address = normalise_address(member.email)
        if address is not None:
            members[address[0]] = member
    with transaction(ctx.sessions) as session:
        contacts = dict(session.execute(
            select(Contact.email_key, Contact.id).where(Contact.email_key.in_(list(members)))
        ).all()) if members else {}
        states = {row.contact_id: row for row in session.scalars(select(PushState).where(
            PushState.audience_id == audience_id,
            PushState.contact_id.in_(list(contacts.values()))))} if contacts else {}
        known = {cid: (s.esp_status, s.esp_last_changed) for cid, s in states.items()}
    seen.unmatched = len(page) - len(contacts)
    seen.matched = len(contacts)
    if report is not None:
        for key, member in members.items():
            cid = contacts.get(key)
            if cid is None and not report_unmatched:
                continue
            status, changed = known.get(cid, (None, None)) if cid is not None else (None, None)
            if status_moved(member, status, changed):
                report(member)
    if contacts:
        seen.recorded = _record(ctx, audience_id, members, contacts)
    return seen


def _record(ctx: AppContext, audience_id: str, members: dict[str, RemoteMember],
            contacts: dict[str, int]) -> int:
    now = utcnow()
    changed = 0
    with transaction(ctx.sessions) as session:
        # Read again inside this transaction: the report above may have changed them.
        states = {row.contact_id: row for row in session.scalars(select(PushState).where(
            PushState.audience_id == audience_id,
            PushState.contact_id.in_(list(contacts.values()))))}
        for key, cid in contacts.items():
            member = members[key]
            moment = as_utc(member.last_changed)
            state = states.get(cid)
            if state is None:
                # Known from now on: the planner treats it like a member syncd added
                # (settled_revision 0: planned in the next run).
                session.add(PushState(
                    contact_id=cid, audience_id=audience_id, settled_revision=0,
                    esp_status=member.status, esp_email=key, esp_last_changed=moment,
                    esp_opt_at=member.timestamp_opt, esp_opt_ip=member.ip_opt,
                    esp_origin="pulled", updated_at=now))
                changed += 1
                continue
            if state.esp_last_changed is not None and moment < state.esp_last_changed:
                continue  # syncd already knows a newer state
            if (state.esp_status, state.esp_email) != (member.status, key):
                # A new status or address: plan the contact again in the next run.
                state.settled_revision = 0
                state.fingerprint = None if state.esp_status is None else state.fingerprint
                state.esp_origin = state.esp_origin or "pulled"
                state.parked_reason = None
                changed += 1
            state.esp_status, state.esp_email = member.status, key
            state.esp_last_changed = moment
            state.esp_opt_at = member.timestamp_opt or state.esp_opt_at
            state.esp_opt_ip = member.ip_opt or state.esp_opt_ip
            state.updated_at = now
    return changed
