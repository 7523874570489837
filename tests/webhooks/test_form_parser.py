"""The form parser: bracket keys to one InboundEvent, tolerant of real variants, strict
about unreadable bodies, and never echoing the body in an error."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from syncd.webhooks.mailchimp_form import (
    EventKind,
    MalformedBody,
    encode_event,
    nest,
    parse_body,
)
from tests.conftest import FIXTURES, fixture_body

ALL_FIXTURES = sorted(p.name for p in (FIXTURES / "webhooks").glob("*.form"))


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_every_fixture_parses_to_its_kind(name: str) -> None:
    event = parse_body(fixture_body(name))
    assert event.kind is EventKind(Path(name).stem.split("-")[0])
    assert event.list_id == "f1243a3b12"
    assert event.fired_at is not None
    assert event.fired_at.tzinfo is UTC


def test_fired_at_without_zone_is_read_as_utc() -> None:
    event = parse_body(fixture_body("unsubscribe.form"))
    assert event.fired_at == datetime(2026, 3, 4, 13, 10, 40, tzinfo=UTC)


def test_unsubscribe_fields_are_normalised() -> None:
    event = parse_body(fixture_body("unsubscribe.form"))
    assert (event.email, event.reason, event.action, event.campaign_id) == (
        "ada.lovelace@example.com", "manual", "unsub", "cb398d21d2")
    assert event.merges["FNAME"] == "Ada"


def test_unsubscribe_without_action_is_tolerated() -> None:
    event = parse_body(fixture_body("unsubscribe-no-action.form"))
    assert event.kind is EventKind.UNSUBSCRIBE
    assert event.action is None
    assert event.merges["FNAME"] == ""


def test_groupings_nest_into_indexed_groups() -> None:
    event = parse_body(fixture_body("subscribe-groupings.form"))
    groupings = event.fields["data"]["merges"]["GROUPINGS"]
    assert groupings["1"]["name"] == "Volunteers"
    assert "GROUPINGS" not in event.merges  # merges keeps the flat string fields


def test_upemail_carries_both_addresses() -> None:
    event = parse_body(fixture_body("upemail.form"))
    assert (event.old_email, event.new_email) == ("ada.lovelace@example.com",
                                                  "ada.king@example.org")
    assert event.address == "ada.lovelace@example.com"


def test_campaign_id_comes_from_data_id() -> None:
    assert parse_body(fixture_body("campaign.form")).campaign_id == "5aa2102003"


def test_address_is_trimmed_and_lower_cased() -> None:
    event = parse_body(b"type=unsubscribe&data[email]=+Ada.Lovelace%40Example.COM+")
    assert event.email == "ada.lovelace@example.com"


def test_unknown_type_is_unknown_not_an_error() -> None:
    event = parse_body(b"type=something_new&fired_at=2026-03-01+10%3A00%3A00")
    assert event.kind is EventKind.UNKNOWN
    assert event.type == "something_new"


def test_missing_type_is_refused() -> None:
    with pytest.raises(MalformedBody, match="type"):
        parse_body(b"fired_at=2026-03-01+10%3A00%3A00&data%5Bemail%5D=a%40example.com")


def test_invalid_utf8_is_refused_without_echo() -> None:
    with pytest.raises(MalformedBody) as caught:
        parse_body(b"type=unsubscribe&data%5Bemail%5D=secret%40example.com\xff\xfe")
    assert "example.com" not in str(caught.value)


def test_percent_encoded_invalid_utf8_is_refused() -> None:
    with pytest.raises(MalformedBody, match="UTF-8"):
        parse_body(b"type=unsubscribe&data%5Bemail%5D=a%FF%40example.com")


def test_broken_percent_encoding_is_refused() -> None:
    with pytest.raises(MalformedBody, match="percent"):
        parse_body(b"type=unsubscribe&data%5Bemail%5D=a%4G%40example.com")


def test_thousands_of_fields_are_refused() -> None:
    body = b"type=profile&" + b"&".join(b"data[merges][F%d]=x" % i for i in range(3000))
    with pytest.raises(MalformedBody, match="fields"):
        parse_body(body)


def test_missing_and_empty_keys_are_tolerated() -> None:
    event = parse_body(b"type=cleaned&data%5Breason%5D=&data%5Bemail%5D=")
    assert (event.email, event.reason, event.fired_at, event.list_id) == (None, None, None, None)


def test_scalar_never_overwrites_a_nested_group() -> None:
    nested = nest([("data[merges][FNAME]", "Ada"), ("data[merges]", "flat")])
    assert nested["data"]["merges"] == {"FNAME": "Ada"}


def test_later_duplicate_key_wins_as_in_php() -> None:
    nested = nest([("type", "profile"), ("type", "unsubscribe")])
    assert nested["type"] == "unsubscribe"


def test_encoded_event_parses_back_to_the_same_event() -> None:
    event = parse_body(fixture_body("unsubscribe.form"))
    again = parse_body(encode_event(event).encode())
    assert (again.kind, again.email, again.fired_at, again.reason, again.campaign_id) == (
        event.kind, event.email, event.fired_at, event.reason, event.campaign_id)
