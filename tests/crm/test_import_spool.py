"""The spool between the import's passes: the apply pass writes what the check pass
accepted, read back as the same record, without decoding or checking a line again."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from syncd.context import AppContext
from syncd.crm import import_readers, import_spool
from syncd.crm.import_format import ImportRecord, Vocabulary, check
from syncd.crm.importer import import_file
from tests.crm.conftest import contact_line, signed_up, write_jsonl

NOW = datetime(2026, 6, 1, tzinfo=UTC)
VOCABULARY = Vocabulary(lists=frozenset({"newsletter-nl"}),
                        purposes=frozenset({"newsletter", "offers"}))


def _record() -> ImportRecord:
    found = check(7, contact_line(
        " Zoë.Ämmä@Example.com ", first_name="Zoë", last_name="d'Arc", crm_id="C-7",
        customer=True, attributes={"city": "Delft", "note": "a \"quote\"\nand a line"},
        lists=["newsletter-nl"], purchases=[{"date": "2026-05-02", "category": "coffee",
                                              "paid": True}],
        consents=[*signed_up(), {"purpose": "offers", "action": "withdrawn",
                                 "at": "2026-04-01T10:11:12.123456+02:00", "source": "crm",
                                 "user_agent": "Mozilla/5.0 (ü)"}]), VOCABULARY, NOW)
    assert isinstance(found, ImportRecord)
    return found


def test_a_spooled_record_reads_back_as_the_record_the_check_built(tmp_path: Path) -> None:
    record = _record()
    with import_spool.spool() as spool:
        spool.write([record])
        taken = spool.take(record.line)

    assert taken == {record.line: import_spool.checked(record)}
    # The ledger's dedupe key covers every field of an event: the same key, the same event.
    assert ([r.dedupe_key("k") for r in taken[record.line].records]
            == [r.dedupe_key("k") for r in record.records])


def test_take_gives_the_records_up_to_a_line_once(tmp_path: Path) -> None:
    record = _record()
    with import_spool.spool() as spool:
        spool.write([record])
        assert spool.take(record.line - 1) == {}
        assert list(spool.take(record.line)) == [record.line]
        assert spool.take(record.line + 100) == {}


def test_the_apply_pass_decodes_no_line_the_check_pass_accepted(
        app_context: AppContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", [
        contact_line(f"p{i}@example.com", lists=["newsletter-nl"], consents=signed_up())
        for i in range(6)])
    decoded: list[int] = []
    real = import_readers._decode_jsonl
    monkeypatch.setattr(import_readers, "_decode_jsonl", lambda number, raw: (
        decoded.append(number), real(number, raw))[1])

    report = import_file(app_context, path)

    assert (report.contacts_created, report.consents_added) == (6, 12)
    assert sorted(decoded) == [1, 2, 3, 4, 5, 6]  # the check pass only
