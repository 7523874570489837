"""Mailchimp's member state, recorded for members that match a CRM contact: status,
address, `last_changed`, opt-in proof (push_state). The audience pull and the
reconciliation both feed pages of members through `observe_page`, and report a member
that left through `receive_member` (the webhook Mailchimp would have sent).

A withdrawal is reported (through the same inbox and handler as a webhook) only when a
member's status MOVED to unsubscribed/cleaned after the state syncd last knew: Mailchimp
moves `last_changed` on any edit (an admin's, syncd's own write), so a newer
`last_changed` on a member already known unsubscribed is no new unsubscribe (I13).
A GDPR permission read off that Mailchimp had on is a withdrawal too
(syncd.sync.permission_moves)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from syncd.clock import as_utc
from syncd.context import AppContext
from syncd.db import transaction
from syncd.esp.protocol import RemoteMember
from syncd.schema import MemberOrigin
from syncd.store import contacts, push_state
from syncd.store.push_state import MemberState
from syncd.sync import permission_moves
from syncd.webhooks import inbox
from syncd.webhooks.mailchimp_form import (
    EventKind,
    InboundEvent,
    encode_event,
    normalise_address,
)

GONE = frozenset({"unsubscribed", "cleaned"})


@dataclass
class Observation:
    """Counts only: never an address (they are for logs, sync_runs and metrics)."""

    seen: int = 0
    matched: int = 0
    unmatched: int = 0
    recorded: int = 0  # push_state rows added or changed
    permissions_withdrawn: int = 0  # members who switched a mapped permission off
    by_status: dict[str, int] = field(default_factory=dict)

    def add(self, other: Observation) -> None:
        self.seen += other.seen
        self.matched += other.matched
        self.unmatched += other.unmatched
        self.recorded += other.recorded
        self.permissions_withdrawn += other.permissions_withdrawn
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
                 report: Report | None, report_unmatched: bool,
                 permissions: Mapping[str, str] | None = None) -> Observation:
    """Record what Mailchimp has for the members of one page that match a contact, in
    one transaction (memory O(page)). `report` is called first for each real move to
    unsubscribed/cleaned, and a mapped permission (id -> purpose) switched off is
    withdrawn, so the withdrawal lands before the state that implies it."""
    seen = Observation()
    members: dict[str, RemoteMember] = {}
    unreadable: list[RemoteMember] = []  # no contact can match; still reported (counted)
    for member in page:
        seen.seen += 1
        seen.by_status[member.status] = seen.by_status.get(member.status, 0) + 1
        address = normalise_address(member.email)
        if address is not None:
            members[address[0]] = member
        else:
            unreadable.append(member)
    with transaction(ctx.sessions) as session:
        found = contacts.by_keys(session, members) if members else {}
        ids = {key: row.id for key, row in found.items()}
        known = push_state.member_states(session, audience_id, ids.values()) if ids else {}
    seen.unmatched = len(page) - len(ids)
    seen.matched = len(ids)
    if report is not None:
        for key, member in members.items():
            cid = ids.get(key)
            if cid is None and not report_unmatched:
                continue
            state = known.get(cid) if cid is not None else None
            if status_moved(member, state.esp_status if state else None,
                            state.esp_last_changed if state else None):
                report(member)
        if report_unmatched:
            for member in unreadable:
                if status_moved(member, None, None):
                    report(member)  # receive_member answers "no_address"
    if permissions:
        seen.permissions_withdrawn = _permission_moves(ctx, members, ids, known, permissions)
    if ids:
        seen.recorded = _record(ctx, audience_id, members, ids)
    return seen


def _permission_moves(ctx: AppContext, members: dict[str, RemoteMember],
                      ids: dict[str, int], known: Mapping[int, MemberState],
                      permissions: Mapping[str, str]) -> int:
    """Withdraw the purposes whose mapped permission a member switched off; returns how
    many members did."""
    withdrawn = 0
    for key, cid in ids.items():
        state = known.get(cid)
        purposes = permission_moves.turned_off(state.esp_permissions if state else None,
                                               members[key], permissions)
        if purposes and permission_moves.withdraw(ctx, key, members[key], purposes):
            withdrawn += 1
    return withdrawn


def _record(ctx: AppContext, audience_id: str, members: dict[str, RemoteMember],
            ids: dict[str, int]) -> int:
    new: list[MemberState] = []
    changed: list[MemberState] = []
    moved = 0
    with transaction(ctx.sessions) as session:
        # Read again inside this transaction: the report above may have changed them.
        states = push_state.member_states(session, audience_id, ids.values())
        for key, cid in ids.items():
            member = members[key]
            moment = as_utc(member.last_changed)
            state = states.get(cid)
            seen_permissions = permission_moves.encode(member.marketing_permissions)
            if state is None:
                # Known from now on: the planner treats it like a member syncd added
                # (settled_revision 0: planned in the next run).
                new.append(MemberState(
                    contact_id=cid, settled_revision=0, fingerprint=None,
                    esp_status=member.status, esp_email=key, esp_last_changed=moment,
                    esp_opt_at=member.timestamp_opt, esp_opt_ip=member.ip_opt,
                    esp_origin=MemberOrigin.PULLED, parked_reason=None,
                    esp_permissions=seen_permissions))
                moved += 1
                continue
            if state.esp_last_changed is not None and moment < state.esp_last_changed:
                continue  # syncd already knows a newer state
            if (state.esp_status, state.esp_email) != (member.status, key):
                # A new status or address: plan the contact again in the next run.
                state = replace(
                    state, settled_revision=0,
                    fingerprint=None if state.esp_status is None else state.fingerprint,
                    esp_origin=state.esp_origin or MemberOrigin.PULLED, parked_reason=None)
                moved += 1
            changed.append(replace(
                state, esp_status=member.status, esp_email=key, esp_last_changed=moment,
                esp_opt_at=member.timestamp_opt or state.esp_opt_at,
                esp_opt_ip=member.ip_opt or state.esp_opt_ip,
                esp_permissions=seen_permissions or state.esp_permissions))
        push_state.record_states(session, audience_id, new=new, changed=changed)
    return moved


def event_for(member: RemoteMember, audience_id: str) -> InboundEvent | None:
    """The webhook Mailchimp would have sent for this member's current status."""
    address = normalise_address(member.email)
    if address is None:
        return None
    unsubscribed = member.status == "unsubscribed"
    said = (member.unsubscribe_reason or "").lower()
    abuse = "abuse" in said or "spam" in said
    kind = EventKind.UNSUBSCRIBE if unsubscribed else EventKind.CLEANED
    return InboundEvent(
        kind=kind, type=str(kind), fired_at=as_utc(member.last_changed), list_id=audience_id,
        email=address[0], email_display=address[1],
        reason="abuse" if abuse else ("manual" if unsubscribed else "hard"))


def receive_member(ctx: AppContext, audience: str, member: RemoteMember) -> str:
    """Store and apply the webhook Mailchimp would have sent for this member's status;
    returns the inbox receipt status (or "no_address")."""
    event = event_for(member, audience)
    if event is None:
        return "no_address"
    receipt = inbox.receive(ctx.sessions, event, encode_event(event), settings=ctx.settings,
                            keyring=ctx.keyring, source=inbox.SOURCE_RECONCILIATION)
    return receipt.status
