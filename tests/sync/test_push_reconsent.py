"""The re-consent (`pending`) paths of the push that the other sync tests leave open,
through the sync run against the emulator on both databases: a member from before syncd,
found by the add, who confirmed again after leaving, is sent `pending` once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import pytest

from mailchimp_emulator import MailchimpEmulator
from syncd.clock import utcnow
from syncd.consent import ledger
from syncd.consent.ledger import ConsentRecord
from syncd.consent.policy import Action
from syncd.context import AppContext
from syncd.crm import store
from syncd.db import transaction
from syncd.sync.run import run_sync
from tests.builders import add_contact, confirmed
from tests.sync.conftest import sync_settings

ADA = "ada@example.org"


@pytest.fixture
def ctx(database_url: str, emulator: MailchimpEmulator) -> Iterator[AppContext]:
    context = AppContext.open(sync_settings(database_url, emulator))
    context.sync_lists()
    yield context
    context.close()


def _confirm_now(ctx: AppContext, email: str) -> None:
    """A new double opt-in, given and confirmed now (after anything Mailchimp did)."""
    with transaction(ctx.sessions) as session:
        contact = store.find_contact(session, email)
        assert contact is not None
        moment = utcnow()
        for action, offset in ((Action.GIVEN, 0), (Action.CONFIRMED, 1)):
            ledger.append(session, contact, ConsentRecord(
                purpose="newsletter", action=action,
                occurred_at=moment + timedelta(microseconds=offset), source="web_form",
                ip="198.51.100.4"), actor="test")


def test_a_member_found_by_the_add_who_confirmed_after_leaving_is_sent_pending_once(
        ctx: AppContext, emulator: MailchimpEmulator) -> None:
    run_sync(ctx)  # the first run's audience pull: the member below arrives after it
    emulator.seed_member(ADA, "unsubscribed")
    add_contact(ctx, ADA, events=confirmed(), lists=["newsletter-nl"])
    time.sleep(1.0)  # Mailchimp's timestamp_opt holds whole seconds: a later second
    _confirm_now(ctx, ADA)  # newer than the unsubscribe Mailchimp holds

    first = run_sync(ctx)
    again = run_sync(ctx)

    member = emulator.member(ADA)
    assert member is not None
    assert (first.reconsent_pending, member["status"]) == (1, "pending")
    assert (emulator.confirmation_mails_sent(ADA), again.write_calls) == (1, 0)

