"""The sync's chunks carry each contact's purchases (the soft opt-in basis, rule 11), read
by one set-based query per chunk (real database, both)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from syncd.consent.policy import PurchaseFact
from syncd.context import AppContext
from syncd.crm.importer import import_file
from syncd.sync import source
from tests.conftest import TEST_AUDIENCE_ID
from tests.crm.conftest import contact_line, write_jsonl


def test_the_sync_chunks_carry_each_contacts_purchases(app_context: AppContext,
                                                       tmp_path: Path) -> None:
    import_file(app_context, write_jsonl(tmp_path / "in.jsonl", [
        contact_line("a@example.org", purchases=[
            {"date": "2026-06-01", "category": "coffee", "paid": True}]),
        contact_line("b@example.org"),
        contact_line("c@example.org", purchases=[
            {"date": "2026-07-01", "category": "mugs", "paid": False}])]))
    chunks = list(source.iter_candidates(app_context.engine, TEST_AUDIENCE_ID,
                                         app_context.keyring, chunk_size=2,
                                         purpose_lists=()))
    found = {c.facts.email: c.facts.purchases for chunk in chunks for c in chunk}
    assert found == {"a@example.org": (PurchaseFact(date(2026, 6, 1), "coffee", True),),
                     "b@example.org": (),
                     "c@example.org": (PurchaseFact(date(2026, 7, 1), "mugs", False),)}


def test_the_chunks_of_a_consent_target_leave_purchases_unread(app_context: AppContext,
                                                               tmp_path: Path) -> None:
    import_file(app_context, write_jsonl(tmp_path / "in.jsonl", [
        contact_line("a@example.org", purchases=[
            {"date": "2026-06-01", "category": "coffee", "paid": True}])]))
    chunks = list(source.iter_candidates(app_context.engine, TEST_AUDIENCE_ID,
                                         app_context.keyring, chunk_size=2,
                                         purpose_lists=(), purchases=False))
    assert [c.facts.purchases for chunk in chunks for c in chunk] == [()]
