"""Recording a sign-up: a `given` event per ticked purpose with the evidence of rule 4
(when, IP, user agent, form, text and privacy notice versions), and, under syncd's own
double opt-in, one confirmation mail in the outbox, all in one transaction.

What it never does: reveal whether the address was known (the caller answers the same
either way), overwrite a known person's name from a form anyone can fill in, or mail
an address twice for the same purpose within `signup_mail_window_hours` (a sign-up form
must not become a way to mail strangers). One consent never causes two confirmation
mails: in ESP mode syncd sends none (Mailchimp does, for the pending push)."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from syncd import metrics
from syncd.addresses import Address
from syncd.clock import utcnow
from syncd.consent import ledger
from syncd.consent.facts import decide_for
from syncd.consent.ledger import ConsentRecord
from syncd.consent.policy import Action, Standing
from syncd.context import AppContext
from syncd.crm import store
from syncd.db import transaction
from syncd.schema import Contact
from syncd.signup import outbox, tokens
from syncd.signup.form import SignupInput
from syncd.store import audit, contacts, signups
from syncd.store import ledger as stored_ledger

ACTOR = "signup"
CHANNEL_FORM = "web_form"
CHANNEL_API = "api"
ACTIVE = (Standing.CONFIRMED, Standing.RE_CONSENT)


@dataclass(frozen=True)
class Evidence:
    at: datetime
    ip: str | None
    user_agent: str | None

    @classmethod
    def of(cls, at: datetime, ip: str | None, user_agent: str | None) -> Evidence:
        return cls(at, (ip or None) and ip[:64], (user_agent or None) and user_agent[:1000])


@dataclass(frozen=True)
class SignupOutcome:
    recorded: tuple[str, ...]
    mailed: tuple[str, ...]


def active_purposes(session: Session, ctx: AppContext, contact: Contact,
                    purposes: Sequence[str], now: datetime) -> set[str]:
    """Purposes with a consent in force (confirmed, newer than any withdrawal)."""
    return {p for p in purposes
            if decide_for(session, contact, purpose=p, keyring=ctx.keyring,
                          now=now).standing in ACTIVE}


def request_confirmation(session: Session, ctx: AppContext, contact: Contact,
                         purposes: Sequence[str], *, language: str,
                         now: datetime) -> tuple[str, ...]:
    """Queue one confirmation mail for the purposes that need one: not in force already
    and not mailed within the window. Returns the purposes mailed for."""
    settings = ctx.settings
    if settings.double_opt_in != "syncd":
        return ()
    address_hmac = ctx.keyring.address_hmac(contact.email_key)
    window = timedelta(hours=settings.signup_mail_window_hours)
    recent = outbox.recently_mailed(session, address_hmac, now - window) if window else set()
    active = active_purposes(session, ctx, contact, purposes, now)
    todo = [p for p in purposes if p not in active and p not in recent]
    if not todo:
        return ()
    _queue_confirmation(session, ctx, contact.id, contact.email_key, todo,
                        language=language, now=now)
    return tuple(todo)


def _queue_confirmation(session: Session, ctx: AppContext, contact_id: int, email_key: str,
                        purposes: Sequence[str], *, language: str, now: datetime) -> None:
    """The link (its hash) and its mail, queued in the caller's transaction."""
    new = tokens.new_confirmation_token(ctx.keyring)
    expires = now + timedelta(days=ctx.settings.signup_token_expiry_days)
    token_id, = signups.add_tokens(session, [signups.NewToken(
        new.token_hash, contact_id, purposes, created_at=now, expires_at=expires)])
    outbox.enqueue(session, [signups.NewMail(
        outbox.CONFIRMATION, contact_id, ctx.keyring.address_hmac(email_key), purposes,
        language, created_at=now, token_id=token_id, token_nonce=new.nonce)])


def record_given(session: Session, contact: Contact, purposes: Sequence[str], *,
                 evidence: Evidence, channel: str, text_version: str | None,
                 privacy_notice_version: str | None, form_url: str | None) -> None:
    for purpose in purposes:
        # Salted: two sign-ups in the same second are two events, not one.
        record = _given(purpose, evidence, channel, text_version=text_version,
                        privacy_notice_version=privacy_notice_version, form_url=form_url)
        ledger.append(session, contact, record, actor=ACTOR, dedupe_salt=secrets.token_hex(8))


