"""The purge's statements on the wire (issue 16: on PostgreSQL each round trip cost CPU
and, after the chain head's lock, held every other purge back): an unsubscribe of a
known contact on a list is stored and purged in a bounded number of statements, and on
PostgreSQL the head is held for the withdrawal's one write (and the commit) only, and not
taken at all by the same withdrawal seen again (nothing to append)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event

from syncd.context import AppContext
from syncd.webhooks.inbox import receive
from syncd.webhooks.mailchimp_form import parse_body
from tests.builders import add_contact, confirmed
from tests.conftest import fixture_body
from tests.webhooks.snapshot import person

ADA = "ada.lovelace@example.com"  # the address of unsubscribe.form
# Exactly what the code sends (SQLite's BEGIN IMMEDIATE counted; no set_config on PostgreSQL:
# receive() runs here without the HTTP deadline). Before issue 16's cut: 15 on either.
MOST = {"postgresql": 7, "sqlite": 12}


@pytest.fixture
def statements(app_context: AppContext) -> Iterator[list[str]]:
    """Every statement the engine sends from here on."""
    sent: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(" ".join(statement.split()))

    event.listen(app_context.engine, "before_cursor_execute", record)
    yield sent
    event.remove(app_context.engine, "before_cursor_execute", record)


def _unsubscribe(ctx: AppContext) -> str:
    body = fixture_body("unsubscribe.form")
    return receive(ctx.sessions, parse_body(body), body.decode(), settings=ctx.settings,
                   keyring=ctx.keyring).status


def test_an_unsubscribe_is_stored_and_purged_in_a_bounded_number_of_statements(
        app_context: AppContext, statements: list[str]) -> None:
    add_contact(app_context, ADA, events=confirmed(), lists=["newsletter-nl"])
    statements.clear()

    assert _unsubscribe(app_context) == "applied"

    assert len(statements) <= MOST[app_context.engine.dialect.name], statements
    assert person(app_context, ADA).lists == ()


def test_on_postgresql_the_chain_head_is_held_for_the_one_write_only(
        app_context: AppContext, statements: list[str]) -> None:
    if app_context.engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises writers; the head has no row lock there")
    add_contact(app_context, ADA, events=confirmed(), lists=["newsletter-nl"])
    statements.clear()

    assert _unsubscribe(app_context) == "applied"

    locked = next(i for i, s in enumerate(statements)
                  if "FROM ledger_chain_head" in s and s.endswith("FOR UPDATE"))
    after = statements[locked + 1:]
    assert [s.split()[0:2] for s in after] == [["WITH", "gone"]]


def test_on_postgresql_the_same_withdrawal_seen_again_takes_no_chain_head_lock(
        app_context: AppContext, statements: list[str]) -> None:
    if app_context.engine.dialect.name != "postgresql":
        pytest.skip("SQLite serialises writers; the head has no row lock there")
    add_contact(app_context, ADA, events=confirmed(), lists=["newsletter-nl"])
    assert _unsubscribe(app_context) == "applied"
    # The same unsubscribe a minute later: within the window, nothing to append.
    body = fixture_body("unsubscribe.form").replace(b"13%3A10%3A40", b"13%3A11%3A40")
    statements.clear()

    assert receive(app_context.sessions, parse_body(body), body.decode(),
                   settings=app_context.settings, keyring=app_context.keyring
                   ).status == "ignored"

    assert not [s for s in statements if "FROM ledger_chain_head" in s], statements
