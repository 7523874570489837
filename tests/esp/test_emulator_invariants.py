"""Invariants of the audience rules under any sequence of API writes (Hypothesis)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mailchimp_emulator import Audience, subscriber_hash
from mailchimp_emulator.problems import ApiProblem

ADDRESSES = ["a@example.com", "b@example.com"]
STATUSES = ["subscribed", "unsubscribed", "pending", "cleaned", "transactional"]

put = st.tuples(st.just("put"), st.sampled_from(ADDRESSES), st.sampled_from(STATUSES),
                st.none() | st.sampled_from(STATUSES))
batch = st.tuples(st.just("batch"), st.sampled_from(ADDRESSES), st.sampled_from(STATUSES),
                  st.booleans())
patch = st.tuples(st.just("patch"), st.sampled_from(ADDRESSES), st.sampled_from(STATUSES),
                  st.none())
person = st.tuples(st.sampled_from(["unsubscribe", "archive", "erase"]),
                   st.sampled_from(ADDRESSES), st.none(), st.none())
operations = st.lists(st.one_of(put, batch, patch, person), max_size=25)


def apply(audience: Audience, op: tuple[str, str, Any, Any]) -> None:
    kind, email, first, second = op
    key = subscriber_hash(email)
    try:
        if kind == "put":
            body = {"email_address": email, "status_if_new": first}
            audience.put_member(key, body | ({"status": second} if second else {}))
        elif kind == "batch":
            audience.batch({"members": [{"email_address": email, "status": first}],
                            "update_existing": second})
        elif kind == "patch":
            audience.patch_member(key, {"status": first})
        elif kind == "unsubscribe":
            audience.user_unsubscribes(email)
        elif kind == "archive":
            audience.archive(key)
        else:
            audience.delete_permanent(key)
    except (ApiProblem, LookupError):
        pass


@settings(max_examples=300, deadline=None)
@given(operations)
def test_no_api_write_resubscribes_someone_who_unsubscribed(ops: list[Any]) -> None:
    audience = Audience()
    opted_out: set[str] = set()

    for op in ops:
        apply(audience, op)
        for member in audience.members():
            email = member["email_address"]
            if member["status"] in ("unsubscribed", "cleaned"):
                opted_out.add(email)
            if email in opted_out:
                assert member["status"] != "subscribed"


@settings(max_examples=300, deadline=None)
@given(operations)
def test_erased_addresses_never_come_back(ops: list[Any]) -> None:
    audience = Audience()

    for op in ops:
        apply(audience, op)
        for email in ADDRESSES:
            if audience.is_forgotten(email):
                assert audience.member(email) is None


@settings(max_examples=300, deadline=None)
@given(operations)
def test_listing_is_strictly_ordered_by_last_changed(ops: list[Any]) -> None:
    audience = Audience()
    for op in ops:
        apply(audience, op)

    listed = audience.list_members(count=1000, status=None)["members"]
    stamps = [m["last_changed"] for m in listed]

    assert stamps == sorted(set(stamps))
