"""`syncd audience audit`: the live audience held against the ledger, read-only.

Every member Mailchimp has (all statuses, streamed a page of 1000 at a time) falls in
one class, worst first (rule 12: an existing audience gets no pass):

1. mailed_against_ledger: subscribed or pending although the ledger blocks them
   (withdrawn, suppressed, erased, bounced);
2. mailed_without_consent: subscribed or pending, a CRM contact, but no provable
   basis in the ledger for the target (a confirmed consent of one of its purposes, or
   for a soft opt-in target a paid purchase in the period; a finding for the DPO, never
   taken as consent);
3. subscribed_without_contact: subscribed or pending with no CRM contact at all;
4. gone_not_in_ledger: unsubscribed or cleaned at Mailchimp, the ledger does not know;
5. consistent: everything else (archived and transactional members included).

Counts go to the terminal and the logs; addresses only to the CSV/JSON the operator asks
for. Nothing is written anywhere."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from syncd.clock import utcnow
from syncd.config.targets import TargetSettings
from syncd.consent import ledger
from syncd.consent.lifecycle import repermission_due
from syncd.consent.policy import (
    ConsentFact,
    Decision,
    PurchaseFact,
    Standing,
    SuppressionFact,
    decide,
    decide_soft_opt_in,
)
from syncd.context import AppContext
from syncd.crm import address_history, suppression
from syncd.crm.erasure import ERASURE_REASON
from syncd.db import transaction
from syncd.esp.protocol import LIVE_STATUSES, AudienceReader, RemoteMember
from syncd.schema import RunKind, RunOutcome
from syncd.store import contacts as store_contacts
from syncd.store import purchases as store_purchases
from syncd.store import runs
from syncd.store.contacts import ContactRow
from syncd.webhooks.mailchimp_form import normalise_address

CLASSES = ("mailed_against_ledger", "mailed_without_consent", "subscribed_without_contact",
           "gone_not_in_ledger", "consistent")
# The classes that make the audit exit non-zero (for cron and CI): somebody is mailed
# against or without the ledger.
FAILING = frozenset(CLASSES[:3])
MAILED = LIVE_STATUSES
AUDIT_RUN_KIND = RunKind.AUDIENCE_AUDIT
GONE = frozenset({"unsubscribed", "cleaned"})
_BLOCKING = {Standing.WITHDRAWN: "withdrawn", Standing.SUPPRESSED: "suppressed",
             Standing.UNDELIVERABLE: "bounced"}


@dataclass(frozen=True)
class Finding:
    """One member and its class. Holds the address: for the CSV/JSON only."""

    email: str
    status: str
    klass: str
    reason: str
    contact_id: int | None


@dataclass
class AuditReport:
    audience_id: str
    members: int = 0
    read_calls: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    # Consents still standing but older than `retention_repermission_days` (rule: flag
    # for re-permission, never act on it): counts per purpose, no address.
    repermission: dict[str, Any] = field(default_factory=dict)

    @property
    def failing(self) -> bool:
        return any(self.counts[name] for name in FAILING)

    def to_dict(self) -> dict[str, object]:
        return {"audience_id": self.audience_id, "members": self.members,
                "read_calls": self.read_calls,
                "counts": {name: self.counts[name] for name in CLASSES},
                "reasons": dict(sorted(self.reasons.items())), "failing": self.failing,
                "repermission": self.repermission}


def classify(  # noqa: PLR0911 - one flat table, worst class first
        member: RemoteMember, contact: ContactRow | None, decision: Decision | None,
        blocks: Sequence[SuppressionFact], *, pending_is_consented: bool) -> Finding:
    """The class of one member. Pure."""
    mailed, gone = member.status in MAILED, member.status in GONE
    cid = contact.id if contact is not None else None

    def found(klass: str, reason: str) -> Finding:
        return Finding(member.email, member.status, klass, reason, cid)

    if decision is None:  # no contact: only suppressions (erasure keeps one) speak
        if blocks and mailed:
            erased = any(b.reason == ERASURE_REASON for b in blocks)
            return found(CLASSES[0], "erased" if erased else "suppressed")
        if mailed:
            return found(CLASSES[2], "no CRM contact")
        if gone and not blocks:
            return found(CLASSES[3], f"{member.status}, no suppression")
        return found(CLASSES[4], member.status)
    blocked = _BLOCKING.get(decision.standing)
    if mailed and blocked:
        erased = blocked == "suppressed" and any(b.reason == ERASURE_REASON for b in blocks)
        return found(CLASSES[0], "erased" if erased else blocked)
    if mailed and not decision.eligible and not (
            pending_is_consented and member.status == "pending"
            and decision.standing is Standing.UNCONFIRMED):
        return found(CLASSES[1], str(decision.standing))
    if gone and blocked is None:
        return found(CLASSES[3], f"{member.status}, ledger: {decision.standing}")
    return found(CLASSES[4], member.status)


def run_audit(ctx: AppContext, esp: AudienceReader, *,
              each: Callable[[Finding], None] | None = None,
              target: TargetSettings | None = None) -> AuditReport:
    """Stream the target's audience (None: the only target); `each` gets every finding
    (consistent ones included). Members are judged by the target's basis and purposes."""
    chosen = target or ctx.settings.target()
    audience = chosen.audience_id
    report = AuditReport(audience_id=audience)
    for page in esp.iter_audience(page_size=1000):
        report.read_calls += 1
        for finding in audit_page(ctx, page, now=utcnow(), target=chosen):
            report.members += 1
            report.counts[finding.klass] += 1
            if finding.klass != "consistent":
                report.reasons[f"{finding.klass}:{finding.reason}"] += 1
            if each is not None:
                each(finding)
    moment = utcnow()
    with transaction(ctx.sessions) as session:
        due = repermission_due(session, ctx.settings, now=moment, listed=0)
        report.repermission = {"older_than_days": due.older_than_days, "count": due.count,
                               "by_purpose": dict(sorted(due.by_purpose.items()))}
        # The audit's counts (never an address) for the status page; the audit itself
        # changes nothing at Mailchimp or in the ledger.
        runs.record(session, kind=AUDIT_RUN_KIND, audience_id=audience, moment=moment,
                    outcome=RunOutcome.FINDINGS if report.failing else RunOutcome.SUCCEEDED,
                    counts={"members": report.members,
                            "classes": {n: report.counts[n] for n in CLASSES},
                            "repermission_due": due.count})
    return report


