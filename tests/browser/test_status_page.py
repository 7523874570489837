"""The status page in a real headless Chromium: it renders, shows a held withdrawal and a
parked contact, and no address appears anywhere on it (nor in what the page loads)."""

from __future__ import annotations

from typing import Any

from syncd.context import AppContext
from syncd.service.app import create_app
from tests.service.conftest import served
from tests.service.status_state import ADDRESSES, troubled


def test_status_page_shows_held_withdrawals_and_parked_contacts_without_addresses(
        app_context: AppContext, page: Any) -> None:
    parked_id = troubled(app_context, held=3)
    bodies: list[str] = []
    page.on("response", lambda response: bodies.append(response.text()))
    with served(create_app(app_context, webhooks=False)) as url:
        answer = page.goto(url + "/status")
        assert answer is not None
        assert answer.status == 200
        assert page.title() == "syncd status (2 alerts)"
        held = page.locator("#held-withdrawals b")
        assert held.inner_text() == "3"
        row = page.locator("#parked-contacts tbody tr")
        assert row.count() == 1
        assert row.locator("td").nth(0).inner_text() == f"#{parked_id}"
        assert "looks fake or invalid" in row.inner_text()
        alerts = page.locator("#alerts li")
        assert sorted(alerts.evaluate_all("els => els.map(e => e.dataset.alert)")) == [
            "events_parked", "withdrawals_held"]
        assert "3 withdrawal(s) held" in page.locator("#alerts").inner_text()
        text = page.locator("body").inner_text()
        html = page.content()
    for address in ADDRESSES:
        assert address not in text
        assert address not in html
        assert all(address not in body for body in bodies)
    assert "@" not in html


def test_status_page_of_a_healthy_installation_says_no_alerts(
        app_context: AppContext, page: Any) -> None:
    with served(create_app(app_context, webhooks=False)) as url:
        page.goto(url + "/status")
        assert page.title() == "syncd status"
        assert page.locator("#alerts").inner_text().strip() == "No alerts."
        assert page.locator("#held-withdrawals b").inner_text() == "0"
