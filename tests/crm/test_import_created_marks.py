"""A contact the import creates is inserted with the revision its lists, events and
purchases leave and with its import mark (syncd.store.contacts `bumps_to_come`), the
same as the UPDATEs after the INSERT used to write; where the count does not come true
the UPDATEs still write it. On both databases."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from syncd.consent import ledger
from syncd.consent.ledger import ConsentRecord
from syncd.consent.policy import Action
from syncd.context import AppContext
from syncd.crm.import_format import Vocabulary, content_hash, hash_prefix
from syncd.crm.importer import import_file
from syncd.db import transaction
from syncd.schema import Contact
from syncd.store import contacts
from tests.builders import add_contact
from tests.crm.conftest import contact_line, signed_up, write_jsonl

ADA = contact_line("ada@example.com", first_name="Ada", lists=["newsletter-nl"],
                   consents=signed_up())


def _marks(ctx: AppContext, email: str) -> tuple[int, int | None, str | None]:
    with transaction(ctx.sessions) as session:
        found = session.execute(select(Contact.revision, Contact.import_revision,
                                       Contact.import_hash)
                                .where(Contact.email_key == email)).one()
    return found[0], found[1], found[2]


def _line_hash(ctx: AppContext, path: Path, number: int) -> str:
    vocabulary = Vocabulary(lists=frozenset(ctx.settings.lists),
                            purposes=ctx.settings.purposes)
    line = path.read_bytes().splitlines()[number - 1]
    return content_hash(hash_prefix(vocabulary), line)


def test_a_created_contact_starts_at_the_revision_its_list_and_events_leave(
        app_context: AppContext, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", [ADA])

    import_file(app_context, path)

    # created 1, one list, two events
    assert _marks(app_context, "ada@example.com") == (4, 4, _line_hash(app_context, path, 1))


def test_two_lines_of_one_new_address_leave_the_last_lines_mark_and_every_bump(
        app_context: AppContext, tmp_path: Path) -> None:
    second = {**ADA, "first_name": "Ada L.", "lists": ["newsletter-nl", "newsletter-en"]}
    path = write_jsonl(tmp_path / "in.jsonl", [ADA, second])

    import_file(app_context, path)

    # created 1, the changed first name 1, two lists, two events (the same both times)
    assert _marks(app_context, "ada@example.com") == (6, 6, _line_hash(app_context, path, 2))


def test_a_created_contact_whose_event_the_ledger_holds_gets_the_revision_its_writes_left(
        app_context: AppContext, tmp_path: Path) -> None:
    # The sign-up's dedupe key (content and address) is stored already, under another
    # contact: only the confirmation is appended, one bump fewer than counted.
    bob = add_contact(app_context, "bob@example.com")
    given = ConsentRecord(purpose="newsletter", action=Action.GIVEN,
                          occurred_at=datetime(2026, 3, 1, 9, tzinfo=UTC), source="import")
    with transaction(app_context.sessions) as session:
        ledger.append_many(session, [(contacts.ContactRef(bob, "ada@example.com"), given)],
                           actor="test")
    path = write_jsonl(tmp_path / "in.jsonl", [ADA])

    report = import_file(app_context, path)

    assert report.consents_added == 1
    assert _marks(app_context, "ada@example.com") == (3, 3, _line_hash(app_context, path, 1))
    assert import_file(app_context, path).unchanged == 1
