"""I6: the final state does not depend on arrival order; a stale event never revives
an unsubscribed person; a newer confirmed consent beats an older withdrawal."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from syncd.consent.policy import Standing
from syncd.context import AppContext
from syncd.webhooks.inbox import receive
from syncd.webhooks.mailchimp_form import parse_body
from tests.builders import add_contact, at, confirmed
from tests.conftest import fixture_body, make_settings
from tests.webhooks.snapshot import PersonState, person, suppressions

EVENTS = ("subscribe.form", "profile.form", "upemail.form", "unsubscribe.form")


@pytest.fixture
def esp_master(database_url: str) -> Iterator[AppContext]:
    ctx = AppContext.open(make_settings(database_url, webhook_profile_master="esp"))
    ctx.sync_lists()
    yield ctx
    ctx.close()


def _for(n: int, name: str) -> bytes:
    """The fixture body, about person n (old and new address made unique)."""
    return (fixture_body(name).replace(b"ada.lovelace%40", f"ada{n}.lovelace%40".encode())
            .replace(b"ada.king%40", f"ada{n}.king%40".encode()))


def _deliver(ctx: AppContext, body: bytes) -> str:
    return receive(ctx.sessions, parse_body(body), body.decode(), settings=ctx.settings,
                   keyring=ctx.keyring).status


def _final(ctx: AppContext, n: int) -> tuple[PersonState, dict[str, object], dict[str, object]]:
    state = person(ctx, f"ada{n}.king@example.org")
    # Everything but the address itself (unique per person here) and the revision count.
    key = (state.email_key or "").replace(f"ada{n}.", "ada.")
    return (state.__class__(**{**state.__dict__, "revision": 0, "email_key": key}),
            dict(suppressions(ctx, f"ada{n}.king@example.org")),
            dict(suppressions(ctx, f"ada{n}.lovelace@example.com")))


def test_every_arrival_order_gives_the_same_final_state(esp_master: AppContext) -> None:
    orders = list(itertools.permutations(EVENTS))
    for n, _ in enumerate(orders):
        add_contact(esp_master, f"ada{n}.lovelace@example.com", events=confirmed(),
                    lists=["newsletter-nl", "offers"], first_name="Ada", last_name="Lovelace")
    finals = []
    for n, order in enumerate(orders):
        for name in order:
            _deliver(esp_master, _for(n, name))
        finals.append(_final(esp_master, n))
    first = finals[0]
    assert all(final == first for final in finals), [
        (orders[i], f) for i, f in enumerate(finals) if f != first][:2]
    state, new_blocks, old_blocks = first
    assert state.email_key == "ada.king@example.org"
    assert (state.first_name, state.last_name) == ("Augusta Ada", "King")
    assert state.lists == ("offers",)
    assert state.standing in (Standing.WITHDRAWN, Standing.SUPPRESSED)
    assert len(state.withdrawals) == 1
    assert set(new_blocks) == set(old_blocks) == {"newsletter"}


def test_cleaned_and_upemail_converge_in_both_orders(app_context: AppContext) -> None:
    for n in (0, 1):
        add_contact(app_context, f"ada{n}.lovelace@example.com", events=confirmed(),
                    lists=["newsletter-nl"])
    cleaned = fixture_body("cleaned-hard.form").replace(b"nobody.home%40example.net",
                                                        b"ada.lovelace%40example.com")
    for n, order in enumerate(((cleaned, fixture_body("upemail.form")),
                               (fixture_body("upemail.form"), cleaned))):
        for template in order:
            _deliver(app_context, template.replace(b"ada.lovelace%40", f"ada{n}.lovelace%40"
                                                   .encode())
                     .replace(b"ada.king%40", f"ada{n}.king%40".encode()))
    assert _final(app_context, 0) == _final(app_context, 1)
    assert not person(app_context, "ada0.king@example.org").undeliverable


def test_stale_profile_and_subscribe_after_unsubscribe_do_not_revive(
        esp_master: AppContext) -> None:
    add_contact(esp_master, "ada.lovelace@example.com", events=confirmed(),
                lists=["newsletter-nl"], first_name="Ada", last_name="Lovelace")
    _deliver(esp_master, fixture_body("unsubscribe.form"))
    before = person(esp_master, "ada.lovelace@example.com")
    for name in ("profile.form", "subscribe.form"):
        _deliver(esp_master, fixture_body(name))
    after = person(esp_master, "ada.lovelace@example.com")
    assert after.lists == before.lists == ()
    assert after.standing == before.standing
    assert not after.eligible
    assert after.confirmations == before.confirmations


def test_stale_profile_does_not_overwrite_a_newer_one(esp_master: AppContext) -> None:
    add_contact(esp_master, "ada.lovelace@example.com", events=confirmed())
    newer = fixture_body("profile.form").replace(b"2026-03-03+21", b"2026-03-09+21").replace(
        b"Augusta+Ada", b"Newer")
    _deliver(esp_master, newer)
    assert _deliver(esp_master, fixture_body("profile.form")) == "ignored"
    assert person(esp_master, "ada.lovelace@example.com").first_name == "Newer"


def test_unsubscribe_for_the_old_address_after_upemail_still_purges(
        app_context: AppContext) -> None:
    add_contact(app_context, "ada.lovelace@example.com", events=confirmed(),
                lists=["newsletter-nl"])
    _deliver(app_context, fixture_body("upemail.form"))
    _deliver(app_context, fixture_body("unsubscribe.form"))
    state = person(app_context, "ada.king@example.org")
    assert state.lists == ()
    assert not state.eligible
    assert "newsletter" in suppressions(app_context, "ada.king@example.org")


def test_newer_confirmed_consent_beats_a_late_older_unsubscribe(
        app_context: AppContext) -> None:
    # Confirmed on 2026-03-11, after the unsubscribe fired (2026-03-04) but before it
    # arrived: a re-consent, which the sync sends as pending.
    add_contact(app_context, "ada.lovelace@example.com",
                events=confirmed() + confirmed(days=10), lists=["newsletter-nl"])
    _deliver(app_context, fixture_body("unsubscribe.form"))
    state = person(app_context, "ada.lovelace@example.com")
    assert state.standing is Standing.RE_CONSENT
    assert state.eligible
    assert at(10) > state.withdrawals[0][1]
    assert state.lists == ("newsletter-nl",)  # the list the newer consent brought stays


def test_late_older_abuse_complaint_keeps_only_lists_of_newer_consents(
        app_context: AppContext) -> None:
    add_contact(app_context, "alan.turing@example.com",
                events=confirmed() + confirmed("offers", days=10) + confirmed("events"),
                lists=["newsletter-nl", "offers", "events", "ebook-leads"])
    _deliver(app_context, fixture_body("unsubscribe-abuse.form"))  # fired 2026-03-06
    assert person(app_context, "alan.turing@example.com").lists == ("ebook-leads", "offers")
    assert person(app_context, "alan.turing@example.com", "offers").eligible
    assert not person(app_context, "alan.turing@example.com", "events").eligible


def test_unsubscribe_of_the_new_address_before_its_upemail_is_applied_on_arrival_of_it(
        app_context: AppContext) -> None:
    from datetime import UTC, datetime

    add_contact(app_context, "ada.lovelace@example.com", events=confirmed(),
                lists=["newsletter-nl"])
    early = fixture_body("unsubscribe.form").replace(b"ada.lovelace%40example.com",
                                                     b"ada.king%40example.org")
    _deliver(app_context, early)  # the new address is nobody's yet: suppression only
    assert person(app_context, "ada.lovelace@example.com").lists == ("newsletter-nl",)
    _deliver(app_context, fixture_body("upemail.form"))
    state = person(app_context, "ada.king@example.org")
    assert state.lists == ()
    assert [w[1] for w in state.withdrawals] == [datetime(2026, 3, 4, 13, 10, 40, tzinfo=UTC)]
