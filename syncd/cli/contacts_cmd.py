"""`syncd contacts show|list|erase|export`: what we hold on a person, whether we may mail
them and why, their data on request and erasure (Art. 15, 17 and 20 GDPR); `contacts
proof` and `contacts object` have modules of their own (contacts_proof_cmd.py,
contacts_object_cmd.py)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from syncd.addresses import parse_address
from syncd.cli.common import (
    err_console,
    fail,
    handle_errors,
    json_dumps,
    open_context,
    out_console,
)
from syncd.clock import utcnow
from syncd.exit_codes import ExitCode

if TYPE_CHECKING:
    from syncd.context import AppContext
    from syncd.crm.inspect import ContactLine
    from syncd.esp.mailchimp import MailchimpClient

DEFAULT_LIMIT = 100


@handle_errors
def show(
    email: Annotated[str, typer.Argument(help="The contact's email address.")],
    *,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Lists, consent history and, per purpose, eligibility with its reason."""
    from syncd.crm import inspect

    key = parse_address(email).key
    ctx = open_context()
    try:
        with ctx.sessions() as session:
            view = inspect.show(session, ctx.settings, ctx.keyring, key, now=utcnow())
    finally:
        ctx.close()
    if view is None:
        raise fail("no contact with this address", ExitCode.NOT_FOUND)
    if as_json:
        out_console.print(json_dumps(view.as_dict()), markup=False)
        return
    out = out_console
    out.print(f"[bold]{escape(view.email)}[/]  (contact {view.contact_id}, "
              f"revision {view.revision})")
    names = " ".join(n for n in (view.first_name, view.last_name) if n)
    out.print(f"name: {names or '-'}   crm id: {view.crm_id or '-'}   "
              f"customer: {'yes' if view.is_customer else 'no'}", markup=False)
    out.print(f"lists: {', '.join(view.lists) or '-'}", markup=False)
    out.print("suppressed: " + ("; ".join(f"{b.purpose} ({b.reason}) since {b.since:%Y-%m-%d}"
                                          for b in view.suppressions) or "no"), markup=False)
    out.print("undeliverable: " + (f"since {view.undeliverable_since:%Y-%m-%d}"
                                   if view.undeliverable_since else "no"), markup=False)
    purposes = Table(title="Eligibility per purpose")
    for column in ("purpose", "eligible", "standing", "reason"):
        purposes.add_column(column)
    for name, decision in sorted(view.purposes.items()):
        purposes.add_row(*_cells(name, "yes" if decision.eligible else "no",
                                 decision.standing, decision.reason))
    out.print(purposes)
    for target, basis in sorted(view.soft_opt_in.items()):
        out.print(f"target {target}: {basis.reason}", markup=False)
    if view.purchases:
        out.print("purchases: " + "; ".join(
            f"{p['date']} {p['category']} ({'paid' if p['paid'] else 'not paid'})"
            for p in view.purchases), markup=False)
    history = Table(title="Consent history")
    for column in ("when", "purpose", "action", "source", "text", "form"):
        history.add_column(column)
    for event in view.history:
        history.add_row(*_cells(str(event["at"]), event["purpose"], event["action"],
                                event["source"], event["text_version"] or "-",
                                event["form_url"] or "-"))
    out.print(history)


