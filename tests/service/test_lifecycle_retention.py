"""The consent lifecycle rules of `prune` (Art. 5(1)(e)): each deletes exactly what it
should and nothing else, writes its audit entry, leaves the ledger's chain verifiable, and
`--dry-run` counts the same without removing anything."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text

from syncd.clock import utcnow
from syncd.consent.chain_verify import verify
from syncd.consent.lifecycle import repermission_due
from syncd.consent.policy import Action
from syncd.context import AppContext
from syncd.db import transaction
from syncd.retention import prune
from syncd.schema import AuditEntry, Contact, LedgerTombstone, PushState, Suppression
from syncd.service.status_data import collect
from tests.builders import add_contact, at, confirmed
from tests.conftest import TEST_AUDIENCE_ID, make_settings
from tests.crm import conftest as crm_fixtures
from tests.crm.conftest import Cli

# The real CLI on the test database (the CRM tests' fixtures).
cli, config_file = crm_fixtures.cli, crm_fixtures.config_file

# Prune runs "later": 200 days from now, so contacts made now are old enough.
LATER = utcnow() + timedelta(days=200)
RECENT = LATER - timedelta(days=5)


@pytest.fixture
def ctx(database_url: str) -> Iterator[AppContext]:
    context = AppContext.open(make_settings(
        database_url, retention_unconfirmed_days=30, retention_no_purpose_days=180,
        retention_repermission_days=365, retention_audit_days=0))
    context.sync_lists()
    yield context
    context.close()


def _emails(ctx: AppContext) -> set[str]:
    with ctx.sessions() as session:
        return set(session.scalars(select(Contact.email_key)))


def _audit(ctx: AppContext, action: str) -> list[AuditEntry]:
    with ctx.sessions() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def _chain_ok(ctx: AppContext) -> None:
    with ctx.sessions() as session:
        verdict = verify(session)
    assert verdict.ok, verdict.problem


def _live_at_esp(ctx: AppContext, contact_id: int, status: str) -> None:
    with transaction(ctx.sessions) as session:
        session.add(PushState(contact_id=contact_id, audience_id=TEST_AUDIENCE_ID,
                              settled_revision=1, esp_status=status, updated_at=utcnow()))


def test_old_unconfirmed_signups_are_deleted_and_nothing_else(ctx: AppContext) -> None:
    add_contact(ctx, "old.unconfirmed@example.com", lists=["newsletter-nl"],
                events=[("newsletter", Action.GIVEN, at(0))])
    add_contact(ctx, "recent.unconfirmed@example.com",
                events=[("newsletter", Action.GIVEN, RECENT)])
    add_contact(ctx, "confirmed@example.com", events=confirmed(), lists=["newsletter-nl"])
    add_contact(ctx, "customer@example.com", customer=True,
                events=[("offers", Action.GIVEN, at(0))])
    add_contact(ctx, "soft@example.com", events=[("offers", Action.SOFT_OPT_IN, at(0)),
                                                 ("newsletter", Action.GIVEN, at(0))])
    counts = prune(ctx, now=LATER)
    assert counts["unconfirmed_signups_deleted"] == 1
    assert _emails(ctx) == {"recent.unconfirmed@example.com", "confirmed@example.com",
                            "customer@example.com", "soft@example.com"}
    [entry] = _audit(ctx, "retention_unconfirmed_signups_deleted")
    assert (entry.details["contacts"], entry.details["consent_events"],
            entry.details["older_than_days"]) == (1, 1, 30)
    _chain_ok(ctx)


def test_a_deleted_unconfirmed_signup_leaves_a_tombstone_and_no_suppression(
        ctx: AppContext) -> None:
    add_contact(ctx, "old.unconfirmed@example.com", events=[("newsletter", Action.GIVEN, at(0))])
    prune(ctx, now=LATER)
    with ctx.sessions() as session:
        stones = list(session.scalars(select(LedgerTombstone.reason)))
        suppressions = session.scalar(select(func.count()).select_from(Suppression))
    assert (stones, suppressions) == (["unconfirmed_signup"], 0)


def test_an_unconfirmed_signup_pending_at_mailchimp_is_kept(ctx: AppContext) -> None:
    pending = add_contact(ctx, "pending@example.com",
                          events=[("newsletter", Action.GIVEN, at(0))])
    _live_at_esp(ctx, pending, "pending")
    counts = prune(ctx, now=LATER)
    assert (counts["unconfirmed_signups_deleted"], counts["contacts_kept_live_at_esp"]) == (0, 1)
    assert _emails(ctx) == {"pending@example.com"}


def test_contacts_with_no_purpose_left_are_erased_keeping_the_suppression(
        ctx: AppContext) -> None:
    withdrawn = [("newsletter", Action.GIVEN, at(0)), ("newsletter", Action.CONFIRMED, at(0.1)),
                 ("newsletter", Action.WITHDRAWN, at(1))]
    add_contact(ctx, "gone@example.com", events=withdrawn)
    add_contact(ctx, "nothing@example.com")  # no consent, no list, not a customer
    add_contact(ctx, "listed@example.com", events=withdrawn, lists=["ebook-leads"])
    add_contact(ctx, "customer@example.com", events=withdrawn, customer=True)
    add_contact(ctx, "consenting@example.com", events=confirmed())
    add_contact(ctx, "lately@example.com", events=[
        ("newsletter", Action.GIVEN, at(0)), ("newsletter", Action.CONFIRMED, at(0.1)),
        ("newsletter", Action.WITHDRAWN, RECENT)])
    counts = prune(ctx, now=LATER)
    assert counts["no_purpose_contacts_erased"] == 2
    assert _emails(ctx) == {"listed@example.com", "customer@example.com",
                            "consenting@example.com", "lately@example.com"}
    with ctx.sessions() as session:
        kept = set(session.scalars(select(Suppression.address_hmac)
                                   .where(Suppression.purpose == "*")))
    assert {ctx.keyring.address_hmac("gone@example.com"),
            ctx.keyring.address_hmac("nothing@example.com")} == kept
    [entry] = _audit(ctx, "retention_no_purpose_contacts_erased")
    assert (entry.details["contacts"], entry.details["consent_events"]) == (2, 3)
    _chain_ok(ctx)


def test_a_purposeless_contact_still_subscribed_at_mailchimp_is_kept(ctx: AppContext) -> None:
    contact = add_contact(ctx, "nothing@example.com")
    _live_at_esp(ctx, contact, "subscribed")
    counts = prune(ctx, now=LATER)
    assert (counts["no_purpose_contacts_erased"], counts["contacts_kept_live_at_esp"]) == (0, 1)


def test_old_audit_entries_go_after_their_retention_and_recent_ones_stay(
        database_url: str) -> None:
    context = AppContext.open(make_settings(database_url, retention_audit_days=365,
                                            retention_no_purpose_days=0))
    try:
        context.sync_lists()
        add_contact(context, "ada@example.com", events=confirmed())
        with transaction(context.sessions) as session:
            session.execute(text("UPDATE audit_log SET at = :old"),
                            {"old": utcnow() - timedelta(days=400)})
        add_contact(context, "bob@example.com", events=confirmed())
        with context.sessions() as session:
            before = session.scalar(select(func.count()).select_from(AuditEntry)) or 0
        counts = prune(context)
        with context.sessions() as session:
            after = session.scalar(select(func.count()).select_from(AuditEntry)) or 0
        [entry] = _audit(context, "retention_audit_entries_deleted")
    finally:
        context.close()
    assert counts["audit_entries_deleted"] == 3  # ada: created, given, confirmed
    assert after == before - 3 + 1  # and the rule's own entry
    assert entry.details["older_than_days"] == 365


def test_dry_run_counts_what_a_run_removes_and_removes_nothing(ctx: AppContext) -> None:
    add_contact(ctx, "old.unconfirmed@example.com", events=[("newsletter", Action.GIVEN, at(0))])
    add_contact(ctx, "nothing@example.com")
    add_contact(ctx, "consenting@example.com", events=confirmed())
    preview = prune(ctx, now=LATER, dry_run=True)
    assert len(_emails(ctx)) == 3
    assert not _audit(ctx, "retention_unconfirmed_signups_deleted")
    done = prune(ctx, now=LATER)
    assert preview == done
    assert (done["unconfirmed_signups_deleted"], done["no_purpose_contacts_erased"]) == (1, 1)


def test_a_rule_set_to_zero_days_is_off(database_url: str) -> None:
    context = AppContext.open(make_settings(database_url, retention_unconfirmed_days=0,
                                            retention_no_purpose_days=0))
    try:
        context.sync_lists()
        add_contact(context, "old.unconfirmed@example.com",
                    events=[("newsletter", Action.GIVEN, at(0))])
        counts = prune(context, now=LATER)
        assert len(_emails(context)) == 1
    finally:
        context.close()
    assert (counts["unconfirmed_signups_deleted"], counts["no_purpose_contacts_erased"]) == (0, 0)


def test_old_standing_consents_are_flagged_for_repermission(ctx: AppContext) -> None:
    old = add_contact(ctx, "old@example.com", events=confirmed())  # confirmed at T0
    add_contact(ctx, "fresh@example.com",
                events=[*confirmed(), ("newsletter", Action.CONFIRMED, RECENT)])
    add_contact(ctx, "withdrawn@example.com",
                events=[*confirmed(), ("newsletter", Action.WITHDRAWN, at(2))])
    with ctx.sessions() as session:
        due = repermission_due(session, ctx.settings, now=LATER)
    assert (due.count, due.by_purpose) == (1, {"newsletter": 1})
    assert [(d.contact_id, d.purpose) for d in due.listed] == [(old, "newsletter")]
    assert due.listed[0].confirmed_at == at(0) + timedelta(hours=1)
    assert collect(ctx, now=LATER)["repermission"]["count"] == 1


def test_prune_cli_dry_run_says_so(ctx: AppContext, cli: Cli) -> None:
    add_contact(ctx, "nothing@example.com")
    result = cli("prune", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["dry_run"] is True
    assert len(_emails(ctx)) == 1
