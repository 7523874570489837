"""Address changes (`upemail`) over HTTP through the real endpoint, and through the inbox
the reconciliation pull feeds: the audit and the address history they leave, the address
as the person typed it, a rename onto another contact's address parked, events that
arrived before the rename replayed through the channel that reported them, and the limit
on how many renames an old address is followed through."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from urllib.parse import urlencode

from sqlalchemy import select

from syncd.clock import utcnow
from syncd.context import AppContext
from syncd.crm import store
from syncd.db import transaction
from syncd.schema import AddressHistory, AuditEntry, PushState
from syncd.webhooks.inbox import receive
from syncd.webhooks.mailchimp_form import parse_body
from tests.builders import add_contact, confirmed
from tests.conftest import TEST_AUDIENCE_ID
from tests.webhooks.conftest import Served, inbox_rows
from tests.webhooks.snapshot import person

ADA = "ada.lovelace@example.com"
KING = "ada.king@example.org"
RENAMED_AT = datetime(2026, 3, 5, 10, 0, tzinfo=UTC)


def _upemail(old: str, new: str, fired_at: str = "2026-03-05 10:00:00") -> bytes:
    return urlencode({"type": "upemail", "fired_at": fired_at,
                      "data[list_id]": TEST_AUDIENCE_ID, "data[new_id]": "51da8c3259",
                      "data[old_email]": old, "data[new_email]": new}).encode()


def _unsubscribe(address: str, fired_at: str = "2026-03-04 10:00:00") -> bytes:
    return urlencode({"type": "unsubscribe", "fired_at": fired_at, "data[action]": "unsub",
                      "data[reason]": "manual", "data[id]": "94826aa750",
                      "data[email]": address, "data[list_id]": TEST_AUDIENCE_ID}).encode()


def _reconciled(ctx: AppContext, body: bytes) -> str:
    return receive(ctx.sessions, parse_body(body), body.decode(), settings=ctx.settings,
                   keyring=ctx.keyring, source="reconciliation").status


def test_an_address_change_is_audited_with_the_contact_and_its_channel(
        served: Served, app_context: AppContext) -> None:
    contact_id = add_contact(app_context, ADA, events=confirmed())

    served.post(_upemail(ADA, KING))

    with transaction(app_context.sessions) as session:
        rows = [(e.actor, e.contact_id, dict(e.details)) for e in session.scalars(
            select(AuditEntry).where(AuditEntry.action == "address_changed"))]
    assert rows == [("esp", contact_id, {"channel": "esp_webhook"})]


def test_the_old_address_is_kept_as_a_keyed_hash_from_the_moment_of_the_change(
        served: Served, app_context: AppContext) -> None:
    contact_id = add_contact(app_context, ADA, events=confirmed())

    served.post(_upemail(ADA, KING))

    with transaction(app_context.sessions) as session:
        rows = [(h.contact_id, h.address_hmac, h.replaced_at)
                for h in session.scalars(select(AddressHistory))]
    assert rows == [(contact_id, app_context.keyring.address_hmac(ADA), RENAMED_AT)]


def test_the_new_address_is_kept_as_the_person_typed_it(
        served: Served, app_context: AppContext) -> None:
    add_contact(app_context, ADA, events=confirmed())

    served.post(_upemail(ADA, "Ada.King@Example.org"))

    with transaction(app_context.sessions) as session:
        contact = store.find_contact(session, KING)
        assert contact is not None
        assert (contact.email_key, contact.email_display) == (KING, "Ada.King@Example.org")


def test_a_rename_onto_the_address_of_another_contact_is_parked_saying_so(
        served: Served, app_context: AppContext) -> None:
    add_contact(app_context, ADA, events=confirmed())
    add_contact(app_context, KING, events=confirmed())

    served.post(_upemail(ADA, KING))

    [row] = inbox_rows(app_context)
    assert (row.status, row.last_error) == (
        "parked", "upemail: the new address belongs to another contact")
    assert (person(app_context, ADA).email_key, person(app_context, KING).email_key) == (
        ADA, KING)


def test_an_event_ignored_before_its_rename_is_marked_applied_once_replayed(
        served: Served, app_context: AppContext) -> None:
    add_contact(app_context, ADA, events=confirmed(), lists=["newsletter-nl"])
    served.post(urlencode({"type": "cleaned", "fired_at": "2026-03-04 10:00:00",
                           "data[list_id]": TEST_AUDIENCE_ID, "data[reason]": "hard",
                           "data[email]": KING}).encode())  # nobody has it yet: ignored
    assert [row.status for row in inbox_rows(app_context)] == ["ignored"]

    served.post(_upemail(ADA, KING))

    assert [row.status for row in inbox_rows(app_context)] == ["applied", "applied"]
    assert person(app_context, KING).lists == ()


def test_an_event_the_reconciliation_pull_reported_before_the_rename_keeps_its_channel(
        served: Served, app_context: AppContext) -> None:
    add_contact(app_context, ADA, events=confirmed(), lists=["newsletter-nl"])
    _reconciled(app_context, _unsubscribe(KING))

    served.post(_upemail(ADA, KING))

    assert [source for source, _, _ in person(app_context, KING).withdrawals] == [
        "reconciliation"]


def test_a_webhook_that_arrived_before_the_rename_is_replayed_as_a_webhook(
        served: Served, app_context: AppContext) -> None:
    add_contact(app_context, ADA, events=confirmed(), lists=["newsletter-nl"])
    served.post(_unsubscribe(KING))

    _reconciled(app_context, _upemail(ADA, KING))

    assert [source for source, _, _ in person(app_context, KING).withdrawals] == [
        "esp_webhook"]


def test_an_old_address_is_followed_through_ten_renames_and_no_more(
        served: Served, app_context: AppContext) -> None:
    chain = [ADA] + [f"ada{n}@example.org" for n in range(1, 12)]
    add_contact(app_context, chain[0], events=confirmed(), lists=["newsletter-nl"])
    for n, (old, new) in enumerate(itertools.pairwise(chain)):
        served.post(_upemail(old, new, f"2026-03-05 10:{n:02d}:00"))
    assert person(app_context, chain[-1]).email_key == chain[-1]

    served.post(_unsubscribe(chain[1], "2026-03-06 10:00:00"))  # ten renames ago
    served.post(_unsubscribe(chain[0], "2026-03-06 11:00:00"))  # eleven

    rows = inbox_rows(app_context)
    assert [(row.status, row.last_error) for row in rows[-2:]] == [
        ("applied", None), ("applied", None)]
    assert [at for _, at, _ in person(app_context, chain[-1]).withdrawals] == [
        datetime(2026, 3, 6, 10, 0, tzinfo=UTC)]


def test_a_rename_without_its_old_address_is_parked_saying_what_is_missing(
        served: Served, app_context: AppContext) -> None:
    served.post(urlencode({"type": "upemail", "fired_at": "2026-03-05 10:00:00",
                           "data[list_id]": TEST_AUDIENCE_ID,
                           "data[new_email]": KING}).encode())

    [row] = inbox_rows(app_context)
    assert (row.status, row.last_error) == (
        "parked", "upemail event lacks data[old_email] or data[new_email]")


def test_a_rename_to_the_address_the_crm_has_already_moves_the_member_state_there(
        served: Served, app_context: AppContext) -> None:
    # The CRM took the new address first; syncd pushed the member under the old one.
    contact_id = add_contact(app_context, KING, events=confirmed())
    with transaction(app_context.sessions) as session:
        session.add(PushState(contact_id=contact_id, audience_id=TEST_AUDIENCE_ID,
                              settled_revision=1, esp_status="subscribed", esp_email=ADA,
                              updated_at=utcnow()))

    served.post(_upemail(ADA, KING))

    with transaction(app_context.sessions) as session:
        assert session.scalar(select(PushState.esp_email)) == KING


def test_three_renames_arriving_last_first_move_the_contact_to_the_last_address(
        served: Served, app_context: AppContext) -> None:
    add_contact(app_context, ADA, events=confirmed())
    served.post(_upemail("ada.c@example.org", "ada.d@example.org", "2026-03-07 10:00:00"))
    served.post(_upemail(KING, "ada.c@example.org", "2026-03-06 10:00:00"))

    served.post(_upemail(ADA, KING, "2026-03-05 10:00:00"))

    assert person(app_context, "ada.d@example.org").email_key == "ada.d@example.org"


def test_a_rename_of_the_new_address_fired_before_this_one_does_not_move_the_contact_on(
        served: Served, app_context: AppContext) -> None:
    add_contact(app_context, ADA, events=confirmed())
    served.post(_upemail(KING, "ada.c@example.org", "2026-03-04 10:00:00"))  # an old one

    served.post(_upemail(ADA, KING, "2026-03-05 10:00:00"))

    assert (person(app_context, KING).email_key,
            person(app_context, "ada.c@example.org").email_key) == (KING, None)