def _decide(target: TargetSettings, contact: ContactRow, events: Sequence[ConsentFact],
            blocks: Sequence[SuppressionFact], purchases: Sequence[PurchaseFact],
            *, now: datetime) -> Decision:
    """The target's basis: soft opt-in (rule 11), or a consent of one of its purposes."""
    if target.basis == "soft_opt_in":
        return decide_soft_opt_in(
            purpose=target.purposes[0], purchases=purchases, events=events,
            suppressions=blocks, undeliverable_since=contact.undeliverable_at, now=now,
            months=target.soft_opt_in_months)
    decisions = [decide(purpose=purpose, events=events, suppressions=blocks,
                        is_customer=contact.is_customer,
                        undeliverable_since=contact.undeliverable_at, now=now)
                 for purpose in target.purposes]
    return next((d for d in decisions if d.eligible), decisions[0])


def audit_page(ctx: AppContext, page: Sequence[RemoteMember], *,
               now: datetime, target: TargetSettings | None = None) -> Iterator[Finding]:
    settings, keyring = ctx.settings, ctx.keyring
    chosen = target or settings.target()
    scope = {*chosen.purposes, suppression.ALL_PURPOSES}
    keys = {m.email: (normalise_address(m.email) or (m.email.lower(), ""))[0] for m in page}
    hmacs = {key: keyring.address_hmac(key) for key in keys.values()}
    with transaction(ctx.sessions) as session:
        contacts = store_contacts.by_keys(session, keys.values())
        ids = [c.id for c in contacts.values()]
        events = ledger.facts_by_contact(session, ids)
        bought = ({cid: tuple(PurchaseFact(p.on, p.category, p.paid) for p in rows)
                   for cid, rows in store_purchases.of_contacts(session.connection(),
                                                                ids).items()}
                  if chosen.basis == "soft_opt_in" else {})
        related = address_history.same_person(session.connection(), hmacs.values(),
                                              keyring.address_hmac)
        wanted = set(hmacs.values()).union(*related.values()) if related else set(
            hmacs.values())
        suppression_facts = suppression.facts_by_hmac(session, sorted(wanted))
        for member in page:
            key = keys[member.email]
            mac = hmacs[key]
            blocks = [fact for m in {mac} | related.get(mac, set())
                      for fact in suppression_facts.get(m, ())
                      if fact.purpose in scope]
            contact = contacts.get(key)
            decision = None if contact is None else _decide(
                chosen, contact, events.get(contact.id, ()), blocks,
                bought.get(contact.id, ()), now=now)
            yield classify(member, contact, decision, blocks,
                           pending_is_consented=settings.sync_push_unconfirmed_as_pending)
