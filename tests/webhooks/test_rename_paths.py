"""Address changes (`upemail`) along their less common paths, over HTTP through the real
endpoint: a failed rename retried once the CRM holds the new address, a person back at an
old address and gone again, a case-only rename passed over (also when it is the latest
rename of an address the contact left), an older rename of a later address not followed,
the suppressions of the address the contact had when a later rename was stored first, one
audience's member moved and not another's, and the log line that names the contact."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

import pytest
from sqlalchemy import select

from syncd.clock import utcnow
from syncd.config.targets import TargetSettings
from syncd.context import AppContext
from syncd.crm import suppression
from syncd.db import transaction
from syncd.schema import AuditEntry, PushState
from syncd.webhooks.inbox import retry_pending
from tests.builders import add_contact, confirmed, contact_by_email
from tests.conftest import TEST_AUDIENCE_ID, make_settings, opened
from tests.webhooks.conftest import Served, inbox_rows, stored_log_lines
from tests.webhooks.snapshot import person, suppressions

ADA = "ada.lovelace@example.com"
KING = "ada.king@example.org"
BYRON = "ada.byron@example.net"
OFFERS_AUDIENCE = "0ffe7512ab"


def _upemail(old: str, new: str, fired_at: str = "2026-03-05 10:00:00",
             audience: str = TEST_AUDIENCE_ID) -> bytes:
    return urlencode({"type": "upemail", "fired_at": fired_at,
                      "data[list_id]": audience, "data[new_id]": "51da8c3259",
                      "data[old_email]": old, "data[new_email]": new}).encode()


def _member_state(ctx: AppContext, contact_id: int, audience: str, address: str) -> None:
    with transaction(ctx.sessions) as session:
        session.add(PushState(contact_id=contact_id, audience_id=audience,
                              settled_revision=1, esp_status="subscribed", esp_email=address,
                              updated_at=utcnow()))


def test_a_failed_rename_retried_once_the_crm_holds_the_new_address_moves_the_member_state(
        served: Served, app_context: AppContext, monkeypatch: pytest.MonkeyPatch) -> None:
    # On a retry the rename's own stored row is not settled, so nothing leads from the old
    # address to the contact: it is found by the new address the CRM already holds.
    _member_state(app_context, add_contact(app_context, KING, events=confirmed()),
                  TEST_AUDIENCE_ID, ADA)

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("suppression store broke")

    monkeypatch.setattr(suppression, "carry_over", broken)  # a bug: the rename fails
    served.post(_upemail(ADA, KING))
    monkeypatch.undo()  # the bug is fixed
    assert [row.status for row in inbox_rows(app_context)] == ["failed"]

    assert retry_pending(app_context) == 1
    with transaction(app_context.sessions) as session:
        assert session.scalar(select(PushState.esp_email)) == KING


def test_an_event_for_an_address_left_twice_follows_the_latest_rename_away_from_it(
        served: Served, app_context: AppContext) -> None:
    add_contact(app_context, ADA, events=confirmed(), lists=["newsletter-nl"])
    served.post(_upemail(ADA, KING, "2026-03-05 10:00:00"))
    served.post(_upemail(KING, ADA, "2026-03-06 10:00:00"))  # back at the old address
    served.post(_upemail(ADA, BYRON, "2026-03-07 10:00:00"))

    answer = served.post(urlencode({
        "type": "unsubscribe", "fired_at": "2026-03-08 10:00:00", "data[action]": "unsub",
        "data[reason]": "manual", "data[email]": ADA,
        "data[list_id]": TEST_AUDIENCE_ID}).encode()).text.strip()

    assert (answer, len(person(app_context, BYRON).withdrawals)) == ("applied", 1)


def test_a_case_only_rename_of_the_new_address_stored_first_is_passed_over(
        served: Served, app_context: AppContext) -> None:
    # The same address in other capitals is no move: the later renames lead on past it.
    add_contact(app_context, ADA, events=confirmed())
    served.post(_upemail(KING, "Ada.King@Example.org", "2026-03-06 10:00:00"))
    served.post(_upemail(KING, BYRON, "2026-03-07 10:00:00"))

    served.post(_upemail(ADA, KING, "2026-03-05 10:00:00"))

    assert person(app_context, BYRON).email_key == BYRON


def test_a_case_only_rename_arriving_before_the_rename_back_brings_the_contact_back(
        served: Served, app_context: AppContext) -> None:
    # The latest rename of ADA is the same address in other capitals: the person is back
    # there (KING -> ADA is still on its way), found through the rename before it.
    add_contact(app_context, ADA, events=confirmed())
    served.post(_upemail(ADA, KING, "2026-03-05 10:00:00"))

    served.post(_upemail(ADA, "Ada.Lovelace@Example.com", "2026-03-07 10:00:00"))

    assert (person(app_context, ADA).email_key, person(app_context, KING).email_key) == (
        ADA, None)


def test_a_rename_of_a_later_address_fired_before_the_contact_reached_it_is_not_followed(
        served: Served, app_context: AppContext) -> None:
    # BYRON was renamed away on 03-06, before this person took it over on 03-07.
    add_contact(app_context, ADA, events=confirmed())
    served.post(_upemail(BYRON, "ada.c@example.org", "2026-03-06 10:00:00"))
    served.post(_upemail(KING, BYRON, "2026-03-07 10:00:00"))

    served.post(_upemail(ADA, KING, "2026-03-05 10:00:00"))

    assert (person(app_context, BYRON).email_key,
            person(app_context, "ada.c@example.org").email_key) == (BYRON, None)

def test_a_rename_carries_the_suppressions_of_the_address_the_contact_had_over(
        served: Served, app_context: AppContext) -> None:
    # A later rename of the new address was stored first, before the CRM held it; the
    # contact then moves on from the address it had, and its suppressions go with it.
    served.post(_upemail(KING, BYRON, "2026-03-06 10:00:00"))
    contact_id = add_contact(app_context, KING, events=confirmed())
    with transaction(app_context.sessions) as session:
        suppression.suppress(session, [app_context.keyring.address_hmac(KING)],
                             purpose="newsletter", reason="unsubscribe", actor="test",
                             contact_id=contact_id)
    kept = suppressions(app_context, KING)
    with transaction(app_context.sessions) as session:
        before = session.scalar(select(AuditEntry.id).order_by(AuditEntry.id.desc()).limit(1))

    served.post(_upemail(ADA, KING, "2026-03-05 10:00:00"))

    assert person(app_context, BYRON).email_key == BYRON
    assert suppressions(app_context, BYRON) == kept
    with transaction(app_context.sessions) as session:
        audited = [(e.actor, e.contact_id, dict(e.details)) for e in session.scalars(
            select(AuditEntry).where(AuditEntry.id > before,
                                     AuditEntry.action == "suppressed"))]
    assert audited == [("esp", contact_id, {"purpose": "newsletter",
                                            "reason": "unsubscribe"})]


def test_a_rename_in_one_audience_moves_only_that_audiences_member_state(
        database_url: str, served_for: Callable[[AppContext], Served]) -> None:
    # Each audience has its own member: the other still has the old address, and the
    # next sync of that audience renames its member (it addresses the member by it).
    settings = make_settings(database_url, mailchimp_audience_id=None, targets=[
        TargetSettings(name="newsletter", audience_id=TEST_AUDIENCE_ID,
                       purposes=("newsletter",)),
        TargetSettings(name="offers", audience_id=OFFERS_AUDIENCE, purposes=("offers",))])
    with opened(settings) as ctx:
        contact_id = add_contact(ctx, ADA, events=confirmed() + confirmed("offers"))
        _member_state(ctx, contact_id, TEST_AUDIENCE_ID, ADA)
        _member_state(ctx, contact_id, OFFERS_AUDIENCE, ADA)

        served_for(ctx).post(_upemail(ADA, KING))

        with transaction(ctx.sessions) as session:
            addresses = {state.audience_id: state.esp_email
                         for state in session.scalars(select(PushState))}
    assert addresses == {TEST_AUDIENCE_ID: KING, OFFERS_AUDIENCE: ADA}


def test_the_log_of_an_address_change_names_the_contact(
        served: Served, app_context: AppContext) -> None:
    contact_id = add_contact(app_context, ADA, events=confirmed())
    with stored_log_lines() as stored:
        served.post(_upemail(ADA, KING))

    assert [(line["outcome"], line["contact_id"]) for line in stored] == [
        ("applied", contact_id)]


def test_a_person_back_at_an_address_they_had_ends_there_when_the_first_rename_comes_last(
        served: Served, app_context: AppContext) -> None:
    # Mailchimp: ADA -> KING (03-05), KING -> BYRON (03-06), BYRON -> KING (03-07); the
    # first arrives last. Each later rename is later than the one before, so returning to
    # KING is no loop: the contact ends at KING, where Mailchimp has the member.
    add_contact(app_context, ADA, events=confirmed())
    served.post(_upemail(KING, BYRON, "2026-03-06 10:00:00"))
    served.post(_upemail(BYRON, KING, "2026-03-07 10:00:00"))
    served.post(_upemail(ADA, KING, "2026-03-05 10:00:00"))

    assert (contact_by_email(app_context, KING) is not None,
            contact_by_email(app_context, BYRON), contact_by_email(app_context, ADA)) == (
        True, None, None)


def test_a_rename_of_a_member_without_a_contact_moves_no_one_who_took_its_old_address(
        served: Served, app_context: AppContext) -> None:
    # KING's member (no contact) moved to BYRON; Ada moved onto KING; then KING's member
    # moves on from BYRON to ADA, Ada's old address. Through this rename itself the walk
    # went BYRON -> ADA -> KING (an older rename) and moved Ada's contact back to ADA.
    served.post(_upemail(KING, BYRON, "2026-03-05 10:00:00"))
    add_contact(app_context, ADA, events=confirmed())
    served.post(_upemail(ADA, KING, "2026-03-06 10:00:00"))

    answer = served.post(_upemail(BYRON, ADA, "2026-03-07 10:00:00")).text.strip()

    assert answer == "applied"
    assert (person(app_context, KING).email_key, person(app_context, ADA).email_key) == (
        KING, None)


def test_a_late_rename_finds_the_contact_where_the_later_rename_of_its_new_address_ends(
        served: Served, app_context: AppContext) -> None:
    # KING -> BYRON was stored first, before the CRM held the person (at BYRON, syncd's
    # member state still at ADA). ADA -> KING, fired earlier, arrives last: no contact at
    # ADA or KING, none renamed from ADA but by this rename, so the contact is the one
    # where KING's later rename ends, and its member state follows to BYRON.
    served.post(_upemail(KING, BYRON, "2026-03-06 10:00:00"))
    contact_id = add_contact(app_context, BYRON, events=confirmed())
    _member_state(app_context, contact_id, TEST_AUDIENCE_ID, ADA)

    answer = served.post(_upemail(ADA, KING, "2026-03-05 10:00:00")).text.strip()

    assert answer == "applied"
    with transaction(app_context.sessions) as session:
        assert session.scalar(select(PushState.esp_email)) == BYRON


def test_an_event_for_an_old_address_passes_over_its_case_only_rename_to_the_real_one(
        served: Served, app_context: AppContext) -> None:
    # ADA's newest stored rename is only ADA in other capitals (stored before the CRM held
    # her, so it moved no one); the real one, ADA -> KING, is older. A late unsubscribe
    # to ADA must follow that one to the contact at KING, not stop at ADA itself.
    served.post(_upemail(ADA, "Ada.Lovelace@Example.com", "2026-03-07 10:00:00"))
    add_contact(app_context, ADA, events=confirmed(), lists=["newsletter-nl"])
    served.post(_upemail(ADA, KING, "2026-03-05 10:00:00"))

    served.deliver("unsubscribe.form")  # addressed to ADA, fired 2026-03-04

    assert len(person(app_context, KING).withdrawals) == 1