@handle_errors
def list_contacts(
    *,
    eligible: Annotated[bool | None, typer.Option(
        "--eligible/--not-eligible", help="Only contacts that may (not) be mailed.",
        show_default=False)] = None,
    list_name: Annotated[str | None, typer.Option("--list", help="Only members of this list.")]
    = None,
    purpose: Annotated[str | None, typer.Option(
        help="Purpose to judge eligibility for (default: the first purpose of the first "
             "[[targets]] table, or sync_purpose with the single-audience settings).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as a JSON array.")] = False,
    limit: Annotated[int, typer.Option(
        help="At most this many contacts (one page); 0 for all.", min=0)] = DEFAULT_LIMIT,
    after: Annotated[int, typer.Option(
        help="Start after this contact id: the next page (its command is printed on stderr "
             "below a full page; in --json, the last row's id).", min=0)] = 0,
) -> None:
    """Contacts with their lists and eligibility, page by page (--limit, --after)."""
    from syncd.crm import inspect

    ctx = open_context()
    try:
        chosen = purpose or ctx.settings.default_purpose
        if chosen not in ctx.settings.purposes:
            raise fail(f"unknown purpose {chosen!r} (known: "
                       f"{', '.join(sorted(ctx.settings.purposes))})", ExitCode.CONFIG)
        if list_name is not None and list_name not in ctx.settings.lists:
            raise fail(f"unknown list {list_name!r} (configured: "
                       f"{', '.join(sorted(ctx.settings.lists))})", ExitCode.CONFIG)
        with ctx.sessions() as session:
            found = inspect.rows(session, ctx.keyring, purpose=chosen, now=utcnow(),
                                 eligible=eligible, list_name=list_name, limit=limit or None,
                                 after=after)
            shown: list[int] = []
            found = _counted(found, shown)
            if as_json:
                # Streamed: one contact at a time, whatever the size.
                sys.stdout.write("[")
                for index, row in enumerate(found):
                    sys.stdout.write(("," if index else "") + "\n  "
                                     + json_dumps(row.as_dict()).replace("\n", "\n  "))
                sys.stdout.write("\n]\n")
            elif out_console.is_terminal and limit:
                table = Table(title=f"Contacts ({chosen})")
                for column in ("email", "lists", "eligible", "reason"):
                    table.add_column(column)
                for row in found:
                    table.add_row(*_cells(row.email, ", ".join(row.lists) or "-",
                                          "yes" if row.eligible else "no", row.reason))
                out_console.print(table)
            else:
                for row in found:
                    sys.stdout.write("\t".join((row.email, ",".join(row.lists) or "-",
                                                "eligible" if row.eligible else "not-eligible",
                                                row.reason)) + "\n")
        if limit and len(shown) == limit:
            # A full page: there may be more. The command for the next one, on stderr so
            # that piped output stays rows only.
            err_console.print(f"next page: syncd contacts list --after {shown[-1]} "
                              f"--limit {limit} (same filters)", markup=False)
    finally:
        ctx.close()


def _counted(rows: Iterator[ContactLine], ids: list[int]) -> Iterator[ContactLine]:
    for row in rows:
        ids.append(row.contact_id)
        yield row


