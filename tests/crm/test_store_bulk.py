"""The bulk store functions the import uses behave like their one-at-a-time originals."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from syncd.addresses import parse_address
from syncd.consent import ledger
from syncd.consent.ledger import ConsentRecord
from syncd.consent.policy import Action
from syncd.context import AppContext
from syncd.crm import store
from syncd.db import transaction
from syncd.schema import AuditEntry
from syncd.store import audit, contacts, lists
from tests.builders import add_contact, at, confirmed
from tests.crm.conftest import counts

RECORD = ConsentRecord(purpose="newsletter", action=Action.CONFIRMED, occurred_at=at(1),
                       source="import")


def test_append_many_stores_an_event_once_even_if_given_twice(app_context: AppContext) -> None:
    add_contact(app_context, "ada@example.com")
    with transaction(app_context.sessions) as session:
        contact = store.find_contact(session, "ada@example.com")
        assert contact is not None
        revision = contact.revision
        ref = contacts.ContactRef(contact.id, contact.email_key)
        added = ledger.append_many(session, [(ref, RECORD), (ref, RECORD)], actor="test")
        contacts.apply_revision_bumps(session, [ref])
    with transaction(app_context.sessions) as session:
        after = store.find_contact(session, "ada@example.com")
        assert after is not None
        assert (added, after.revision) == (1, revision + 1)
    assert counts(app_context)["consent_events"] == 1


def test_append_many_skips_events_already_in_the_ledger(app_context: AppContext) -> None:
    contact_id = add_contact(app_context, "ada@example.com", events=confirmed())
    with transaction(app_context.sessions) as session:
        same = ledger.history(session, contact_id)[0]
    with transaction(app_context.sessions) as session:
        contact = store.find_contact(session, "ada@example.com")
        assert contact is not None
        record = ConsentRecord(purpose=same.purpose, action=Action(same.action),
                               occurred_at=same.occurred_at, source=same.source,
                               form_url=same.form_url, text_version=same.text_version,
                               privacy_notice_version=same.privacy_notice_version, ip=same.ip)
        ref = contacts.ContactRef(contact.id, contact.email_key)
        assert ledger.append_many(session, [(ref, record), (ref, RECORD)],
                                  actor="test") == 1
    assert counts(app_context)["consent_events"] == 3


def test_upsert_contacts_creates_then_updates_a_repeated_address(
        app_context: AppContext) -> None:
    with transaction(app_context.sessions) as session:
        out = contacts.upsert(session, [
            contacts.ContactData(parse_address("ada@example.com"), first_name="Ada"),
            contacts.ContactData(parse_address("ADA@example.com"), last_name="Lovelace"),
        ], actor="test")
        assert [(created, changed) for _, created, changed in out] == [(True, True),
                                                                       (False, True)]
        assert out[0][0] is out[1][0]
        contacts.apply_revision_bumps(session, [ref for ref, _, _ in out])
        actions = sorted(session.scalars(select(AuditEntry.action)))
    assert actions == ["contact_created", "contact_updated"]
    assert counts(app_context)["contacts"] == 1
    with transaction(app_context.sessions) as session:
        contact = store.find_contact(session, "ada@example.com")
        assert contact is not None
        # As one upsert_contact then another: created at 1, the change bumps it once.
        assert (contact.first_name, contact.last_name, contact.revision) == (
            "Ada", "Lovelace", 2)


def test_add_to_lists_adds_each_membership_once(app_context: AppContext) -> None:
    add_contact(app_context, "ada@example.com", lists=["events"])
    with transaction(app_context.sessions) as session:
        contact = store.find_contact(session, "ada@example.com")
        assert contact is not None
        known = lists.all_lists(session)
        ref = contacts.ContactRef(contact.id, contact.email_key)
        added = len(lists.add_memberships(session, [
            lists.Membership(ref, known[name].id, name)
            for name in ("events", "offers", "offers")], actor="test", source="test"))
        assert (added, ref.bumps) == (1, 1)
        assert store.list_names(session, contact.id) == ["events", "offers"]


def _bulk_written_and_read_back(app_context: AppContext, details: list[Any]) -> list[Any]:
    """Audit entries with these details appended in one bulk write, read back in order."""
    with transaction(app_context.sessions) as session:
        audit.append(session, [audit.AuditRow("test", "bulk", None, d) for d in details])
    with transaction(app_context.sessions) as session:
        return list(session.scalars(select(AuditEntry.details)
                                    .where(AuditEntry.action == "bulk")
                                    .order_by(AuditEntry.id)).all())


def test_audit_entries_written_in_bulk_read_back_with_their_details(
        app_context: AppContext) -> None:
    # 20 rows: COPY on PostgreSQL (dialect.BULK_MIN_ROWS), the JSON as its text.
    details = [{"purpose": "newsletter", "n": n, "text": f'Zoë "{n}" \\ ✓', "nested": [n, None]}
               for n in range(20)]
    assert _bulk_written_and_read_back(app_context, details) == details


def test_audit_entries_sharing_one_details_object_each_read_back_with_it(
        app_context: AppContext) -> None:
    # A bulk write serialises a shared object once (dialect.insert_rows); the others
    # between its rows keep their own.
    shared = {"list": "newsletter-nl"}
    details = [shared if n % 2 else {"list": f"other-{n}"} for n in range(20)]
    assert _bulk_written_and_read_back(app_context, details) == details


def test_a_look_up_finds_plain_and_punctuated_values_alike(app_context: AppContext) -> None:
    # On PostgreSQL letters and digits go as one text split by the server, anything else
    # as an array (dialect.any_of): the same rows either way.
    with transaction(app_context.sessions) as session:
        for email, crm_id in (("ada@example.com", "abc123"), ("bob@example.com", "a,b \"c\""),
                              ("cy@example.com", "")):
            store.upsert_contact(session, store.ContactData(address=parse_address(email),
                                                            crm_id=crm_id), actor="test")
    with transaction(app_context.sessions) as session:
        plain = contacts.crm_id_holders(session, ["abc123", "zzz9"])
        punctuated = contacts.crm_id_holders(session, ["abc123", "a,b \"c\""])
        empty = contacts.crm_id_holders(session, [""])
    assert plain == {"abc123": "ada@example.com"}
    assert empty == {"": "cy@example.com"}
    assert punctuated == {"abc123": "ada@example.com", "a,b \"c\"": "bob@example.com"}
