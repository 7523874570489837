"""What the ESP last confirmed per contact and audience (table push_state): Mailchimp's
own record of its members as the audience pull and reconciliation read it, and what
syncd itself did to them. The push's own writes of the table (the write-ahead attempt
markers and the checkpoint) are syncd.store.push_checkpoint."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Engine, Table, bindparam, func, or_, select, update
from sqlalchemy.orm import Session

from syncd.clock import utcnow
from syncd.schema import PushState

_TABLE = cast(Table, PushState.__table__)
IN_CHUNK = 900


def count_live(engine: Engine, audience_id: str, live: Sequence[str]) -> int:
    """Members syncd knows have one of the `live` statuses at the ESP."""
    query = select(func.count()).select_from(_TABLE).where(
        _TABLE.c.audience_id == audience_id, _TABLE.c.esp_status.in_(list(live)))
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


@dataclass(frozen=True)
class MemberState:
    """What push_state holds of a member's record at Mailchimp (read or written)."""

    contact_id: int
    settled_revision: int
    fingerprint: str | None
    esp_status: str | None
    esp_email: str | None
    esp_last_changed: datetime | None
    esp_opt_at: datetime | None
    esp_opt_ip: str | None
    esp_origin: str | None
    parked_reason: str | None
    esp_permissions: str | None = None  # JSON, permission id -> enabled (as read or sent)


_STATE = tuple(_TABLE.c[name] for name in (
    "contact_id", "settled_revision", "fingerprint", "esp_status", "esp_email",
    "esp_last_changed", "esp_opt_at", "esp_opt_ip", "esp_origin", "parked_reason",
    "esp_permissions"))
_OBSERVED = ("settled_revision", "fingerprint", "esp_status", "esp_email",
             "esp_last_changed", "esp_opt_at", "esp_opt_ip", "esp_origin", "parked_reason",
             "esp_permissions")
_UPDATE_OBSERVED = (update(_TABLE).where(_TABLE.c.contact_id == bindparam("b_contact_id"),
                                         _TABLE.c.audience_id == bindparam("b_audience_id"))
                    .values({name: bindparam(f"b_{name}")
                             for name in (*_OBSERVED, "updated_at")}))


def member_states(session: Session, audience_id: str,
                  contact_ids: Iterable[int]) -> dict[int, MemberState]:
    ids = sorted(set(contact_ids))
    found: dict[int, MemberState] = {}
    for start in range(0, len(ids), IN_CHUNK):
        for row in session.connection().execute(select(*_STATE).where(
                _TABLE.c.audience_id == audience_id,
                _TABLE.c.contact_id.in_(ids[start : start + IN_CHUNK]))):
            found[row[0]] = MemberState(*row)
    return found


def record_states(session: Session, audience_id: str, *, new: Sequence[MemberState],
                  changed: Sequence[MemberState]) -> None:
    """Insert the states of members not known yet and overwrite the observed fields of
    the others: one executemany each."""
    now = utcnow()
    conn = session.connection()
    if new:
        conn.execute(_TABLE.insert(), [
            {**asdict(s), "audience_id": audience_id, "updated_at": now} for s in new])
    if changed:
        conn.execute(_UPDATE_OBSERVED, [
            {"b_contact_id": s.contact_id, "b_audience_id": audience_id, "b_updated_at": now,
             **{f"b_{name}": getattr(s, name) for name in _OBSERVED}} for s in changed])


def set_status(session: Session, audience_id: str, contact_ids: Iterable[int],
               status: str) -> None:
    """What syncd itself just did to these members at the ESP (an operator's remedy)."""
    ids = sorted(set(contact_ids))
    for start in range(0, len(ids), IN_CHUNK):
        session.connection().execute(update(_TABLE).where(
            _TABLE.c.audience_id == audience_id,
            _TABLE.c.contact_id.in_(ids[start : start + IN_CHUNK])).values(esp_status=status))


@dataclass(frozen=True)
class Pending:
    """What syncd knows of a contact's member in an audience: its status and when syncd
    asked Mailchimp for a double opt-in (webhook apply's subscribe)."""

    esp_status: str | None
    pending_requested_at: datetime | None


# Built once: webhook apply is the hot path.
_LEARN = (update(PushState)
          .where(PushState.contact_id == bindparam("cid"),
                 PushState.audience_id == bindparam("audience"),
                 or_(PushState.esp_last_changed.is_(None),
                     PushState.esp_last_changed <= bindparam("moment")))
          .values(esp_status=bindparam("status"), esp_last_changed=bindparam("moment")))


def learn_status(session: Session, contact_id: int, audience: str, status: str,
                 moment: datetime) -> None:
    """The member's status as Mailchimp reported it at `moment`, unless a later report
    is known already."""
    session.connection().execute(_LEARN, {"cid": contact_id, "audience": audience,
                                          "status": status, "moment": moment})


def pending(session: Session, contact_id: int, audience: str) -> Pending | None:
    found = session.connection().execute(
        select(PushState.esp_status, PushState.pending_requested_at)
        .where(PushState.contact_id == contact_id, PushState.audience_id == audience)).first()
    return None if found is None else Pending(*found)


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
