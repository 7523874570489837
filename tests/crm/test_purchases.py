"""Purchases in the import, the store and `contacts show|object`, on both databases: the
soft opt-in basis (docs/consent-rules.md rules 7 and 11) from the file to the decision."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from syncd.clock import utcnow
from syncd.context import AppContext
from syncd.crm import inspect
from syncd.crm.erasure import erase_contact
from syncd.crm.importer import import_file
from syncd.db import transaction
from syncd.schema import Purchase
from tests.conftest import make_settings
from tests.crm.conftest import Cli, consent, contact_line, counts, signed_up, write_jsonl

OFFERS_TARGET = {"name": "offers", "audience_id": "offers0001", "purposes": ["offers"],
                 "basis": "soft_opt_in", "soft_opt_in_months": 24}
NEWSLETTER_TARGET = {"name": "newsletter", "audience_id": "news000001",
                     "purposes": ["newsletter"]}


def _bought(day: str = "2026-06-01", category: str = "coffee", paid: bool = True
            ) -> dict[str, Any]:
    return {"date": day, "category": category, "paid": paid}


@pytest.fixture
def targets_context(database_url: str) -> Iterator[AppContext]:
    settings = make_settings(database_url, mailchimp_audience_id=None,
                             targets=[NEWSLETTER_TARGET, OFFERS_TARGET])
    ctx = AppContext.open(settings)
    ctx.sync_lists()
    try:
        yield ctx
    finally:
        ctx.close()


def _purchases(ctx: AppContext) -> list[tuple[date, str, bool]]:
    with transaction(ctx.sessions) as session:
        return [(p.purchased_on, p.category, p.paid)
                for p in session.scalars(select(Purchase).order_by(Purchase.purchased_on))]


def _show(ctx: AppContext, email: str) -> inspect.ContactView:
    with transaction(ctx.sessions) as session:
        view = inspect.show(session, ctx.settings, ctx.keyring, email, now=utcnow())
    assert view is not None
    return view


def test_imported_purchases_are_stored_once_with_day_category_and_paid_only(
        app_context: AppContext, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", [contact_line(purchases=[
        _bought(), _bought("2026-07-01", "samples", paid=False)])])
    assert import_file(app_context, path).applied
    assert import_file(app_context, path).applied  # a re-import adds nothing
    assert _purchases(app_context) == [(date(2026, 6, 1), "coffee", True),
                                       (date(2026, 7, 1), "samples", False)]
    with app_context.engine.connect() as conn:
        columns = set(conn.execute(text("select * from purchases")).keys())
    assert columns == {"id", "contact_id", "purchased_on", "category", "paid"}


def test_a_new_purchase_bumps_the_revision_and_a_re_import_does_not(
        app_context: AppContext, tmp_path: Path) -> None:
    first = write_jsonl(tmp_path / "a.jsonl", [contact_line()])
    import_file(app_context, first)
    before = _show(app_context, "ada@example.com").revision
    bought = write_jsonl(tmp_path / "b.jsonl", [contact_line(purchases=[_bought()])])
    import_file(app_context, bought)
    after = _show(app_context, "ada@example.com").revision
    import_file(app_context, bought)
    assert after > before
    assert _show(app_context, "ada@example.com").revision == after


@pytest.mark.parametrize(("purchase", "expected"), [
    ({"date": "2026-13-01", "category": "coffee", "paid": True},
     "line 2, field purchases[0].date: not an ISO 8601 date (e.g. 2026-03-01)"),
    ({"date": "2026-06-01", "category": "coffee"},
     "line 2, field purchases[0].paid: required but missing"),
    ({"date": "2026-06-01", "category": "coffee", "paid": "yes"},
     "line 2, field purchases[0].paid: Input should be a valid boolean"),
    ({"date": "2026-06-01", "category": "", "paid": True},
     "line 2, field purchases[0].category: String should have at least 1 character"),
    ({"date": "2026-06-01", "category": "coffee", "paid": True, "price": 3},
     "line 2, field purchases[0].price: unknown key (allowed: category, date, paid)"),
    ({"date": "2999-01-01", "category": "coffee", "paid": True},
     "line 2, field purchases[0].date: is in the future"),
])
def test_a_bad_purchase_names_line_and_field_and_writes_nothing(
        app_context: AppContext, tmp_path: Path, purchase: dict[str, Any],
        expected: str) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", [
        contact_line("good@example.com", purchases=[_bought()]),
        contact_line(purchases=[purchase])])
    report = import_file(app_context, path)
    assert not report.applied
    assert [str(e) for e in report.errors] == [expected]
    assert counts(app_context)["contacts"] == 0
    assert _purchases(app_context) == []


def test_skip_invalid_keeps_the_good_lines_purchases(app_context: AppContext,
                                                     tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", [
        contact_line("good@example.com", purchases=[_bought()]),
        contact_line(purchases=[_bought(day="yesterday")])])
    report = import_file(app_context, path, skip_invalid=True)
    assert report.applied
    assert report.invalid == 1
    assert _purchases(app_context) == [(date(2026, 6, 1), "coffee", True)]


def test_erasure_deletes_the_purchases(app_context: AppContext, tmp_path: Path) -> None:
    import_file(app_context, write_jsonl(tmp_path / "in.jsonl", [
        contact_line(purchases=[_bought()]),
        contact_line("other@example.com", purchases=[_bought("2026-05-01")])]))
    erase_contact(app_context, "ada@example.com", actor="test")
    assert _purchases(app_context) == [(date(2026, 5, 1), "coffee", True)]


def test_show_gives_the_soft_opt_in_basis_of_a_paying_customer(
        targets_context: AppContext, tmp_path: Path) -> None:
    import_file(targets_context, write_jsonl(tmp_path / "in.jsonl", [contact_line(
        customer=True, purchases=[_bought(), _bought("2026-07-01", "mugs")])]))
    view = _show(targets_context, "ada@example.com")
    assert view.soft_opt_in["offers"].eligible
    assert view.soft_opt_in["offers"].reason == (
        "soft opt-in: customer since 2026-06-01, categories coffee, mugs")
    # A customer is no newsletter subscriber (rule 7).
    assert not view.purposes["newsletter"].eligible
    assert view.as_dict()["purchases"][0] == {"date": "2026-06-01", "category": "coffee",
                                              "paid": True}


def test_show_says_why_a_quote_makes_no_customer(targets_context: AppContext,
                                                 tmp_path: Path) -> None:
    import_file(targets_context, write_jsonl(tmp_path / "in.jsonl", [contact_line(
        purchases=[_bought(paid=False)])]))
    offers = _show(targets_context, "ada@example.com").soft_opt_in["offers"]
    assert not offers.eligible
    assert offers.reason.startswith("not a customer: no paid purchase")


def test_a_newsletter_subscriber_is_not_admitted_to_offers(targets_context: AppContext,
                                                           tmp_path: Path) -> None:
    import_file(targets_context, write_jsonl(tmp_path / "in.jsonl", [contact_line(
        lists=["newsletter-nl"], consents=signed_up())]))
    view = _show(targets_context, "ada@example.com")
    assert view.purposes["newsletter"].eligible
    assert not view.soft_opt_in["offers"].eligible


def test_an_imported_objection_at_the_purchase_blocks_offers(targets_context: AppContext,
                                                             tmp_path: Path) -> None:
    import_file(targets_context, write_jsonl(tmp_path / "in.jsonl", [contact_line(
        purchases=[_bought()],
        consents=[consent("offers", "withdrawn", "2026-06-01T12:00:00Z", source="checkout")])]))
    offers = _show(targets_context, "ada@example.com").soft_opt_in["offers"]
    assert not offers.eligible
    assert offers.reason.startswith("objected on 2026-06-01 12:00 UTC via checkout")


def test_contacts_object_records_a_withdrawal_that_a_later_purchase_does_not_undo(
        cli: Cli, app_context: AppContext, tmp_path: Path) -> None:
    import_file(app_context, write_jsonl(tmp_path / "a.jsonl", [contact_line(
        lists=["offers"], purchases=[_bought()])]))
    result = cli("contacts", "object", "ada@example.com", "--purpose", "offers")
    assert result.exit_code == 0, result.output
    import_file(app_context, write_jsonl(tmp_path / "b.jsonl", [contact_line(
        purchases=[_bought(date.today().isoformat(), "mugs")])]))
    shown = json.loads(cli("contacts", "show", "ada@example.com", "--json").output)
    assert shown["lists"] == []
    assert [(s["purpose"], s["reason"]) for s in shown["suppressions"]] == [
        ("offers", "objection")]
    assert [e["action"] for e in shown["history"] if e["purpose"] == "offers"] == ["withdrawn"]


def test_contacts_object_refuses_an_unknown_purpose(cli: Cli) -> None:
    result = cli("contacts", "object", "ada@example.com", "--purpose", "nope")
    assert result.exit_code != 0
    assert "unknown purpose 'nope'" in result.output


def test_contacts_show_prints_the_soft_opt_in_basis_and_the_purchases(
        config_file: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from syncd.cli import _register_all, app

    if not any(command.name == "import" for command in app.registered_commands):
        _register_all()
    text_config = config_file.read_text(encoding="utf-8").replace(
        "[log]", "\n".join([
            "[[targets]]", 'name = "offers"', 'audience_id = "offers0001"',
            'purposes = ["offers"]', 'basis = "soft_opt_in"', "[log]"]))
    config = tmp_path / "targets.toml"
    config.write_text(text_config, encoding="utf-8")
    path = write_jsonl(tmp_path / "in.jsonl", [contact_line(purchases=[
        _bought(), _bought("2026-07-01", "samples", paid=False)])])
    runner = CliRunner()
    assert runner.invoke(app, ["--config", str(config), "import", str(path)]).exit_code == 0
    result = runner.invoke(app, ["--config", str(config), "contacts", "show",
                                 "ada@example.com"])
    assert result.exit_code == 0, result.output
    assert ("target offers: soft opt-in: customer since 2026-06-01, categories coffee"
            in result.output)
    assert ("purchases: 2026-06-01 coffee (paid); 2026-07-01 samples (not paid)"
            in result.output)