@handle_errors
def erase(
    email: Annotated[str, typer.Argument(help="The address of the person to erase.")],
    *,
    at_esp: Annotated[bool, typer.Option(
        "--at-esp", help="Also delete the member permanently at Mailchimp (irreversible).")]
    = False,
    local_only: Annotated[bool, typer.Option(
        "--local-only", help="Erase here although the person is still a member at Mailchimp "
                             "(only when Mailchimp's copy is handled elsewhere).")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Erase a person (Art. 17): delete their data, keep only a suppression entry.

    With --at-esp the member is deleted permanently in every audience syncd writes to
    (each target's). Safe to repeat: a second run (e.g. after a Mailchimp call failed)
    finds no local contact and still deletes at Mailchimp with --at-esp."""
    from syncd.crm.erasure import erase_contact, esp_audiences, statuses_at_esp
    from syncd.esp.errors import EspError

    parse_address(email)  # a bad address fails before any question is asked
    ctx = open_context()
    clients: dict[str, MailchimpClient] = {}
    try:
        if at_esp:
            from syncd.esp.mailchimp import mailchimp_client

            # Every client before anything is erased: a missing setting fails first.
            for name, audience in esp_audiences(ctx.settings).items():
                clients[name] = mailchimp_client(ctx.settings, audience)
        elif not local_only:
            try:
                live = statuses_at_esp(ctx, email)
            except EspError as exc:
                raise fail(f"could not ask Mailchimp whether this person is a member: {exc}; "
                           "nothing erased (--local-only skips the question)",
                           ExitCode.FAILED) from None
            if live:
                raise fail(f"this person is a member at Mailchimp ({_statuses(ctx, live)}): "
                           "erasing only here would leave Mailchimp's copy (and mail, if "
                           "subscribed), and syncd could no longer act on it. Use --at-esp "
                           "to delete them there too, or --local-only if Mailchimp's copy "
                           "is handled elsewhere. Nothing erased.", ExitCode.REFUSED)
        if not yes and not typer.confirm(
                "Erase this contact's data" + (" here and at Mailchimp" if at_esp else "")
                + "? This cannot be undone.", default=False, err=True):
            raise fail("not erased", ExitCode.REFUSED)
        result = erase_contact(ctx, email, actor="cli")
        out_console.print(("contact erased" if result.found
                           else "no local contact for this address")
                          + "; the address stays suppressed for every purpose (keyed hash only)",
                          markup=False)
        _erase_at_esp(ctx, clients, result.subscriber_hash)
    finally:
        for client in clients.values():
            client.close()
        ctx.close()


def _statuses(ctx: AppContext, found: dict[str, str]) -> str:
    """`subscribed` for the single-audience settings; per target with [[targets]]."""
    if not ctx.settings.targets:
        return ", ".join(found.values())
    return "; ".join(f"target {name}: {status}" for name, status in found.items())


def _erase_at_esp(ctx: AppContext, clients: dict[str, MailchimpClient], member: str) -> None:
    """delete-permanent in each audience; one failing does not stop the others."""
    from syncd.esp.errors import EspError

    failed: list[str] = []
    for name, client in clients.items():
        try:
            client.delete_member_permanently(member)
        except EspError as exc:
            failed.append(f"target {name}: {exc}" if ctx.settings.targets else str(exc))
            continue
        out_console.print("deleted permanently at Mailchimp"
                          + (f" (target {name})" if ctx.settings.targets else ""),
                          markup=False)
    if failed:
        raise fail(f"erased here, but Mailchimp refused or failed: {'; '.join(failed)}; run "
                   "the same command again to retry", ExitCode.FAILED)


@handle_errors
def export(
    email: Annotated[str, typer.Argument(help="The person's email address.")],
    *,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Write the document to this file (default: standard output).")]
    = None,
) -> None:
    """Everything syncd holds about a person as one JSON document (Art. 15 and 20).

    The schema is documented in docs/subject-data.md ("syncd-subject-export/1")."""
    from syncd.crm.subject import export_for

    parse_address(email)
    ctx = open_context()
    try:
        doc = export_for(ctx, email)
    finally:
        ctx.close()
    if doc is None:
        raise fail("syncd holds nothing about this address", ExitCode.NOT_FOUND)
    text = json_dumps(doc) + "\n"
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise fail(f"--output {output}: cannot write: {exc.strerror}", ExitCode.FAILED) from None
    output.chmod(0o600)  # personal data: readable by the operator only
    err_console.print(f"written to {output}", markup=False)


def _cells(*values: str) -> list[Text]:
    """Table cells as plain text: stored data is never read as console markup."""
    return [Text(value) for value in values]


def register(app: typer.Typer) -> None:
    from syncd.cli.contacts_object_cmd import object_to
    from syncd.cli.contacts_proof_cmd import proof

    contacts = typer.Typer(help="Inspect contacts and erase them on request.",
                           no_args_is_help=True)
    contacts.command("show")(show)
    contacts.command("list")(list_contacts)
    contacts.command("erase")(erase)
    contacts.command("proof")(proof)
    contacts.command("export")(export)
    contacts.command("object")(object_to)
    app.add_typer(contacts, name="contacts")

