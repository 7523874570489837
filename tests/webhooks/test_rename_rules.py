"""Address changes (`upemail`) the fixture deliveries leave open, over HTTP through the
real endpoint: a chain of renames arriving out of order ends at the last address, a
rename of addresses the CRM does not hold still carries the suppression, a rename to an
address the CRM already holds moves nobody, and one without its addresses is parked."""

from __future__ import annotations

from urllib.parse import urlencode

from syncd.context import AppContext
from tests.builders import add_contact, confirmed
from tests.conftest import TEST_AUDIENCE_ID
from tests.webhooks.conftest import Served, inbox_rows
from tests.webhooks.snapshot import person, suppressions

ADA = "ada.lovelace@example.com"
KING = "ada.king@example.org"
BYRON = "ada.byron@example.net"


def _upemail(old: str | None, new: str | None, fired_at: str) -> bytes:
    fields = {"type": "upemail", "fired_at": fired_at, "data[list_id]": TEST_AUDIENCE_ID,
              "data[new_id]": "51da8c3259"}
    fields |= {"data[old_email]": old} if old else {}
    fields |= {"data[new_email]": new} if new else {}
    return urlencode(fields).encode()


def _unsubscribe(address: str, fired_at: str) -> bytes:
    return urlencode({"type": "unsubscribe", "fired_at": fired_at, "data[action]": "unsub",
                      "data[reason]": "manual", "data[id]": "94826aa750",
                      "data[email]": address, "data[list_id]": TEST_AUDIENCE_ID}).encode()


def test_two_renames_arriving_last_first_move_the_contact_to_the_last_address(
        served: Served, app_context: AppContext) -> None:
    add_contact(app_context, ADA, events=confirmed(), lists=["newsletter-nl"])

    later = served.post(_upemail(KING, BYRON, "2026-03-05 10:00:00"))
    earlier = served.post(_upemail(ADA, KING, "2026-03-04 10:00:00"))

    assert (later.status_code, earlier.status_code) == (200, 200)
    assert (person(app_context, BYRON).email_key, person(app_context, KING).email_key,
            person(app_context, ADA).email_key) == (BYRON, None, None)
    assert person(app_context, BYRON).eligible  # consent follows the person


def test_a_rename_of_addresses_the_crm_does_not_hold_carries_the_suppression(
        served: Served, app_context: AppContext) -> None:
    served.post(_unsubscribe(ADA, "2026-03-04 10:00:00"))

    response = served.post(_upemail(ADA, KING, "2026-03-05 10:00:00"))

    assert response.status_code == 200
    assert [row.status for row in inbox_rows(app_context)] == ["applied", "applied"]
    assert set(suppressions(app_context, KING)) == set(suppressions(app_context, ADA)) == {
        "newsletter"}
    assert person(app_context, KING).email_key is None  # nobody created


def test_a_rename_to_an_address_the_crm_holds_moves_nobody_else(
        served: Served, app_context: AppContext) -> None:
    add_contact(app_context, KING, events=confirmed(), lists=["newsletter-nl"])
    before = person(app_context, KING)

    response = served.post(_upemail(ADA, KING, "2026-03-05 10:00:00"))

    after = person(app_context, KING)
    assert response.status_code == 200
    assert [row.status for row in inbox_rows(app_context)] == ["applied"]
    assert (after.email_key, after.lists, after.eligible) == (KING, before.lists, True)


def test_a_rename_without_its_new_address_is_parked_naming_the_missing_field(
        served: Served, app_context: AppContext) -> None:
    add_contact(app_context, ADA, events=confirmed())

    response = served.post(_upemail(ADA, None, "2026-03-05 10:00:00"))

    [row] = inbox_rows(app_context)
    assert response.status_code == 200
    assert row.status == "parked"
    assert "data[new_email]" in (row.last_error or "")
    assert person(app_context, ADA).email_key == ADA
