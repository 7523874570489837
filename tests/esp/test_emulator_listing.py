"""Reading members: `GET /lists/{id}/members`, paged by last_changed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from mailchimp_emulator import MailchimpEmulator


@pytest.fixture
def members_url(emu: MailchimpEmulator) -> str:
    return f"{emu.base_url}/lists/{emu.list_id}/members"


def emails(doc: dict[str, Any]) -> list[str]:
    return [m["email_address"] for m in doc["members"]]


def test_list_members_defaults_to_ten(emu: MailchimpEmulator, http: requests.Session,
                                      members_url: str) -> None:
    for i in range(12):
        emu.seed_member(f"m{i}@example.com")

    doc = http.get(members_url).json()

    assert len(doc["members"]) == 10
    assert (doc["total_items"], doc["list_id"]) == (12, emu.list_id)


def test_count_above_1000_is_rejected(http: requests.Session, members_url: str) -> None:
    assert http.get(members_url, params={"count": 1001}).status_code == 400


def test_status_filter_returns_only_that_status(emu: MailchimpEmulator, http: requests.Session,
                                               members_url: str) -> None:
    emu.seed_member("in@example.com", "subscribed")
    emu.seed_member("out@example.com", "unsubscribed")

    doc = http.get(members_url, params={"status": "unsubscribed"}).json()

    assert emails(doc) == ["out@example.com"]


def test_archived_members_are_listed_only_when_asked_for(
    emu: MailchimpEmulator, http: requests.Session, members_url: str
) -> None:
    emu.seed_member("kept@example.com")
    emu.seed_member("archived@example.com", "archived")

    assert emails(http.get(members_url).json()) == ["kept@example.com"]
    assert emails(http.get(members_url, params={"status": "archived"}).json()) == [
        "archived@example.com"
    ]


def test_paging_by_last_changed_visits_every_member_once(
    emu: MailchimpEmulator, http: requests.Session, members_url: str
) -> None:
    for i in range(25):
        emu.seed_member(f"m{i}@example.com")
    seen: list[str] = []

    for offset in range(0, 25, 10):
        doc = http.get(members_url, params={"sort_field": "last_changed", "sort_dir": "ASC",
                                            "count": 10, "offset": offset}).json()
        seen += emails(doc)

    assert seen == [f"m{i}@example.com" for i in range(25)]


def test_last_changed_is_strictly_monotonic_even_within_one_clock_tick() -> None:
    frozen = datetime(2026, 3, 4, 13, 10, 40, tzinfo=UTC)
    with MailchimpEmulator(clock=lambda: frozen) as emu:
        for i in range(3):
            emu.seed_member(f"m{i}@example.com")

        stamps = [m["last_changed"] for m in emu.members()]

    assert stamps == sorted(set(stamps))


def test_since_last_changed_returns_changes_from_that_moment_on(
    emu: MailchimpEmulator, http: requests.Session, members_url: str
) -> None:
    emu.seed_member("old@example.com")
    watermark = emu.seed_member("edge@example.com")["last_changed"]
    emu.seed_member("new@example.com")

    doc = http.get(members_url, params={"since_last_changed": watermark}).json()

    assert emails(doc) == ["edge@example.com", "new@example.com"]


def test_since_last_changed_without_zone_is_utc(http: requests.Session, members_url: str) -> None:
    clock = [datetime(2026, 3, 4, 12, 0, tzinfo=UTC)]
    with MailchimpEmulator(clock=lambda: clock[0]) as emu:
        emu.seed_member("noon@example.com")
        clock[0] += timedelta(hours=2)
        emu.seed_member("two@example.com")
        url = f"{emu.base_url}/lists/{emu.list_id}/members"

        naive = http.get(url, auth=("u", emu.api_key),
                         params={"since_last_changed": "2026-03-04T13:00:00"}).json()
        zoned = http.get(url, auth=("u", emu.api_key),
                         params={"since_last_changed": "2026-03-04T15:00:00+02:00"}).json()

    assert emails(naive) == ["two@example.com"]
    assert emails(zoned) == ["two@example.com"]


def test_bad_since_last_changed_is_a_field_error(http: requests.Session, members_url: str) -> None:
    answer = http.get(members_url, params={"since_last_changed": "yesterday"})

    assert answer.status_code == 400
    assert answer.json()["errors"][0]["field"] == "since_last_changed"


def test_sort_dir_desc_returns_newest_first(emu: MailchimpEmulator, http: requests.Session,
                                           members_url: str) -> None:
    emu.seed_member("first@example.com")
    emu.seed_member("second@example.com")

    doc = http.get(members_url, params={"sort_field": "last_changed", "sort_dir": "DESC"}).json()

    assert emails(doc) == ["second@example.com", "first@example.com"]


def test_fields_keeps_only_the_named_paths(emu: MailchimpEmulator, client: Any) -> None:
    emu.seed_member("ada@example.com")

    doc = client.lists.get_list_members_info(
        emu.list_id, fields=["members.email_address", "members.status", "total_items"]
    )

    assert doc == {"members": [{"email_address": "ada@example.com", "status": "subscribed"}],
                   "total_items": 1}


def test_exclude_fields_drops_the_named_paths(emu: MailchimpEmulator, http: requests.Session,
                                             members_url: str) -> None:
    emu.seed_member("ada@example.com")

    doc = http.get(members_url, params={"exclude_fields": "members.merge_fields,_links"}).json()

    assert "merge_fields" not in doc["members"][0]
    assert doc["members"][0]["email_address"] == "ada@example.com"


def test_a_change_between_pages_is_seen_by_the_next_page(
    emu: MailchimpEmulator, http: requests.Session, members_url: str
) -> None:
    for i in range(3):
        emu.seed_member(f"m{i}@example.com")
    params = {"sort_field": "last_changed", "count": 2}
    first = emails(http.get(members_url, params={**params, "offset": 0}).json())

    emu.fire_profile("m0@example.com", {"FNAME": "Changed"}, deliver=False)
    second = emails(http.get(members_url, params={**params, "offset": 2}).json())

    assert (first, second) == (["m0@example.com", "m1@example.com"], ["m0@example.com"])
