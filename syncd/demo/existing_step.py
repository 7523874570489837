"""The demo's step "An audience that already had members" (rule 12, I2, I11): members that
were at Mailchimp before syncd, read by the audience pull, judged by the audit, then a
withdrawal of one of them reaching Mailchimp and the re-consent of one who had left.

Through the code production runs: `run_pull`, `run_audit`, the ledger, `run_sync`."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from mailchimp_emulator.faults import RequestInfo
from syncd.addresses import parse_address
from syncd.clock import utcnow
from syncd.consent import ledger
from syncd.consent.ledger import ConsentRecord
from syncd.consent.policy import Action
from syncd.crm import store
from syncd.db import transaction
from syncd.demo.checks import Check
from syncd.demo.stage import PRE_EXISTING, Stage
from syncd.esp.mailchimp import mailchimp_client
from syncd.sync.audience_audit import run_audit
from syncd.sync.audience_pull import run_pull
from syncd.sync.run import run_sync

# Members of the audience from before syncd (the emulator is seeded with them).
STAYS = "olga.visser@example.com"  # consented in the CRM long ago; withdraws now
LEFT = "piet.bakker@example.com"  # unsubscribed at Mailchimp before syncd; comes back
STRANGER = PRE_EXISTING  # at Mailchimp, in no CRM at all (seeded with the stage)


def _consent(session: Any, email: str, action: Action, when: Any) -> None:
    contact = store.find_contact(session, email)
    if contact is None:
        contact, _ = store.upsert_contact(session, store.ContactData(
            address=parse_address(email)), actor="demo")
    ledger.append(session, contact, ConsentRecord(
        purpose="newsletter", action=action, occurred_at=when, source="web_form",
        ip="198.51.100.20"), actor="demo")


def existing_audience_step(stage: Stage) -> tuple[str, str, str, dict[str, Any], list[Check]]:
    """(key, title, shows, facts, checks) of the step."""
    emu, ctx = stage.emulator, stage.ctx
    long_ago = utcnow() - timedelta(days=400)
    with transaction(ctx.sessions) as session:
        _consent(session, STAYS, Action.GIVEN, long_ago)
        _consent(session, STAYS, Action.CONFIRMED, long_ago + timedelta(hours=1))
        _consent(session, LEFT, Action.GIVEN, long_ago)
        _consent(session, LEFT, Action.CONFIRMED, long_ago + timedelta(hours=1))
    emu.seed_member(STAYS, "subscribed")
    emu.seed_member(LEFT, "unsubscribed", unsubscribe_reason="N/A (Unsubscribe link)")

    newsletter = stage.newsletter
    pulled = run_pull(ctx, target=newsletter)
    client = mailchimp_client(ctx.settings, newsletter.audience_id)
    try:
        audit = run_audit(ctx, client, target=newsletter)
    finally:
        client.close()
    # Now Olga withdraws in the CRM, and Piet signs up again and confirms.
    now = utcnow()
    with transaction(ctx.sessions) as session:
        _consent(session, STAYS, Action.WITHDRAWN, now)
        _consent(session, LEFT, Action.GIVEN, now + timedelta(microseconds=1))
        _consent(session, LEFT, Action.CONFIRMED, now + timedelta(microseconds=2))
    subscribes: list[str] = []

    def watch(info: RequestInfo) -> None:
        if isinstance(info.body, dict) and info.body.get("status") == "subscribed":
            subscribes.append(info.path)

    emu.set_hook(watch, match=r"^(PUT|PATCH|POST) ")
    try:
        report = run_sync(ctx, target=newsletter)
    finally:
        emu.clear_faults()
    stays, left = emu.member(STAYS) or {}, emu.member(LEFT) or {}
    facts = {
        "pull": {"seen": pulled.seen, "matched": pulled.matched,
                 "unmatched": pulled.unmatched, "read_calls": pulled.read_calls},
        "audit": dict(audit.to_dict()["counts"]),  # type: ignore[call-overload]
        "sync": {"outcome": report.outcome, "unsubscribed": report.unsubscribed,
                 "reconsent_pending": report.reconsent_pending},
        "after": {STAYS: stays.get("status"), LEFT: left.get("status"),
                  STRANGER: (emu.member(STRANGER) or {}).get("status")},
    }
    found = audit.counts
    checks = [
        Check("the pull read the audience and matched the CRM contacts",
              pulled.matched >= 2 and pulled.unmatched >= 1,
              f"{pulled.matched} matched, {pulled.unmatched} unmatched"),
        Check("the audit finds the member with no CRM contact (a finding, not consent)",
              found["subscribed_without_contact"] >= 1,
              f"{found['subscribed_without_contact']} subscribed without a contact"),
        Check("a withdrawal in the CRM reaches a member syncd never added (I11)",
              stays.get("status") == "unsubscribed", f"Olga is {stays.get('status')}"),
        Check("the re-consent of one who had left goes as pending, one confirmation mail "
              "(rule 6)", left.get("status") == "pending"
              and emu.confirmation_mails_sent(LEFT) == 1, f"Piet is {left.get('status')}"),
        Check("no write sent `subscribed` for an existing member (I2)", not subscribes,
              f"{len(subscribes)} such writes"),
        Check("the member with no CRM contact is left as it is (rule 12: for the DPO)",
              (emu.member(STRANGER) or {}).get("status") == "subscribed"),
    ]
    return ("existing", "An audience that already had members",
            "rule 12, I2, I11: members from before syncd are read, audited and then "
            "treated like the ones syncd added", facts, checks)