def _given(purpose: str, evidence: Evidence, channel: str, *, text_version: str | None,
           privacy_notice_version: str | None, form_url: str | None) -> ConsentRecord:
    return ConsentRecord(purpose=purpose, action=Action.GIVEN, occurred_at=evidence.at,
                         source=channel, form_url=form_url, text_version=text_version,
                         privacy_notice_version=privacy_notice_version, ip=evidence.ip,
                         user_agent=evidence.user_agent)


def _fill_names(session: Session, contact: Contact, signup: SignupInput) -> None:
    """Only empty names are filled in: anyone can type a known address into a form."""
    fill = store.ContactData(
        address=Address(contact.email_key, contact.email_display),
        first_name=signup.first_name if contact.first_name is None else None,
        last_name=signup.last_name if contact.last_name is None else None)
    store.upsert_contact(session, fill, actor=ACTOR)


def _record_new(session: Session, ctx: AppContext, signup: SignupInput, evidence: Evidence,
                *, channel: str, language: str) -> tuple[str, ...]:
    """The first sign-up of an address, in Core SQL: the same rows as the ORM path
    (`store.upsert_contact`, `ledger.append` per purpose, `request_confirmation`) in five
    statements, because a sign-up form must stay fast under a burst. A new address has
    no consent in force and no earlier mail, so every purpose is mailed for."""
    key, now = signup.address.key, utcnow()
    contact_id = contacts.create(session, [{
        "email_key": key, "email_display": signup.address.display,
        "first_name": signup.first_name, "last_name": signup.last_name, "attributes": {},
        "is_customer": False, "created_at": now, "updated_at": now,
        # 1 at creation, one bump per appended event (as ledger.append does)
        "revision": 1 + len(signup.purposes)}])[key]
    audits = [audit.AuditRow(ACTOR, "contact_created", contact_id, at=now)]
    events = []
    for purpose in signup.purposes:
        record = _given(purpose, evidence, channel, text_version=signup.text_version,
                        privacy_notice_version=signup.privacy_notice_version,
                        form_url=signup.form_url)
        events.append(ledger.event_row(contact_id, key, record, secrets.token_hex(8)))
        audits.append(audit.AuditRow(ACTOR, "consent_given", contact_id, {
            "purpose": purpose, "source": channel, "occurred_at": evidence.at.isoformat()},
            at=now))
    stored_ledger.append(session, events)  # the one write path of the ledger (hash chain)
    audit.append(session, audits)
    if ctx.settings.double_opt_in != "syncd":
        return ()
    _queue_confirmation(session, ctx, contact_id, key, signup.purposes, language=language,
                        now=evidence.at)
    return signup.purposes


def _record_known(session: Session, ctx: AppContext, contact: Contact, signup: SignupInput,
                  evidence: Evidence, *, channel: str, language: str) -> tuple[str, ...]:
    _fill_names(session, contact, signup)
    record_given(session, contact, signup.purposes, evidence=evidence, channel=channel,
                 text_version=signup.text_version,
                 privacy_notice_version=signup.privacy_notice_version,
                 form_url=signup.form_url)
    return request_confirmation(session, ctx, contact, signup.purposes, language=language,
                                now=evidence.at)


def record_signup(ctx: AppContext, signup: SignupInput, evidence: Evidence, *,
                  channel: str, language: str) -> SignupOutcome:
    """Record one sign-up; ticking nothing records nothing."""
    if not signup.purposes:
        metrics.SIGNUPS.labels(channel, "nothing_ticked").inc()
        return SignupOutcome((), ())
    for attempt in range(2):
        try:
            with transaction(ctx.sessions) as session:
                known = store.find_contact(session, signup.address.key)
                mailed = (_record_new(session, ctx, signup, evidence, channel=channel,
                                      language=language) if known is None else
                          _record_known(session, ctx, known, signup, evidence,
                                        channel=channel, language=language))
        except IntegrityError:
            # The same new address signed up twice at once: the other created the
            # contact; once more finds it.
            if attempt:
                raise
            continue
        metrics.SIGNUPS.labels(channel, "recorded").inc()
        return SignupOutcome(signup.purposes, mailed)
    raise AssertionError("unreachable")
