"""Webhooks routed by their list_id, over HTTP to the real endpoint on both databases: an
unsubscribe in one audience withdraws only its target's purposes, an abuse complaint in
any audience blocks every marketing purpose, an audience no target syncs is answered 200
and never applied."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import REGISTRY

from mailchimp_emulator import MailchimpEmulator
from syncd.context import AppContext
from syncd.db import transaction
from syncd.store import lists
from tests.builders import add_contact, confirmed, contact_by_email
from tests.conftest import TEST_AUDIENCE_ID, fixture_body
from tests.targets.conftest import NEWSLETTER, OFFERS, OFFERS_AUDIENCE, two_target_settings
from tests.webhooks.conftest import Served, inbox_rows, served_for  # noqa: F401 - fixture

ADA, ALAN = "ada.lovelace@example.com", "alan.turing@example.com"
EVERYTHING = ["newsletter-nl", "offers", "events"]


def _for_audience(name: str, list_id: str) -> bytes:
    return fixture_body(name).replace(f"list_id%5D={TEST_AUDIENCE_ID}".encode(),
                                      f"list_id%5D={list_id}".encode())


def _lists(ctx: AppContext, email: str) -> list[str]:
    contact = contact_by_email(ctx, email)
    assert contact is not None
    with transaction(ctx.sessions) as session:
        return sorted(m.name for m in lists.lists_of(session, contact.id))


def _person(ctx: AppContext, email: str) -> None:
    add_contact(ctx, email, events=confirmed("newsletter") + confirmed("offers")
                + confirmed("events"), lists=EVERYTHING)


def test_an_unsubscribe_in_the_offers_audience_withdraws_only_offers(
        targets_ctx: AppContext,
        served_for: Callable[[AppContext], Served]) -> None:  # noqa: F811 - the fixture
    _person(targets_ctx, ADA)

    answer = served_for(targets_ctx).post(_for_audience("unsubscribe.form", OFFERS_AUDIENCE))

    assert answer.status_code == 200
    assert _lists(targets_ctx, ADA) == ["events", "newsletter-nl"]


def test_an_unsubscribe_in_the_newsletter_audience_leaves_offers_alone(
        targets_ctx: AppContext,
        served_for: Callable[[AppContext], Served]) -> None:  # noqa: F811 - the fixture
    _person(targets_ctx, ADA)

    served_for(targets_ctx).post(fixture_body("unsubscribe.form"))

    assert _lists(targets_ctx, ADA) == ["events", "offers"]


def test_an_abuse_complaint_in_the_offers_audience_blocks_every_marketing_purpose(
        targets_ctx: AppContext,
        served_for: Callable[[AppContext], Served]) -> None:  # noqa: F811 - the fixture
    _person(targets_ctx, ALAN)

    served_for(targets_ctx).post(_for_audience("unsubscribe-abuse.form", OFFERS_AUDIENCE))

    assert _lists(targets_ctx, ALAN) == []


def test_a_webhook_for_an_audience_no_target_syncs_is_answered_and_never_applied(
        targets_ctx: AppContext,
        served_for: Callable[[AppContext], Served]) -> None:  # noqa: F811 - the fixture
    _person(targets_ctx, ADA)
    before = REGISTRY.get_sample_value("syncd_webhook_unrouted_events_total",
                                       {"kind": "unsubscribe"}) or 0.0

    answer = served_for(targets_ctx).post(_for_audience("unsubscribe.form", "a1b2c3d4e5"))

    assert answer.status_code == 200
    assert _lists(targets_ctx, ADA) == sorted(EVERYTHING)
    assert [row.status for row in inbox_rows(targets_ctx)] == ["ignored"]
    assert REGISTRY.get_sample_value("syncd_webhook_unrouted_events_total",
                                     {"kind": "unsubscribe"}) == before + 1


def test_an_unsubscribe_withdraws_every_purpose_of_a_target_with_several(
        database_url: str, two_audiences: MailchimpEmulator,
        served_for: Callable[[AppContext], Served]) -> None:  # noqa: F811 - the fixture
    both = NEWSLETTER.model_copy(update={"purposes": ("newsletter", "events")})
    ctx = AppContext.open(two_target_settings(database_url, two_audiences, both, OFFERS))
    ctx.sync_lists()
    try:
        _person(ctx, ADA)
        served_for(ctx).post(fixture_body("unsubscribe.form"))
        assert _lists(ctx, ADA) == ["offers"]
    finally:
        ctx.close()
