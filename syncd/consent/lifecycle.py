"""The consent lifecycle (Art. 5(1)(e) GDPR, storage limitation): which contacts have
outlived their purpose, and which consents have grown old. Each rule finds its
candidates here; `syncd.retention.prune` applies them (or only counts them, --dry-run).

1. Unconfirmed sign-ups: a sign-up never confirmed never became consent (rule 3). After
   `retention_unconfirmed_days` without a confirmation the contact and its events go. No
   suppression is added: they did not object, and may sign up again.
2. No purpose left: no purpose they may be mailed for, no customer basis, on no list, and
   nothing happened for `retention_no_purpose_days`. They are erased as on request
   (syncd.crm.erasure): the address stays suppressed, so stale data re-imported later
   cannot bring back a consent they withdrew (I10).
3. Re-permission: a confirmed consent older than `retention_repermission_days` is flagged
   (the status page; `repermission_due` is the function an audience audit can call). It
   is never acted on automatically: consent does not expire by law, but its freshness
   is the controller's to judge (EDPB 05/2020, 3.1.1: refresh at appropriate intervals).

A contact Mailchimp still mails (subscribed or pending there) is never removed here:
erasing it locally would leave it live at the ESP and syncd unable to unsubscribe it; the
sync must settle it first. Such contacts are counted as kept."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from syncd.config import Settings
from syncd.consent import ledger
from syncd.consent.policy import Standing, SuppressionFact, decide
from syncd.esp.protocol import LIVE_STATUSES as LIVE_AT_ESP
from syncd.keys import Keyring
from syncd.store import retention as stored
from syncd.store import suppressions

LISTED = 100
# Standings that are a purpose: consent (also while the address bounces) or the soft
# opt-in basis of an existing customer.
_KEEP_STANDINGS = frozenset({Standing.CONFIRMED, Standing.RE_CONSENT, Standing.UNDELIVERABLE,
                             Standing.SOFT_OPT_IN_ONLY})


@dataclass
class Candidates:
    """Contacts a rule would remove, and those it keeps because the ESP still mails them."""

    ids: list[int] = field(default_factory=list)
    kept: list[int] = field(default_factory=list)

    @property
    def kept_live_at_esp(self) -> int:
        return len(self.kept)


def unconfirmed_signups(session: Session, settings: Settings, *, now: datetime) -> Candidates:
    """Contacts with a `given` consent older than the cutoff, never confirmed, no soft
    opt-in, not a customer, and no event at all since the cutoff."""
    found = Candidates()
    days = settings.retention_unconfirmed_days
    if not days:
        return found
    for page in stored.unconfirmed_signups(session, now - timedelta(days=days)):
        live = stored.with_esp_status(session, [c.id for c in page], LIVE_AT_ESP)
        for contact in page:
            (found.kept if contact.id in live else found.ids).append(contact.id)
    return found


def no_purpose_left(session: Session, settings: Settings, keyring: Keyring, *,
                    now: datetime, exclude: frozenset[int] = frozenset()
                    ) -> tuple[Candidates, dict[int, str]]:
    """Contacts with no purpose left since the cutoff, except `exclude` (those another
    rule already handles); with their addresses (the caller erases by address, which
    keeps the suppression)."""
    found = Candidates()
    addresses: dict[int, str] = {}
    days = settings.retention_no_purpose_days
    if not days:
        return found, addresses
    for page in stored.quiet_unlisted(session, now - timedelta(days=days)):
        ids = [c.id for c in page]
        facts = ledger.facts_by_contact(session, ids)
        hmacs = {c.id: keyring.address_hmac(c.email_key) for c in page}
        blocks = suppressions.by_hmac(session, hmacs.values())
        live = stored.with_esp_status(session, ids, LIVE_AT_ESP)
        for contact in page:
            if contact.id in exclude:
                continue
            held = [SuppressionFact(purpose=b.purpose, reason=b.reason,
                                    created_at=b.created_at)
                    for b in blocks.get(hmacs[contact.id], [])]
            standings = {decide(purpose=p, events=facts.get(contact.id, []),
                                suppressions=held, is_customer=False,
                                undeliverable_since=contact.undeliverable_at,
                                now=now).standing for p in settings.purposes}
            if standings & _KEEP_STANDINGS:
                continue
            if contact.id in live:
                found.kept.append(contact.id)
                continue
            found.ids.append(contact.id)
            addresses[contact.id] = contact.email_key
    return found, addresses


@dataclass(frozen=True)
class DueConsent:
    contact_id: int
    purpose: str
    confirmed_at: datetime


@dataclass
class RepermissionDue:
    older_than_days: int
    count: int = 0
    by_purpose: dict[str, int] = field(default_factory=dict)
    listed: list[DueConsent] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """For the status page: counts and contact ids only, no personal data."""
        return {"older_than_days": self.older_than_days, "count": self.count,
                "by_purpose": dict(sorted(self.by_purpose.items())),
                "listed": [{"contact_id": d.contact_id, "purpose": d.purpose,
                            "confirmed_at": d.confirmed_at.isoformat()} for d in self.listed]}


def repermission_due(session: Session, settings: Settings, *, now: datetime,
                     listed: int = LISTED) -> RepermissionDue:
    """Consents still standing whose last confirmation is older than the setting: per
    contact and purpose, the newest confirmation is before the cutoff and no withdrawal
    came after it. For the status page and for an audience audit to report."""
    days = settings.retention_repermission_days
    due = RepermissionDue(older_than_days=days)
    if not days:
        return due
    by_purpose, oldest = stored.confirmed_before(session, now - timedelta(days=days), listed)
    due.by_purpose = by_purpose
    due.count = sum(by_purpose.values())
    due.listed = [DueConsent(c.contact_id, c.purpose, c.confirmed_at) for c in oldest]
    return due
