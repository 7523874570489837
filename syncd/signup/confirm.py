"""The confirmation link: looking at it changes nothing; the POST of its button confirms.

Mail security scanners fetch every link in a mail, so a GET that confirmed would record
consent nobody gave (rule 10). The POST spends the token (a conditional UPDATE: one
POST wins, a replay finds it used) and records `confirmed` for each purpose of the
token with its own IP, user agent and the token's hash as proof, in the same
transaction; the contact's revision moves, so the next sync pushes the person."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from syncd import metrics
from syncd.consent import ledger
from syncd.consent.ledger import ConsentRecord
from syncd.consent.policy import Action
from syncd.context import AppContext
from syncd.crm import store
from syncd.db import transaction
from syncd.schema import Contact, LinkState
from syncd.signup import tokens
from syncd.signup.intake import ACTOR, Evidence
from syncd.store import contacts, facts, lists, signups

CHANNEL = "confirmation_link"
VALID, EXPIRED, USED, UNKNOWN = (LinkState.VALID, LinkState.EXPIRED, LinkState.USED,
                                 LinkState.UNKNOWN)


@dataclass(frozen=True)
class TokenState:
    state: LinkState
    purposes: tuple[str, ...] = ()
    contact_id: int | None = None
    email_key: str | None = None


def _state(session: Session, token: str, now: datetime) -> TokenState:
    if not tokens.looks_like_token(token):
        return TokenState(UNKNOWN)
    digest = tokens.token_hash(token)
    row = signups.tokens_by_hash(session, [digest]).get(digest)
    if row is None:
        return TokenState(UNKNOWN)
    if row.used_at is not None:
        return TokenState(USED)
    if row.expires_at <= now:
        return TokenState(EXPIRED)
    return TokenState(VALID, row.purposes, row.contact_id)


def inspect_token(ctx: AppContext, token: str, now: datetime) -> TokenState:
    """What the link's page shows; writes nothing."""
    with ctx.sessions() as session:
        return _state(session, token, now)


def confirm(ctx: AppContext, token: str, evidence: Evidence) -> TokenState:
    """Spend the token and record the confirmation; any other state changes nothing."""
    now = evidence.at
    if not tokens.looks_like_token(token):
        metrics.CONFIRMATIONS.labels(UNKNOWN).inc()
        return TokenState(UNKNOWN)
    digest = tokens.token_hash(token)
    with transaction(ctx.sessions) as session:
        row = signups.spend_tokens(session, [digest], now).get(digest)
        if row is None:
            state = _state(session, token, now)
            metrics.CONFIRMATIONS.labels(state.state).inc()
            return state
        contact = contacts.by_id(session, row.contact_id)
        assert contact is not None  # the token goes with the contact (ON DELETE CASCADE)
        confirmed = []
        for purpose in row.purposes:
            if not facts.given_at_or_before(session, contact.id, purpose, now):
                continue
            ledger.append(session, contact, ConsentRecord(
                purpose=purpose, action=Action.CONFIRMED, occurred_at=now, source=CHANNEL,
                ip=evidence.ip, user_agent=evidence.user_agent,
                confirmation_token_hash=digest), actor=ACTOR)
            confirmed.append(purpose)
        _join_lists(ctx, session, contact, confirmed)
    metrics.CONFIRMATIONS.labels("confirmed").inc()
    return TokenState(VALID, tuple(confirmed), contact.id, contact.email_key)


def _join_lists(ctx: AppContext, session: Session, contact: Contact,
                purposes: list[str]) -> None:
    """The configured sign-up lists of the confirmed purposes (setting signup_lists)."""
    names = [name for name in ctx.settings.signup_lists
             if ctx.settings.lists[name].purpose in purposes]
    if not names:
        return
    for internal in [row for name, row in lists.all_lists(session).items() if name in names]:
        store.add_to_list(session, contact, internal, actor=ACTOR, source="signup")
