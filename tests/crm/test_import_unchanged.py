"""Re-import: a line whose contact holds exactly that line from an earlier import, and
has not changed since, is skipped; a changed line or a changed contact is applied again
(syncd.store.import_marks); on both databases."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import select

from syncd.context import AppContext
from syncd.crm import store
from syncd.crm.importer import import_file
from syncd.db import transaction
from syncd.schema import Contact
from tests.crm.conftest import consent, contact_line, counts, write_jsonl

ADA = contact_line("ada@example.com", first_name="Ada", lists=["newsletter-nl"],
                   consents=[consent(action="given", at="2026-03-01T09:00:00Z"), consent()])
BOB = contact_line("bob@example.com", first_name="Bob", lists=["newsletter-nl"])


def test_an_unchanged_reimport_skips_every_line_and_writes_nothing(
        app_context: AppContext, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", [ADA, BOB])
    import_file(app_context, path)
    before = counts(app_context)

    again = import_file(app_context, path)

    assert (again.unchanged, again.valid, again.contacts_updated, again.consents_added,
            again.memberships_added) == (2, 2, 0, 0, 0)
    assert counts(app_context) == before


def test_a_line_written_in_another_key_order_is_applied_again_and_changes_nothing(
        app_context: AppContext, tmp_path: Path) -> None:
    # The hash covers the line as written (it is taken before decoding): another
    # spelling of the same content costs one application, never a change.
    import_file(app_context, write_jsonl(tmp_path / "a.jsonl", [ADA]))
    before = counts(app_context)
    reordered = dict(reversed(list(ADA.items())))

    again = import_file(app_context, write_jsonl(tmp_path / "b.jsonl", [reordered]))

    assert (again.unchanged, again.contacts_updated, again.consents_added) == (0, 0, 0)
    assert counts(app_context) == before


def test_the_reordered_line_once_applied_is_skipped_next_time(
        app_context: AppContext, tmp_path: Path) -> None:
    import_file(app_context, write_jsonl(tmp_path / "a.jsonl", [ADA]))
    reordered = write_jsonl(tmp_path / "b.jsonl", [dict(reversed(list(ADA.items())))])
    import_file(app_context, reordered)

    assert import_file(app_context, reordered).unchanged == 1


def test_a_changed_list_configuration_makes_every_line_checked_and_applied_again(
        app_context: AppContext, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", [ADA])
    import_file(app_context, path)
    settings = app_context.settings.model_copy(update={"lists": {
        **app_context.settings.lists, "another-list": app_context.settings.lists[
            "newsletter-nl"]}})

    again = import_file(replace(app_context, settings=settings), path)

    assert (again.unchanged, again.valid) == (0, 1)


def test_an_unchanged_line_whose_list_is_no_longer_configured_is_refused(
        app_context: AppContext, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", [ADA])
    import_file(app_context, path)
    lists = {name: value for name, value in app_context.settings.lists.items()
             if name != "newsletter-nl"}
    settings = app_context.settings.model_copy(update={"lists": lists})

    again = import_file(replace(app_context, settings=settings), path)

    assert (again.applied, again.invalid, again.errors[0].field) == (False, 1, "lists[0]")


def test_a_changed_line_is_applied(app_context: AppContext, tmp_path: Path) -> None:
    import_file(app_context, write_jsonl(tmp_path / "a.jsonl", [ADA, BOB]))

    again = import_file(app_context, write_jsonl(tmp_path / "b.jsonl", [
        ADA, {**BOB, "first_name": "Robert"}]))

    assert (again.unchanged, again.contacts_updated) == (1, 1)


def test_a_contact_changed_since_the_import_gets_its_line_applied_again(
        app_context: AppContext, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", [ADA])
    import_file(app_context, path)
    with transaction(app_context.sessions) as session:
        contact = store.find_contact(session, "ada@example.com")
        assert contact is not None
        store.remove_from_lists(session, contact, actor="test", reason="test")

    again = import_file(app_context, path)

    assert (again.unchanged, again.memberships_added) == (0, 1)


def test_two_lines_of_one_address_are_both_applied_again(app_context: AppContext,
                                                          tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", [ADA, {**ADA, "first_name": "Augusta"}])
    import_file(app_context, path)

    again = import_file(app_context, path)

    assert (again.unchanged, again.contacts_updated) == (0, 2)
    with transaction(app_context.sessions) as session:
        assert session.scalars(select(Contact.first_name)).one() == "Augusta"


@pytest.mark.parametrize("chunk_lines", [1, 2000], ids=["own chunks", "one chunk"])
def test_an_unchanged_line_after_a_change_of_its_address_is_applied_last(
        app_context: AppContext, tmp_path: Path, chunk_lines: int) -> None:
    import_file(app_context, write_jsonl(tmp_path / "a.jsonl", [ADA]))
    # The changed line first, then the line the contact holds: the last line wins.
    path = write_jsonl(tmp_path / "b.jsonl", [{**ADA, "first_name": "Augusta"}, ADA])

    again = import_file(app_context, path, chunk_lines=chunk_lines)

    assert (again.unchanged, again.contacts_updated) == (0, 2)
    with transaction(app_context.sessions) as session:
        assert session.scalars(select(Contact.first_name)).one() == "Ada"
