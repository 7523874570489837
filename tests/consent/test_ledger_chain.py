"""The ledger's hash chain: every write path links, `verify` names the first event changed,
removed or put out of order, erasure keeps the chain whole, and an exported head catches a
chain rewritten from the start. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Connection, select, text
from sqlalchemy.exc import DBAPIError

from syncd.consent.chain_verify import Verdict, verify
from syncd.consent.policy import Action
from syncd.context import AppContext
from syncd.crm.erasure import erase_contact
from syncd.crm.importer import import_file
from syncd.db import make_engine, transaction
from syncd.migrate import upgrade
from syncd.schema import ConsentEvent
from syncd.store import ledger as chain
from tests.builders import add_contact, at, confirmed
from tests.conftest import make_settings
from tests.crm.conftest import Cli, consent, contact_line, write_jsonl


def _verify(ctx: AppContext, expected: tuple[int, str] | None = None) -> Verdict:
    with ctx.sessions() as session:
        return verify(session, expected=expected)


def _events(ctx: AppContext) -> list[tuple[int, int]]:
    """(id, chain position) of every event, in chain order."""
    with ctx.sessions() as session:
        return [(int(i), int(s)) for i, s in session.execute(
            select(ConsentEvent.id, ConsentEvent.chain_seq).order_by(ConsentEvent.chain_seq))]


@contextmanager
def _as_intruder(ctx: AppContext) -> Iterator[Connection]:
    """A connection that writes past syncd's triggers, as someone with database access
    could: PostgreSQL skips user triggers for this session only; SQLite (a file per
    test) has them dropped."""
    with ctx.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SET LOCAL session_replication_role = replica"))
        else:
            conn.execute(text("DROP TRIGGER IF EXISTS consent_events_append_only"))
            conn.execute(text("DROP TRIGGER IF EXISTS consent_events_tombstoned"))
        yield conn


def _three_people(ctx: AppContext) -> None:
    add_contact(ctx, "ada@example.com", events=confirmed())
    add_contact(ctx, "bob@example.com", events=confirmed(days=1))
    add_contact(ctx, "cy@example.com", events=confirmed(days=2))


def test_events_appended_one_by_one_form_a_chain_that_verifies(
        app_context: AppContext) -> None:
    _three_people(app_context)
    verdict = _verify(app_context)
    assert verdict.ok, verdict.problem
    assert (verdict.events, verdict.head_seq) == (6, 6)
    assert [seq for _, seq in _events(app_context)] == [1, 2, 3, 4, 5, 6]


def test_a_bulk_import_links_its_events_and_skips_known_ones(
        app_context: AppContext, tmp_path: Path) -> None:
    add_contact(app_context, "ada@example.com", events=confirmed())
    lines = [contact_line(f"p{i}@example.com", consents=[
        consent(action="given", at="2026-03-01T09:00:00Z"),
        consent(at="2026-03-01T09:30:00Z")]) for i in range(5)]
    path = write_jsonl(tmp_path / "people.jsonl", lines)
    import_file(app_context, path)
    import_file(app_context, path)  # the same events again: nothing appended
    verdict = _verify(app_context)
    assert verdict.ok, verdict.problem
    assert (verdict.events, verdict.head_seq) == (12, 12)


def test_verify_names_an_edited_event(app_context: AppContext) -> None:
    _three_people(app_context)
    edited_id, edited_seq = _events(app_context)[3]
    with _as_intruder(app_context) as conn:
        conn.execute(text("UPDATE consent_events SET ip = '203.0.113.9' WHERE id = :id"),
                     {"id": edited_id})
    verdict = _verify(app_context)
    assert verdict.problem is not None
    assert (verdict.problem.kind, verdict.problem.event_id, verdict.problem.seq) == (
        "changed", edited_id, edited_seq)
    assert f"event {edited_id}" in verdict.problem.message


def test_verify_names_the_event_after_a_deleted_one(app_context: AppContext) -> None:
    _three_people(app_context)
    events = _events(app_context)
    with _as_intruder(app_context) as conn:
        conn.execute(text("DELETE FROM consent_events WHERE id = :id"), {"id": events[2][0]})
    verdict = _verify(app_context)
    assert verdict.problem is not None
    assert (verdict.problem.kind, verdict.problem.event_id) == ("removed", events[3][0])


def test_verify_sees_the_newest_event_deleted(app_context: AppContext) -> None:
    _three_people(app_context)
    newest = _events(app_context)[-1][0]
    with _as_intruder(app_context) as conn:
        conn.execute(text("DELETE FROM consent_events WHERE id = :id"), {"id": newest})
    verdict = _verify(app_context)
    assert verdict.problem is not None
    assert verdict.problem.kind == "head_mismatch"
    assert "newest events were removed" in verdict.problem.message


def test_verify_names_an_event_moved_out_of_order(app_context: AppContext) -> None:
    _three_people(app_context)
    events = _events(app_context)
    (first_id, first_seq), (second_id, second_seq) = events[1], events[2]
    with _as_intruder(app_context) as conn:  # swap two places (via a free one: unique)
        conn.execute(text("UPDATE consent_events SET chain_seq = -1 WHERE id = :id"),
                     {"id": first_id})
        conn.execute(text("UPDATE consent_events SET chain_seq = :s WHERE id = :id"),
                     {"s": first_seq, "id": second_id})
        conn.execute(text("UPDATE consent_events SET chain_seq = :s WHERE id = :id"),
                     {"s": second_seq, "id": first_id})
    verdict = _verify(app_context)
    assert verdict.problem is not None
    assert (verdict.problem.kind, verdict.problem.event_id) == ("out_of_order", second_id)
    assert f"written after event {first_id}" in verdict.problem.message


def test_an_event_slipped_in_by_hand_is_caught(app_context: AppContext) -> None:
    _three_people(app_context)
    with _as_intruder(app_context) as conn:
        row = conn.execute(text("SELECT * FROM consent_events ORDER BY chain_seq LIMIT 1")
                           ).mappings().one()
        forged = dict(row) | {"dedupe_key": "f" * 64, "chain_seq": 99, "id": 999,
                              "action": "confirmed"}
        columns = ", ".join(forged)
        conn.execute(text(f"INSERT INTO consent_events ({columns}) VALUES "
                          f"({', '.join(':' + c for c in forged)})"), forged)
    verdict = _verify(app_context)
    assert verdict.problem is not None
    assert verdict.problem.event_id == 999


def test_an_erased_persons_chain_still_verifies(app_context: AppContext) -> None:
    _three_people(app_context)
    head_before = _verify(app_context).head_hash
    erase_contact(app_context, "bob@example.com", actor="test")
    add_contact(app_context, "dee@example.com", events=confirmed(days=3))
    verdict = _verify(app_context)
    assert verdict.ok, verdict.problem
    assert (verdict.events, verdict.tombstones) == (6, 2)
    assert verdict.head_hash != head_before


def test_a_tombstone_keeps_no_content_of_the_erased_event(app_context: AppContext) -> None:
    add_contact(app_context, "bob@example.com", events=confirmed())
    erase_contact(app_context, "bob@example.com", actor="test")
    with app_context.engine.connect() as conn:
        stones = conn.execute(text("SELECT * FROM ledger_tombstones")).mappings().all()
    assert len(stones) == 2
    assert not any("bob" in str(value) for row in stones for value in row.values())
    assert set(stones[0]) == {"seq", "event_id", "event_hash", "prev_hash", "removed_at",
                              "reason"}


def test_the_database_refuses_to_delete_an_event_without_its_tombstone(
        app_context: AppContext) -> None:
    add_contact(app_context, "ada@example.com", events=confirmed())
    with pytest.raises(DBAPIError, match="tombstone"), app_context.engine.begin() as conn:
        conn.execute(text("DELETE FROM consent_events"))


def test_an_exported_head_catches_a_chain_rewritten_from_the_start(
        app_context: AppContext) -> None:
    _three_people(app_context)
    with app_context.sessions() as session:
        exported = chain.head(session)
    # The intruder edits an event and recomputes every link after it, head included.
    with _as_intruder(app_context) as conn:
        conn.execute(text("UPDATE consent_events SET ip = '203.0.113.9' WHERE chain_seq = 1"))
        prev = chain.GENESIS
        rows = conn.execute(select(ConsentEvent.__table__).order_by(ConsentEvent.chain_seq)
                            ).mappings().all()
        for row in rows:
            link = chain.event_hash(prev, dict(row))
            conn.execute(text("UPDATE consent_events SET chain_prev = :p, chain_hash = :h "
                              "WHERE id = :id"), {"p": prev, "h": link, "id": row["id"]})
            prev = link
        conn.execute(text("UPDATE ledger_chain_head SET hash = :h"), {"h": prev})
    assert _verify(app_context).ok  # on its own, a full rewrite is consistent
    verdict = _verify(app_context, expected=(exported.seq, exported.hash))
    assert verdict.problem is not None
    assert verdict.problem.kind == "expected_head_missing"


def test_concurrent_appends_never_fork_the_chain(app_context: AppContext) -> None:
    ids = [add_contact(app_context, f"p{i}@example.com") for i in range(8)]
    start = threading.Barrier(len(ids))
    errors: list[BaseException] = []

    def write(contact_id: int) -> None:
        from syncd.consent import ledger
        from syncd.consent.ledger import ConsentRecord
        from syncd.schema import Contact

        start.wait()
        try:
            for n in range(5):
                with transaction(app_context.sessions) as session:
                    contact = session.get(Contact, contact_id)
                    assert contact is not None
                    ledger.append(session, contact, ConsentRecord(
                        purpose="newsletter", action=Action.GIVEN,
                        occurred_at=at(n), source="web_form"), actor="test")
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    verdict = _verify(app_context)
    assert verdict.ok, verdict.problem
    assert verdict.events == verdict.head_seq == 40


def test_the_migration_links_events_written_before_it(database_url: str) -> None:
    engine = make_engine(database_url)
    with engine.begin() as conn:  # back to the schema before the chain
        conn.execute(text("DELETE FROM ledger_tombstones"))
        conn.execute(text("DELETE FROM ledger_chain_head"))
    from alembic import command

    from syncd.migrate import _config

    config = _config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0006-1")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO contacts (id, email_key, email_display, attributes, "
                          "is_customer, created_at, updated_at, revision) VALUES (1, "
                          "'old@example.com', 'old@example.com', '{}', false, :t, :t, 1)"),
                     {"t": at(0)})
        for n, action in enumerate(("given", "confirmed")):
            conn.execute(text(
                "INSERT INTO consent_events (contact_id, purpose, action, occurred_at, "
                "recorded_at, source, email_at_time, dedupe_key) VALUES (1, 'newsletter', "
                ":a, :t, :t, 'import', 'old@example.com', :k)"),
                {"a": action, "t": at(n), "k": str(n) * 64})
    upgrade(engine)
    ctx = AppContext.open(make_settings(database_url))
    try:
        verdict = _verify(ctx)
        assert verdict.ok, verdict.problem
        assert (verdict.events, verdict.head_seq) == (2, 2)
    finally:
        ctx.close()
        engine.dispose()


def test_ledger_cli_exports_the_head_and_verifies_against_it(
        app_context: AppContext, cli: Cli, tmp_path: Path) -> None:
    _three_people(app_context)
    exported = cli("ledger", "head", "--json")
    assert exported.exit_code == 0, exported.output
    path = tmp_path / "head.json"
    path.write_text(exported.stdout, encoding="utf-8")
    assert json.loads(exported.stdout)["seq"] == 6
    good = cli("ledger", "verify", "--expect-head", str(path))
    assert good.exit_code == 0, good.output
    assert "6 events" in good.stdout
    edited = _events(app_context)[0][0]
    with _as_intruder(app_context) as conn:
        conn.execute(text("UPDATE consent_events SET source = 'cli' WHERE id = :id"),
                     {"id": edited})
    bad = cli("ledger", "verify", "--json")
    assert bad.exit_code == 1
    assert json.loads(bad.stdout)["problem"]["event_id"] == edited


def test_ledger_cli_refuses_a_head_file_that_is_not_one(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "head.json"
    path.write_text("{\"seq\": 3}", encoding="utf-8")
    result = cli("ledger", "verify", "--expect-head", str(path))
    assert result.exit_code == 3
    assert "not a head exported" in result.output

