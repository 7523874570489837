"""The import's work per line: on PostgreSQL no statement of the apply pass runs on a plan
kept from an earlier chunk (the duplicate look-up did, and scanned the whole ledger once
per chunk: docs/performance.md), and each address is parsed once per import."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select

from syncd import addresses
from syncd.context import AppContext
from syncd.crm import import_format, import_readers, import_unchanged, importer
from syncd.crm.importer import import_file
from syncd.db import transaction
from syncd.schema import ConsentEvent
from syncd.store import import_marks, ledger, ledger_hash
from tests.conftest import _empty_postgres, make_settings
from tests.crm.conftest import contact_line, signed_up, write_jsonl

real_decode = import_readers._decode_jsonl
LOOK_UP = "consent_events.dedupe_key IN (SELECT unnest"
# psycopg prepares a statement on the server from its fifth execution on (prepare_threshold).
PSYCOPG_PREPARE_THRESHOLD = 5


@pytest.fixture
def postgres_context(postgres_database: str) -> Iterator[AppContext]:
    _empty_postgres(postgres_database)
    ctx = AppContext.open(make_settings(postgres_database))
    ctx.sync_lists()
    yield ctx
    ctx.close()


def _lines(count: int) -> list[dict[str, Any]]:
    return [contact_line(f"p{i}@example.com", lists=["newsletter-nl"], consents=signed_up())
            for i in range(count)]


def test_the_duplicate_look_up_is_never_a_server_prepared_statement(
        postgres_context: AppContext, tmp_path: Path) -> None:
    chunks = 2 * PSYCOPG_PREPARE_THRESHOLD
    path = write_jsonl(tmp_path / "in.jsonl", _lines(chunks * 5))
    look_ups: list[int] = []
    prepared: list[str] = []

    def after(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if LOOK_UP in statement:
            look_ups.append(1)
            prepared.extend(row[0] for row in cursor.connection.execute(
                "SELECT statement FROM pg_prepared_statements").fetchall())

    event.listen(postgres_context.engine, "after_cursor_execute", after)
    try:
        report = import_file(postgres_context, path, chunk_lines=5)
    finally:
        event.remove(postgres_context.engine, "after_cursor_execute", after)

    assert report.consents_added == chunks * 10
    assert len(look_ups) == chunks  # one look-up of the same text per chunk
    assert not [text for text in prepared if LOOK_UP in text]


def _analyses(ctx: AppContext) -> dict[str, int]:
    with ctx.engine.connect() as connection:
        return dict(connection.exec_driver_sql(
            "SELECT relname, analyze_count FROM pg_stat_user_tables "
            "WHERE relname IN ('contacts', 'consent_events')").all())


@pytest.mark.parametrize(("created", "analysed"), [(3, True), (2, False)],
                         ids=["at the threshold", "below it"])
def test_an_import_that_created_many_contacts_analyses_the_tables_it_grew(
        postgres_context: AppContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        created: int, analysed: bool) -> None:
    # The next import's hash look-up is planned from these statistics (a sequential
    # scan of a table the planner sizes from pages alone: docs/performance.md).
    monkeypatch.setattr(importer, "ANALYZE_AFTER_CREATED", 3)
    before = _analyses(postgres_context)
    import_file(postgres_context, write_jsonl(tmp_path / "in.jsonl", _lines(created)))

    after = _analyses(postgres_context)
    grew = int(analysed)
    assert {name: after[name] - before.get(name, 0) for name in after} == {
        "contacts": grew, "consent_events": grew}


def test_the_import_connection_prepares_statements_again_after_the_import(
        postgres_context: AppContext, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", _lines(3))
    with postgres_context.engine.connect() as connection:
        kept = connection.connection.driver_connection.prepare_threshold  # type: ignore[union-attr]
    import_file(postgres_context, path)
    with postgres_context.engine.connect() as connection:
        assert connection.connection.driver_connection.prepare_threshold == kept  # type: ignore[union-attr]


def test_a_bulk_append_on_postgresql_links_every_event_after_the_head(
        postgres_context: AppContext, tmp_path: Path) -> None:
    import_file(postgres_context, write_jsonl(tmp_path / "in.jsonl", _lines(4)))
    with transaction(postgres_context.sessions) as session:
        head = ledger.head(session)
        events = sorted(session.execute(select(
            ConsentEvent.chain_seq, ConsentEvent.chain_prev, ConsentEvent.chain_hash)).all())
    assert [seq for seq, _, _ in events] == list(range(1, 9))
    assert [prev for _, prev, _ in events] == [ledger_hash.GENESIS] + [h for _, _, h in events[:-1]]
    assert (head.seq, head.hash) == (8, events[-1][2])


@pytest.fixture
def parsed_addresses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every address the import parses from now on (both places that parse one)."""
    calls: list[str] = []

    def counted(raw: str) -> addresses.Address:
        calls.append(raw)
        return addresses.parse_address(raw)

    monkeypatch.setattr(import_format, "parse_address", counted)
    monkeypatch.setattr(import_unchanged, "parse_address", counted)
    return calls


