"""The withdrawal's paths that the webhook does not take (webhooks/purge.py), each written
for a mutant of purge.py the webhook tests did not notice (docs/mutation.md): the
preference page, the permission moves and `syncd contacts object` call `purge.withdraw`
without the webhook's one read (`withdrawal.read`), so the withdrawal locks the contact and
reads its lists itself; and an abuse complaint on a target of several purposes, where
each purpose's withdrawal takes every marketing list, takes each list once; and an
unsubscribe already in effect leaves the contact as it was (its `updated_at` and the
change mark the sync reads, syncd.store.candidates), while one that only adds the
suppression makes the contact due for the sync."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from syncd.config.targets import TargetSettings
from syncd.consent.ledger import ConsentRecord
from syncd.consent.policy import Action
from syncd.context import AppContext
from syncd.db import transaction
from syncd.schema import AuditEntry, Contact
from syncd.webhooks import purge
from tests.builders import add_contact, confirmed
from tests.conftest import TEST_AUDIENCE_ID, fixture_body, make_settings, opened
from tests.webhooks.conftest import Served
from tests.webhooks.snapshot import person, suppressions

ADA = "ada.lovelace@example.com"
ALAN = "alan.turing@example.com"  # the address of unsubscribe-abuse.form
AT = datetime(2026, 3, 4, 13, 10, 40, tzinfo=UTC)


def _withdraw_outside_the_webhook(ctx: AppContext) -> tuple[bool, bool]:
    """A purpose withdrawn as the preference page withdraws it."""
    with transaction(ctx.sessions) as session:
        known = purge.find(session, ADA, AT)
        assert known is not None
        record = ConsentRecord(purpose="newsletter", action=Action.WITHDRAWN, occurred_at=AT,
                               source="preferences", reason="unticked on the preference page")
        return purge.withdraw(session, known, [ctx.keyring.address_hmac(ADA)], purge.Withdrawal(
            purpose="newsletter", moment=AT, record=record, dedupe_salt="salt",
            why="preference page", abuse=False, deleted=False, channel="preferences",
            actor="preferences", suppression_scope="newsletter",
            suppression_reason="preferences", window=timedelta(0)))


def test_a_withdrawal_outside_the_webhook_takes_the_contact_off_the_lists_of_the_purpose(
        app_context: AppContext) -> None:
    add_contact(app_context, ADA, events=confirmed(), lists=["newsletter-nl"])

    assert _withdraw_outside_the_webhook(app_context) == (True, True)

    assert person(app_context, ADA).lists == ()
    assert set(suppressions(app_context, ADA)) == {"newsletter"}
    assert [reason for _, _, reason in person(app_context, ADA).withdrawals] == [
        "unticked on the preference page"]


def test_an_abuse_complaint_on_a_target_of_several_purposes_takes_each_list_once(
        database_url: str, served_for: Callable[[AppContext], Served]) -> None:
    both = TargetSettings(name="newsletter", audience_id=TEST_AUDIENCE_ID,
                          purposes=("newsletter", "events"))
    with opened(make_settings(database_url, mailchimp_audience_id=None,
                              targets=[both])) as ctx:
        contact_id = add_contact(ctx, ALAN, events=confirmed("newsletter") + confirmed("events"),
                                 lists=["newsletter-nl", "events"])

        served_for(ctx).deliver("unsubscribe-abuse.form")

        with transaction(ctx.sessions) as session:
            removed = [entry.details["lists"] for entry in session.scalars(
                select(AuditEntry).where(AuditEntry.contact_id == contact_id,
                                         AuditEntry.action == "lists_removed")
                .order_by(AuditEntry.id))]
        # The first purpose's withdrawal took both lists (one entry per list's purpose);
        # the second found none left.
        assert sorted(removed) == [["events"], ["newsletter-nl"]]


def test_an_unsubscribe_already_in_effect_leaves_the_contact_untouched(
        served: Served, app_context: AppContext) -> None:
    contact_id = add_contact(app_context, ADA, events=confirmed(), lists=["newsletter-nl"])
    served.deliver("unsubscribe.form")
    with transaction(app_context.sessions) as session:
        before = session.get_one(Contact, contact_id)
        marked = (before.revision, before.updated_at, before.change_mark)

    # The same unsubscribe reported again a minute later: within the window, ignored.
    served.post(fixture_body("unsubscribe.form").replace(b"13%3A10%3A40", b"13%3A11%3A40"))

    with transaction(app_context.sessions) as session:
        after = session.get_one(Contact, contact_id)
        assert (after.revision, after.updated_at, after.change_mark) == marked


def test_an_unsubscribe_that_only_adds_the_suppression_makes_the_contact_due(
        served: Served, app_context: AppContext) -> None:
    # The CRM recorded the same withdrawal already, and no list is left: the suppression
    # alone is new, and it changes what the sync may push.
    contact_id = add_contact(app_context, ADA, events=[
        *confirmed(), ("newsletter", Action.WITHDRAWN, AT)])
    with transaction(app_context.sessions) as session:
        before = session.get_one(Contact, contact_id).revision

    served.deliver("unsubscribe.form")

    with transaction(app_context.sessions) as session:
        assert session.get_one(Contact, contact_id).revision == before + 1
