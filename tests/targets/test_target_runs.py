"""Sync targets end to end, on both databases against the emulator's two audiences: each
target its own lock and safety limit, the one named picked, a clear error for a name no
target has."""

from __future__ import annotations

import pytest

from mailchimp_emulator import MailchimpEmulator
from syncd.consent.policy import Action
from syncd.context import AppContext
from syncd.errors import ConfigError
from syncd.runner_lock import RunnerBusy, single_runner
from syncd.sync.run import run_sync
from tests.builders import add_contact, at, confirmed
from tests.conftest import TEST_AUDIENCE_ID
from tests.targets.conftest import NEWSLETTER, OFFERS, OFFERS_AUDIENCE, two_target_settings

ADA = "ada@example.org"


def test_each_target_pushes_only_the_people_of_its_own_purpose_to_its_own_audience(
        targets_ctx: AppContext, two_audiences: MailchimpEmulator) -> None:
    add_contact(targets_ctx, ADA, events=confirmed("newsletter"), lists=["newsletter-nl"])
    add_contact(targets_ctx, "bob@example.org", events=confirmed("offers"), lists=["offers"])

    news = run_sync(targets_ctx, target=targets_ctx.settings.target("newsletter"))
    offers = run_sync(targets_ctx, target=targets_ctx.settings.target("offers"))

    assert (news.target, news.added, offers.target, offers.added) == (
        "newsletter", 1, "offers", 1)
    assert two_audiences.member(ADA) is not None
    assert two_audiences.member(ADA, list_id=OFFERS_AUDIENCE) is None
    assert two_audiences.member("bob@example.org", list_id=OFFERS_AUDIENCE) is not None
    assert two_audiences.member("bob@example.org") is None


def test_a_target_whose_lock_is_held_does_not_block_the_other(
        targets_ctx: AppContext) -> None:
    add_contact(targets_ctx, ADA, events=confirmed("offers"), lists=["offers"])

    with single_runner(targets_ctx.engine, f"sync:{TEST_AUDIENCE_ID}"):
        with pytest.raises(RunnerBusy):
            run_sync(targets_ctx, target=targets_ctx.settings.target("newsletter"))
        report = run_sync(targets_ctx, target=targets_ctx.settings.target("offers"))

    assert (report.outcome, report.added) == ("succeeded", 1)


def test_each_target_holds_unsubscribes_by_its_own_safety_limit(
        database_url: str, two_audiences: MailchimpEmulator) -> None:
    strict = NEWSLETTER.model_copy(update={"max_unsubscribe_share": 0.0, "unsubscribe_floor": 0})
    ctx = AppContext.open(two_target_settings(database_url, two_audiences, strict, OFFERS))
    ctx.sync_lists()
    try:
        add_contact(ctx, ADA, events=confirmed("newsletter") + confirmed("offers"),
                    lists=["newsletter-nl", "offers"])
        for name in ("newsletter", "offers"):
            run_sync(ctx, target=ctx.settings.target(name))
        add_contact(ctx, ADA, events=[("newsletter", Action.WITHDRAWN, at(1)),
                                      ("offers", Action.WITHDRAWN, at(1))])
        news = run_sync(ctx, target=ctx.settings.target("newsletter"))
        offers = run_sync(ctx, target=ctx.settings.target("offers"))
    finally:
        ctx.close()

    assert (news.outcome, news.held_unsubscribes, news.unsubscribe_limit) == ("refused", 1, 0)
    assert (offers.outcome, offers.unsubscribed, offers.unsubscribe_limit) == (
        "succeeded", 1, 50)
    assert two_audiences.member(ADA)["status"] == "subscribed"  # type: ignore[index]
    assert two_audiences.member(ADA, list_id=OFFERS_AUDIENCE)["status"] == (  # type: ignore[index]
        "unsubscribed")


def test_naming_no_target_with_several_configured_is_a_clear_error(
        targets_ctx: AppContext) -> None:
    with pytest.raises(ConfigError, match="several targets are configured"):
        run_sync(targets_ctx)


def test_a_target_name_no_target_has_is_a_clear_error(targets_ctx: AppContext) -> None:
    with pytest.raises(ConfigError, match="no target is called 'promo'; configured: "
                                          "newsletter, offers"):
        targets_ctx.settings.target("promo")
