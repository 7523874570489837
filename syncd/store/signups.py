"""The sign-up tables (signup_tokens, outbox): confirmation links, queued mails, their
claim by one replica and how each attempt ends. Reads return frozen rows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from syncd.schema import MailKind, MailStatus, OutboxMail, SignupToken


@dataclass(frozen=True)
class NewToken:
    token_hash: str
    contact_id: int
    purposes: Sequence[str]
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class Token:
    id: int
    contact_id: int
    purposes: tuple[str, ...]
    expires_at: datetime
    used_at: datetime | None


@dataclass(frozen=True)
class NewMail:
    kind: MailKind
    contact_id: int
    address_hmac: str
    purposes: Sequence[str]
    language: str
    created_at: datetime  # also when it is first due
    token_id: int | None = None
    token_nonce: str | None = None


@dataclass(frozen=True)
class Mail:
    """An outbox row as read; `settle` writes the fields a send attempt changes."""

    id: int
    kind: str
    contact_id: int
    purposes: tuple[str, ...]
    language: str
    token_id: int | None
    token_nonce: str | None
    status: str
    attempts: int
    next_attempt_at: datetime
    claimed_at: datetime | None
    created_at: datetime
    sent_at: datetime | None
    last_error: str | None


_TOKEN = (SignupToken.id, SignupToken.contact_id, SignupToken.purposes,
          SignupToken.expires_at, SignupToken.used_at)
_MAIL = (OutboxMail.id, OutboxMail.kind, OutboxMail.contact_id, OutboxMail.purposes,
         OutboxMail.language, OutboxMail.token_id, OutboxMail.token_nonce, OutboxMail.status,
         OutboxMail.attempts, OutboxMail.next_attempt_at, OutboxMail.claimed_at,
         OutboxMail.created_at, OutboxMail.sent_at, OutboxMail.last_error)
_ADD_TOKENS = insert(SignupToken).returning(SignupToken.id, sort_by_parameter_order=True)
_ENQUEUE = insert(OutboxMail)
_IS_DUE = or_(OutboxMail.status == MailStatus.QUEUED,
              (OutboxMail.status == MailStatus.SENDING)
              & (OutboxMail.claimed_at < bindparam("stale")))
_SETTLE = (update(OutboxMail)
           .where(OutboxMail.id == bindparam("b_id"),
                  OutboxMail.status == MailStatus.SENDING,
                  OutboxMail.claimed_at == bindparam("b_claimed"))
           .values(status=bindparam("b_status"), claimed_at=bindparam("b_claimed_at"),
                   attempts=bindparam("b_attempts"), sent_at=bindparam("b_sent_at"),
                   token_nonce=bindparam("b_nonce"), last_error=bindparam("b_error"),
                   next_attempt_at=bindparam("b_next")))


def _token(row: Sequence[Any]) -> Token:
    id_, contact_id, purposes, expires_at, used_at = row
    return Token(id_, contact_id, tuple(purposes), expires_at, used_at)


def _mail(row: Sequence[Any]) -> Mail:
    id_, kind, contact_id, purposes, *rest = row
    return Mail(id_, kind, contact_id, tuple(purposes), *rest)


# -- links ------------------------------------------------------------------------------


def add_tokens(session: Session, rows: Sequence[NewToken]) -> list[int]:
    """Store links (their hashes only); the new ids, in the order of `rows`."""
    if not rows:
        return []
    result = session.connection().execute(_ADD_TOKENS, [
        {"token_hash": r.token_hash, "contact_id": r.contact_id, "purposes": list(r.purposes),
         "created_at": r.created_at, "expires_at": r.expires_at} for r in rows])
    return [int(id_) for id_ in result.scalars()]


def tokens_by_hash(session: Session, digests: Sequence[str]) -> dict[str, Token]:
    rows = session.execute(select(SignupToken.token_hash, *_TOKEN)
                           .where(SignupToken.token_hash.in_(digests)))
    return {str(row[0]): _token(row[1:]) for row in rows}


def tokens_by_id(session: Session, ids: Sequence[int]) -> dict[int, Token]:
    rows = session.execute(select(*_TOKEN).where(SignupToken.id.in_(ids))) if ids else ()
    return {token.id: token for token in map(_token, rows)}


def spend_tokens(session: Session, digests: Sequence[str], now: datetime) -> dict[str, Token]:
    """Mark the links used, each only if still unused and unexpired (one conditional
    UPDATE: of two POSTs of one link, one wins); the links spent now, by hash."""
    if not digests:
        return {}
    rows = session.connection().execute(
        update(SignupToken).where(SignupToken.token_hash.in_(digests),
                                  SignupToken.used_at.is_(None), SignupToken.expires_at > now)
        .values(used_at=now).returning(SignupToken.token_hash, *_TOKEN))
    return {str(row[0]): _token(row[1:]) for row in rows}


# -- mails ------------------------------------------------------------------------------


def enqueue(session: Session, mails: Sequence[NewMail]) -> None:
    """Queue mails, due at once (one multi-row INSERT in the caller's transaction)."""
    if not mails:
        return
    session.connection().execute(_ENQUEUE, [
        {"kind": str(m.kind), "contact_id": m.contact_id, "address_hmac": m.address_hmac,
         "purposes": list(m.purposes), "language": m.language, "token_id": m.token_id,
         "token_nonce": m.token_nonce, "status": str(MailStatus.QUEUED), "attempts": 0,
         "next_attempt_at": m.created_at, "claimed_at": None, "created_at": m.created_at,
         "sent_at": None, "last_error": None} for m in mails])


def purposes_queued_since(session: Session, address_hmac: str, kind: MailKind,
                          since: datetime) -> list[tuple[str, ...]]:
    """The purposes of each mail of `kind` queued for the address since `since` (sent or
    not)."""
    rows = session.scalars(select(OutboxMail.purposes).where(
        OutboxMail.address_hmac == address_hmac, OutboxMail.kind == kind,
        OutboxMail.created_at >= since))
    return [tuple(purposes) for purposes in rows]


def due(session: Session, now: datetime, stale: datetime, limit: int) -> list[int]:
    """Ids of mails to try now, oldest due first: queued and due, or left `sending`
    since before `stale` by a process that died."""
    return list(session.scalars(
        select(OutboxMail.id).where(or_(
            (OutboxMail.status == MailStatus.QUEUED) & (OutboxMail.next_attempt_at <= now),
            (OutboxMail.status == MailStatus.SENDING) & (OutboxMail.claimed_at < stale)))
        .order_by(OutboxMail.next_attempt_at, OutboxMail.id).limit(limit)))


def claim(session: Session, ids: Sequence[int], now: datetime, stale: datetime) -> list[Mail]:
    """Mark the mails `sending` for this process, each only if still queued or stale (a
    mail another replica claimed first is skipped); the mails won, in the order of
    `ids`."""
    if not ids:
        return []
    won = set(session.connection().execute(
        update(OutboxMail).where(OutboxMail.id.in_(ids), _IS_DUE)
        .values(status=MailStatus.SENDING, claimed_at=now).returning(OutboxMail.id),
        {"stale": stale}).scalars())
    if not won:
        return []
    found = {mail.id: mail for mail in map(_mail, session.execute(
        select(*_MAIL).where(OutboxMail.id.in_(won))))}
    return [found[id_] for id_ in ids if id_ in found]


def settle(session: Session, changes: Sequence[tuple[Mail, Mail]]) -> None:
    """Write how attempts ended: each pair is (the mail as claimed, the mail as it ends).
    A mail no longer claimed by that claim (another process took it over) is left
    alone."""
    if not changes:
        return
    session.connection().execute(_SETTLE, [
        {"b_id": claimed.id, "b_claimed": claimed.claimed_at, "b_status": end.status,
         "b_claimed_at": end.claimed_at, "b_attempts": end.attempts, "b_sent_at": end.sent_at,
         "b_nonce": end.token_nonce, "b_error": end.last_error, "b_next": end.next_attempt_at}
        for claimed, end in changes])


def unsent_count(session: Session) -> int:
    """Mails queued or being sent."""
    return int(session.scalar(select(func.count()).select_from(OutboxMail).where(
        OutboxMail.status.in_([MailStatus.QUEUED, MailStatus.SENDING]))) or 0)


def prune_settled(session: Session, cutoff: datetime, *,
                  dry_run: bool) -> tuple[int, int]:
    """Delete (or with `dry_run` only count) the mails sent or failed before `cutoff` and
    the links used or expired before it: (mails, links)."""
    settled = (OutboxMail.status.in_([MailStatus.SENT, MailStatus.FAILED]),
               OutboxMail.created_at < cutoff)
    spent = or_(SignupToken.used_at < cutoff, SignupToken.expires_at < cutoff)
    if dry_run:
        mails = session.scalar(select(func.count(OutboxMail.id)).where(*settled))
        links = session.scalar(select(func.count(SignupToken.id)).where(spent))
        return int(mails or 0), int(links or 0)
    conn = session.connection()
    deleted_mails = conn.execute(delete(OutboxMail).where(*settled))
    deleted_links = conn.execute(delete(SignupToken).where(spent))
    return (int(getattr(deleted_mails, "rowcount", 0) or 0),
            int(getattr(deleted_links, "rowcount", 0) or 0))
