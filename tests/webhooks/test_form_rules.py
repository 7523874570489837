"""The form parser's rules that test_form_parser.py leaves open: the exact limits (field
count, nesting depth, the dates Mailchimp can send) at their edges, what each refusal
says, which odd keys and values are kept aside or tolerated, how every event field is
read, and that an event built elsewhere is written back in Mailchimp's form. Written for
survivors of the mutation run (docs/mutation.md); each test states one rule through
`parse_body` or `encode_event`, the functions the endpoint and the reconciliation use."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from syncd.webhooks.mailchimp_form import (
    EventKind,
    InboundEvent,
    MalformedBody,
    encode_event,
    parse_body,
)


def refusal(body: bytes, **kwargs: int) -> str:
    with pytest.raises(MalformedBody) as caught:
        parse_body(body, **kwargs)
    return str(caught.value)


# Refusals, each with what it says (never the content).

def test_a_body_that_is_not_utf8_is_refused_as_such() -> None:
    assert refusal(b"type=unsubscribe\xff") == "body is not valid UTF-8"


def test_a_broken_percent_escape_is_refused_as_such() -> None:
    assert refusal(b"type=unsubscribe&x=%4") == "body has a broken percent-encoding"


def test_percent_encoded_bytes_that_are_not_utf8_are_refused_as_such() -> None:
    assert refusal(b"type=unsubscribe&x=%FF") == ("body has percent-encoded bytes that are "
                                                  "not UTF-8")


def test_a_raw_nul_is_refused_as_such() -> None:
    assert refusal(b"type=unsubscribe&x=a\x00b") == "body contains a NUL character"


def test_a_percent_encoded_nul_in_a_value_is_refused_as_such() -> None:
    assert refusal(b"type=unsubscribe&x=a%00b") == ("body has a percent-encoded NUL "
                                                    "character (%00)")


def test_a_percent_encoded_nul_in_a_key_is_refused_as_such() -> None:
    assert refusal(b"type=unsubscribe&x%00=ab") == ("body has a percent-encoded NUL "
                                                    "character (%00)")


def test_a_body_without_a_type_is_refused_as_such() -> None:
    assert refusal(b"data[email]=a%40example.com") == "body has no 'type' field"


def test_a_blank_type_is_no_type() -> None:
    assert refusal(b"type=+&data[email]=a%40example.com") == "body has no 'type' field"


# The field-count limit at its edge.

def test_a_body_of_exactly_the_field_limit_is_read() -> None:
    assert parse_body(b"type=profile&a=1&b=2", max_fields=3).kind is EventKind.PROFILE


def test_a_body_of_one_field_over_the_limit_is_refused_and_says_the_limit() -> None:
    assert refusal(b"type=profile&a=1&b=2&c=3", max_fields=3) == "body has more than 3 fields"


def test_the_default_field_limit_is_a_thousand() -> None:
    fields = b"&".join(b"f%d=x" % i for i in range(999))
    assert parse_body(b"type=profile&" + fields).kind is EventKind.PROFILE
    assert refusal(b"type=profile&" + fields + b"&g=y") == "body has more than 1000 fields"


# The list id at the inbox column's edge (64 characters).

def test_a_list_id_of_64_characters_is_read() -> None:
    event = parse_body(b"type=unsubscribe&data[email]=a%40b.nl&data[list_id]=" + b"f" * 64)
    assert event.list_id == "f" * 64


def test_a_list_id_of_65_characters_is_refused_and_says_the_limit() -> None:
    assert refusal(b"type=unsubscribe&data[email]=a%40b.nl&data[list_id]=" + b"f" * 65) == (
        "list_id is longer than 64 characters")


# Odd keys and values: tolerated, kept aside, never an error.

def test_a_field_without_a_value_is_tolerated() -> None:
    assert parse_body(b"type=unsubscribe&flag&data[email]=a%40example.com").email == (
        "a@example.com")


def test_an_empty_value_is_kept_in_the_fields_as_sent() -> None:
    # The fields are part of an unknown event's identity in the inbox.
    assert parse_body(b"type=new_thing&data[note]=").fields == {"type": "new_thing",
                                                                "data": {"note": ""}}


def test_a_key_that_is_not_php_style_is_kept_aside_under_unparsed() -> None:
    fields = parse_body(b"type=profile&data[a]x=1&[b]=2").fields
    assert fields == {"type": "profile", "_unparsed": {"data[a]x": "1", "[b]": "2"}}


def test_a_key_with_an_open_bracket_only_is_a_plain_key() -> None:
    assert parse_body(b"type=profile&data[=1").fields == {"type": "profile", "data[": "1"}


def test_nesting_as_deep_as_five_groups_is_read() -> None:
    fields = parse_body(b"type=profile&data[a][b][c][d][e]=1").fields
    assert fields["data"] == {"a": {"b": {"c": {"d": {"e": "1"}}}}}


def test_nesting_of_six_groups_is_kept_aside() -> None:
    fields = parse_body(b"type=profile&data[a][b][c][d][e][f]=1").fields
    assert fields == {"type": "profile", "_unparsed": {"data[a][b][c][d][e][f]": "1"}}


def test_a_nested_group_replaces_an_earlier_scalar_of_the_same_name() -> None:
    fields = parse_body(b"type=profile&data=flat&data[email]=a%40example.com").fields
    assert fields["data"] == {"email": "a@example.com"}


def test_a_data_field_that_is_not_a_group_gives_no_event_fields() -> None:
    event = parse_body(b"type=unsubscribe&data=a%40example.com")
    assert (event.email, event.list_id, event.merges) == (None, None, {})


# The dates Mailchimp can send, at their edges.

def test_fired_at_in_iso_form_with_z_is_read_as_utc() -> None:
    event = parse_body(b"type=profile&fired_at=2026-03-01T10%3A00%3A00Z")
    assert event.fired_at == datetime(2026, 3, 1, 10, tzinfo=UTC)


def test_fired_at_with_an_offset_is_converted_to_utc() -> None:
    event = parse_body(b"type=profile&fired_at=2026-03-01T12%3A00%3A00%2B02%3A00")
    assert event.fired_at == datetime(2026, 3, 1, 10, tzinfo=UTC)


def test_an_unreadable_fired_at_is_tolerated_as_none() -> None:
    assert parse_body(b"type=profile&fired_at=yesterday").fired_at is None


def test_the_first_moment_of_2000_is_a_possible_fired_at() -> None:
    event = parse_body(b"type=profile&fired_at=2000-01-01+00%3A00%3A00")
    assert event.fired_at == datetime(2000, 1, 1, tzinfo=UTC)


def test_a_fired_at_before_2000_is_refused_and_says_the_range() -> None:
    assert refusal(b"type=profile&fired_at=1999-12-31+23%3A59%3A59") == (
        "fired_at is out of range (must be between 2000 and 9000)")


def test_the_last_moment_before_9000_is_a_possible_fired_at() -> None:
    event = parse_body(b"type=profile&fired_at=8999-12-31+23%3A59%3A59")
    assert event.fired_at == datetime(8999, 12, 31, 23, 59, 59, tzinfo=UTC)


def test_a_fired_at_in_9000_is_refused() -> None:
    assert refusal(b"type=profile&fired_at=9000-01-01+00%3A00%3A00").startswith(
        "fired_at is out of range")


def test_a_fired_at_whose_offset_leaves_the_calendar_is_refused_as_such() -> None:
    assert refusal(b"type=profile&fired_at=0001-01-01T00%3A00%3A00%2B01%3A00") == (
        "fired_at is out of range")


# How each event field is read.

def test_every_field_of_an_event_is_read_trimmed_and_lower_cased_where_it_is_a_key(
        ) -> None:
    event = parse_body(
        b"type=+UnSubscribe+&fired_at=2026-03-04+13%3A10%3A40&data[list_id]=+f1243a3b12+"
        b"&data[email]=+Ada%40Example.org+&data[reason]=+ABUSE+&data[action]=+UNSUB+"
        b"&data[campaign_id]=+cb398d21d2+&data[ip_opt]=+192.0.2.1+"
        b"&data[merges][FNAME]=Ada&data[merges][GROUPINGS][0][name]=x")
    assert event == InboundEvent(
        kind=EventKind.UNSUBSCRIBE, type="unsubscribe",
        fired_at=datetime(2026, 3, 4, 13, 10, 40, tzinfo=UTC), list_id="f1243a3b12",
        email="ada@example.org", email_display="Ada@Example.org", reason="abuse",
        action="unsub", campaign_id="cb398d21d2", ip_opt="192.0.2.1",
        merges={"FNAME": "Ada"}, fields=event.fields)
    assert event.is_abuse


def test_an_unsubscribe_for_another_reason_is_no_abuse() -> None:
    assert not parse_body(b"type=unsubscribe&data[reason]=manual").is_abuse
    assert not parse_body(b"type=unsubscribe").is_abuse


def test_an_address_change_carries_both_addresses_as_sent_and_as_keys() -> None:
    event = parse_body(b"type=upemail&data[old_email]=Ada%40Example.com"
                       b"&data[new_email]=Ada.King%40Example.org")
    assert (event.old_email, event.new_email, event.new_email_display, event.email) == (
        "ada@example.com", "ada.king@example.org", "Ada.King@Example.org", None)
    assert event.address == "ada@example.com"


def test_the_address_of_an_event_other_than_an_address_change_is_its_email() -> None:
    event = parse_body(b"type=unsubscribe&data[email]=a%40example.com"
                       b"&data[old_email]=b%40example.com")
    assert event.address == "a@example.com"


def test_an_odd_address_mailchimp_sent_is_kept_lower_cased_as_sent() -> None:
    # An unsubscribe for it must still suppress that exact address.
    event = parse_body(b"type=unsubscribe&data[email]=Ada..Lovelace%40Example")
    assert (event.email, event.email_display) == ("ada..lovelace@example",
                                                  "Ada..Lovelace@Example")


def test_a_value_without_an_at_sign_is_no_address() -> None:
    assert parse_body(b"type=unsubscribe&data[email]=nobody").email is None


def test_a_non_campaign_event_takes_its_campaign_from_campaign_id_not_id() -> None:
    event = parse_body(b"type=unsubscribe&data[id]=8a25ff1d98&data[campaign_id]=cb398d21d2")
    assert event.campaign_id == "cb398d21d2"


def test_a_campaign_event_takes_its_campaign_from_id() -> None:
    event = parse_body(b"type=campaign&data[id]=5aa2102003&data[campaign_id]=other")
    assert event.campaign_id == "5aa2102003"


def test_a_type_is_kept_to_32_characters() -> None:
    assert parse_body(b"type=" + b"x" * 40).type == "x" * 32


def test_every_known_type_is_its_kind() -> None:
    kinds = {kind: parse_body(b"type=" + kind.value.encode()).kind
             for kind in EventKind if kind is not EventKind.UNKNOWN}
    assert kinds == {kind: kind for kind in kinds}


def test_the_type_unknown_as_sent_is_no_known_kind() -> None:
    assert parse_body(b"type=unknown").kind is EventKind.UNKNOWN


# An event built elsewhere (the reconciliation pull) written back in Mailchimp's form.

def test_an_event_is_encoded_in_mailchimps_form_with_its_addresses_as_displayed() -> None:
    event = InboundEvent(
        kind=EventKind.UPEMAIL, type="upemail",
        fired_at=datetime(2026, 3, 4, 14, 10, 40, tzinfo=UTC), list_id="f1243a3b12",
        email="ada@example.org", email_display="Ada@Example.org",
        old_email="ada@example.org", new_email="ada.king@example.org",
        new_email_display="Ada.King@Example.org", reason="manual", action="unsub",
        campaign_id="cb398d21d2", ip_opt="192.0.2.1", merges={"FNAME": "Ada"})

    assert encode_event(event) == (
        "type=upemail&fired_at=2026-03-04+14%3A10%3A40&data%5Blist_id%5D=f1243a3b12"
        "&data%5Bemail%5D=Ada%40Example.org&data%5Bold_email%5D=ada%40example.org"
        "&data%5Bnew_email%5D=Ada.King%40Example.org&data%5Breason%5D=manual"
        "&data%5Baction%5D=unsub&data%5Bcampaign_id%5D=cb398d21d2"
        "&data%5Bip_opt%5D=192.0.2.1&data%5Bmerges%5D%5BFNAME%5D=Ada")


def test_an_event_without_display_forms_or_date_is_encoded_with_its_keys_only() -> None:
    event = InboundEvent(kind=EventKind.UNSUBSCRIBE, type="unsubscribe",
                         email="ada@example.org", new_email="ada.king@example.org")

    assert encode_event(event) == ("type=unsubscribe&data%5Bemail%5D=ada%40example.org"
                                   "&data%5Bnew_email%5D=ada.king%40example.org")


def test_a_fired_at_with_an_offset_is_encoded_in_utc() -> None:
    event = InboundEvent(kind=EventKind.PROFILE, type="profile",
                         fired_at=datetime(2026, 3, 4, 16, 10, 40,
                                           tzinfo=timezone(timedelta(hours=2))))

    assert encode_event(event) == "type=profile&fired_at=2026-03-04+14%3A10%3A40"


def test_an_address_is_keyed_as_the_crm_keys_it() -> None:
    # The key must match contacts.email_key: the domain in Unicode, not its IDNA form.
    event = parse_body(b"type=unsubscribe&data[email]=Ada%40xn--bcher-kva.example")
    assert (event.email, event.email_display) == ("ada@b\u00fccher.example",
                                                  "Ada@xn--bcher-kva.example")


def test_a_fired_at_in_neither_form_read_is_tolerated_as_unreadable() -> None:
    # Read are Mailchimp's `YYYY-MM-DD HH:MM:SS` and ISO 8601 as Python reads it (zone
    # `Z` or an offset); a lower-case `z` is neither, so the time of receipt is used.
    assert parse_body(b"type=profile&fired_at=2026-03-01T10%3A00%3A00z").fired_at is None
