"""The webhook effects' statements on contacts, list memberships and push state: the
purge's unlisting and revision bump, and what Mailchimp reported of the member."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, delete, or_, select, update
from sqlalchemy.orm import Session

from syncd.schema import Contact, InternalList, ListMembership, PushState


@dataclass(frozen=True)
class Membership:
    list_id: int
    name: str
    purpose: str
    marketing: bool


@dataclass(frozen=True)
class MemberState:
    """What syncd knows of a contact's member in an audience."""

    esp_status: str | None
    pending_requested_at: datetime | None


# Built once: the purge is the webhook hot path.
_MEMBERSHIPS = (select(InternalList.id, InternalList.name, InternalList.purpose,
                       InternalList.marketing)
                .join(ListMembership, ListMembership.list_id == InternalList.id)
                .where(ListMembership.contact_id == bindparam("contact_id")))
_UNLIST = delete(ListMembership).where(
    ListMembership.contact_id == bindparam("contact_id"),
    ListMembership.list_id.in_(bindparam("list_ids", expanding=True)))
_BUMP = (update(Contact).where(Contact.id == bindparam("contact_id"))
         .values(revision=Contact.revision + bindparam("bumps"), updated_at=bindparam("now")))
_LEARN = (update(PushState)
          .where(PushState.contact_id == bindparam("cid"),
                 PushState.audience_id == bindparam("audience"),
                 or_(PushState.esp_last_changed.is_(None),
                     PushState.esp_last_changed <= bindparam("moment")))
          .values(esp_status=bindparam("status"), esp_last_changed=bindparam("moment")))


def memberships(session: Session, contact_id: int) -> list[Membership]:
    return [Membership(*row) for row in session.connection().execute(
        _MEMBERSHIPS, {"contact_id": contact_id})]


def unlist(session: Session, contact_id: int, list_ids: Iterable[int]) -> None:
    session.connection().execute(_UNLIST, {"contact_id": contact_id,
                                           "list_ids": sorted(set(list_ids))})


def bump_revision(session: Session, contact_id: int, bumps: int, now: datetime) -> None:
    """The contact changed in a way the sync must look at (`bumps` changes at once)."""
    session.connection().execute(_BUMP, {"contact_id": contact_id, "bumps": bumps,
                                         "now": now})


def learn_status(session: Session, contact_id: int, audience: str, status: str,
                 moment: datetime) -> None:
    """The member's status as Mailchimp reported it at `moment`, unless a later report
    is known already."""
    session.connection().execute(_LEARN, {"cid": contact_id, "audience": audience,
                                          "status": status, "moment": moment})


def member_state(session: Session, contact_id: int, audience: str) -> MemberState | None:
    found = session.connection().execute(
        select(PushState.esp_status, PushState.pending_requested_at)
        .where(PushState.contact_id == contact_id, PushState.audience_id == audience)).first()
    return None if found is None else MemberState(*found)


def record_confirmation(session: Session, contact_id: int, audience: str, ip: str,
                        moment: datetime) -> None:
    """Mailchimp's double opt-in confirmation: the member is subscribed, with its proof."""
    session.connection().execute(
        update(PushState)
        .where(PushState.contact_id == contact_id, PushState.audience_id == audience)
        .values(esp_status="subscribed", esp_opt_ip=ip, esp_opt_at=moment))


def follow_address(session: Session, contact_id: int, audience: str | None, email: str,
                   moment: datetime) -> None:
    """The member (in `audience`, or every audience) now has this address."""
    query = update(PushState).where(PushState.contact_id == contact_id,
                                    or_(PushState.esp_email.is_(None),
                                        PushState.esp_email != email))
    if audience is not None:
        query = query.where(PushState.audience_id == audience)
    session.connection().execute(query.values(esp_email=email, updated_at=moment))
