"""The preference page (rule 5: withdrawal as easy as giving): the person's purposes and
their state; unticking withdraws, ticking starts that purpose's double opt-in.

An untick goes through the same purge as Mailchimp's unsubscribe webhook
(syncd.webhooks.purge): the `withdrawn` event (channel `preference_page`), the removal
from every internal list of the purpose and the suppression entry commit in one
transaction (I3); the next sync unsubscribes the member at Mailchimp (I11). A short
mail confirms the unsubscription."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from syncd import metrics
from syncd.addresses import Address
from syncd.consent import ledger
from syncd.consent.facts import decide_for
from syncd.consent.ledger import ConsentRecord
from syncd.consent.policy import Action, Standing
from syncd.context import AppContext
from syncd.crm import store
from syncd.db import transaction
from syncd.schema import Contact
from syncd.signup import outbox, tokens
from syncd.signup.form import offered_purposes
from syncd.signup.intake import ACTIVE, Evidence, record_given, request_confirmation
from syncd.signup.pages import purpose_label
from syncd.store import contacts
from syncd.store.signups import NewMail
from syncd.webhooks import purge

CHANNEL = "preference_page"
ACTOR = "preference_page"
STATE_TEXT = {
    "active": ("aangemeld", "subscribed"),
    "awaiting": ("wacht op uw bevestiging", "awaiting your confirmation"),
    "withdrawn": ("afgemeld", "unsubscribed"),
    "none": ("niet aangemeld", "not subscribed"),
}


@dataclass(frozen=True)
class PurposeState:
    purpose: str
    label: str
    active: bool
    state: str

    def state_text_in(self, lang: str) -> str:
        nl, en = STATE_TEXT[self.state]
        return nl if lang == "nl" else en


@dataclass(frozen=True)
class Saved:
    withdrawn: tuple[str, ...]
    requested: tuple[str, ...]


def mail_configured(ctx: AppContext) -> bool:
    s = ctx.settings
    return bool(s.smtp_host and s.mail_from and s.public_base_url)


def contact_for_link(ctx: AppContext, token: str, now: datetime) -> int | None:
    """The contact a preference link was made for, if the link is genuine and current."""
    claim = tokens.parse_preference_token(token)
    if claim is None:
        return None
    with ctx.sessions() as session:
        email_key = contacts.email_keys(session, [claim.contact_id]).get(claim.contact_id)
    if email_key is None:
        return None
    max_age = timedelta(days=ctx.settings.preferences_link_days)
    if not tokens.preference_link_valid(ctx.keyring, claim, email_key, now=now,
                                        max_age=max_age):
        return None
    return claim.contact_id


def _states(session: Session, ctx: AppContext, contact: Contact, lang: str,
            now: datetime) -> list[PurposeState]:
    found = []
    # The offered purposes, and any other one this person has a consent for.
    extra = {f.purpose for f in ledger.facts_by_contact(session, [contact.id]).get(
        contact.id, [])}
    shown = offered_purposes(ctx.settings)
    shown += sorted((extra & ctx.settings.purposes) - set(shown))
    for purpose in shown:
        standing = decide_for(session, contact, purpose=purpose, keyring=ctx.keyring,
                              now=now).standing
        state = ("active" if standing in ACTIVE else
                 "awaiting" if standing is Standing.UNCONFIRMED else
                 "withdrawn" if standing in (Standing.WITHDRAWN, Standing.SUPPRESSED) else
                 "none")
        found.append(PurposeState(purpose, purpose_label(ctx.settings, purpose, lang),
                                  state == "active", state))
    return found


def states(ctx: AppContext, contact_id: int, lang: str, now: datetime) -> list[PurposeState]:
    with ctx.sessions() as session:
        contact = contacts.by_id(session, contact_id)
        return [] if contact is None else _states(session, ctx, contact, lang, now)


def save(ctx: AppContext, contact_id: int, wanted: set[str], evidence: Evidence, *,
         language: str) -> Saved:
    """Withdraw the unticked purposes in force, request the newly ticked ones."""
    now = evidence.at
    with transaction(ctx.sessions) as session:
        contact = contacts.by_id(session, contact_id)
        if contact is None:
            return Saved((), ())
        current = {s.purpose: s for s in _states(session, ctx, contact, language, now)}
        email_key = contact.email_key
        # The purge writes in Core SQL: no ORM object may be held stale across it.
        session.expire_all()
        withdrawn = [p for p, s in current.items() if s.active and p not in wanted]
        for purpose in withdrawn:
            _withdraw(ctx, session, email_key, purpose, evidence)
        session.expire_all()
        requested = [p for p, s in current.items() if not s.active and p in wanted]
        contact = contacts.by_id(session, contact_id)
        assert contact is not None
        if requested:
            record_given(session, contact, requested, evidence=evidence, channel=CHANNEL,
                         text_version=ctx.settings.signup_form_text_version,
                         privacy_notice_version=ctx.settings.signup_privacy_notice_version,
                         form_url=f"{ctx.settings.public_base_url or ''}/preferences")
            request_confirmation(session, ctx, contact, requested, language=language,
                                 now=now)
        if withdrawn and mail_configured(ctx):
            outbox.enqueue(session, [NewMail(
                outbox.WITHDRAWAL, contact.id, ctx.keyring.address_hmac(email_key), withdrawn,
                language, created_at=now)])
    for _ in withdrawn:
        metrics.SIGNUPS.labels(CHANNEL, "withdrawn").inc()
    return Saved(tuple(withdrawn), tuple(requested))


def _withdraw(ctx: AppContext, session: Session, email_key: str, purpose: str,
              evidence: Evidence) -> None:
    known = purge.find(session, email_key, evidence.at)
    assert known is not None
    record = ConsentRecord(purpose=purpose, action=Action.WITHDRAWN, occurred_at=evidence.at,
                           source=CHANNEL, ip=evidence.ip, user_agent=evidence.user_agent,
                           reason="unticked on the preference page")
    purge.withdraw(session, known, [ctx.keyring.address_hmac(email_key)], purge.Withdrawal(
        purpose=purpose, moment=evidence.at, record=record,
        dedupe_salt=secrets.token_hex(8), why="preference page", abuse=False, deleted=False,
        channel=CHANNEL, actor=ACTOR, suppression_scope=purpose,
        suppression_reason=CHANNEL, window=timedelta(0)))


def request_link(ctx: AppContext, address: Address, *, language: str, now: datetime) -> None:
    """Mail the preference link if the address is known (the caller answers the same
    either way); at most one such mail per address within the mail window."""
    if not mail_configured(ctx):
        return
    address_hmac = ctx.keyring.address_hmac(address.key)
    since = now - timedelta(hours=ctx.settings.signup_mail_window_hours)
    with transaction(ctx.sessions) as session:
        contact = store.find_contact(session, address.key)
        if contact is None or outbox.recently_queued(session, address_hmac,
                                                     outbox.PREFERENCES_LINK, since):
            return
        outbox.enqueue(session, [NewMail(outbox.PREFERENCES_LINK, contact.id, address_hmac, [],
                                         language, created_at=now)])
