"""Reconciliation per target, against the emulator's two audiences on both databases: an
unsubscribe read from the offers audience withdraws offers only, with that audience's
own cursor."""

from __future__ import annotations

from mailchimp_emulator import MailchimpEmulator
from syncd.context import AppContext
from syncd.db import transaction
from syncd.inbound.reconcile import cursor_name, run_reconcile
from syncd.store import cursors, lists
from syncd.sync.run import run_sync
from tests.builders import add_contact, confirmed, contact_by_email
from tests.conftest import TEST_AUDIENCE_ID
from tests.targets.conftest import OFFERS_AUDIENCE

ADA = "ada@example.org"


def test_an_unsubscribe_read_from_the_offers_audience_withdraws_only_offers(
        targets_ctx: AppContext, two_audiences: MailchimpEmulator) -> None:
    add_contact(targets_ctx, ADA, events=confirmed("newsletter") + confirmed("offers"),
                lists=["newsletter-nl", "offers"])
    for name in ("newsletter", "offers"):
        run_sync(targets_ctx, target=targets_ctx.settings.target(name))
    two_audiences.fire_unsubscribe(ADA, list_id=OFFERS_AUDIENCE)

    report = run_reconcile(targets_ctx, target=targets_ctx.settings.target("offers"))

    contact = contact_by_email(targets_ctx, ADA)
    assert contact is not None
    with transaction(targets_ctx.sessions) as session:
        names = sorted(m.name for m in lists.lists_of(session, contact.id))
        offers_cursor = cursors.read(session, cursor_name(OFFERS_AUDIENCE))
        news_cursor = cursors.read(session, cursor_name(TEST_AUDIENCE_ID))
    assert (report.audience_id, report.applied) == (OFFERS_AUDIENCE, 1)
    assert names == ["newsletter-nl"]
    assert (offers_cursor is not None, news_cursor) == (True, None)