def test_each_address_is_parsed_once_per_import(app_context: AppContext, tmp_path: Path,
                                                parsed_addresses: list[str]) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", _lines(6))

    first = import_file(app_context, path)

    assert first.contacts_created == 6
    assert len(parsed_addresses) == 6  # the check pass; the apply pass reads its spool


def test_a_reimport_of_unchanged_lines_decodes_and_parses_none_of_them(
        app_context: AppContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        parsed_addresses: list[str]) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", _lines(6))
    import_file(app_context, path)
    parsed_addresses.clear()  # the first import's parses
    decoded: list[int] = []
    monkeypatch.setattr(import_readers, "_decode_jsonl", lambda number, raw: (
        decoded.append(number), real_decode(number, raw))[1])

    again = import_file(app_context, path)

    assert (again.unchanged, again.valid, parsed_addresses, decoded) == (6, 6, [], [])


def test_a_reimport_of_unchanged_lines_reads_the_file_once(
        app_context: AppContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The apply pass would write nothing: it is not run (issue 16's unchanged re-import).
    path = write_jsonl(tmp_path / "in.jsonl", _lines(6))
    import_file(app_context, path)
    reads: list[Path] = []
    real_read = importer.read_lines
    monkeypatch.setattr(importer, "read_lines", lambda at, fmt: (
        reads.append(at), real_read(at, fmt))[1])

    again = import_file(app_context, path)

    assert (again.applied, again.unchanged, again.valid, reads) == (True, 6, 6, [path])


def test_a_reimport_with_one_changed_line_reads_the_file_twice_and_applies_it(
        app_context: AppContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = _lines(6)
    import_file(app_context, write_jsonl(tmp_path / "a.jsonl", lines))
    path = write_jsonl(tmp_path / "b.jsonl", [*lines[:5], {**lines[5], "first_name": "Z"}])
    reads: list[Path] = []
    real_read = importer.read_lines
    monkeypatch.setattr(importer, "read_lines", lambda at, fmt: (
        reads.append(at), real_read(at, fmt))[1])

    again = import_file(app_context, path)

    assert (again.unchanged, again.contacts_updated, reads) == (5, 1, [path, path])


def test_the_hash_look_up_probes_the_index_at_a_size_where_any_of_an_array_scanned(
        postgres_context: AppContext) -> None:
    # `import_hash = ANY(2000 values)` was planned as a scan of the whole table at
    # 100k contacts (17 ms a chunk, twice per re-import); IN over the unnested values is
    # planned as one index probe per value at any size (store.dialect.among).
    with postgres_context.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO contacts (email_key, email_display, attributes, is_customer, "
            "created_at, updated_at, revision, import_hash, import_revision) "
            "SELECT 'p' || i || '@example.com', 'p' || i || '@example.com', '{}', false, "
            "now(), now(), 1, md5(i::text) || md5((-i)::text), 1 "
            "FROM generate_series(1, 100000) AS i")
        conn.exec_driver_sql("ANALYZE contacts")
    wanted = [f"{i:064x}" for i in range(2000)]
    captured: list[tuple[str, Any]] = []

    def before(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "import_hash" in statement:
            captured.append((statement, parameters))

    event.listen(postgres_context.engine, "before_cursor_execute", before)
    try:
        with transaction(postgres_context.sessions) as session:
            assert import_marks.unchanged(session, wanted) == {}
    finally:
        event.remove(postgres_context.engine, "before_cursor_execute", before)
    [(statement, parameters)] = captured
    with postgres_context.engine.connect() as conn:
        plan = "\n".join(row[0] for row in conn.exec_driver_sql(
            f"EXPLAIN {statement}", parameters))
    assert "ix_contacts_import_hash" in plan, plan
    assert "Seq Scan on contacts" not in plan, plan
