"""What the demo says: plain sentences and tables on a terminal (colour when it is one),
or one JSON document for machines. Sample addresses are fictitious (example.com) and are
shown; the webhook secret never is (masked URL only)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from syncd.demo.checks import Check
from syncd.demo.report import DemoReport, StepResult
from syncd.demo.stage import Stage

MARK = {True: "[green]✓[/]", False: "[bold red]✗[/]"}


class Narrator:
    """Tells each step as it finishes (runner.Observer)."""

    def __init__(self, console: Console) -> None:
        self.out = console
        self.number = 0

    def stage_ready(self, stage: Stage) -> None:
        self.out.print("[bold]syncd demo[/]: syncd's whole job, on this machine only.")
        self.out.print(f"  database   SQLite in {stage.directory}"
                       + ("" if stage.kept else " (removed at the end)"))
        self.out.print(f"  Mailchimp  the emulator at {stage.emulator.base_url}: audience "
                       f"{stage.newsletter.audience_id} (target newsletter, GDPR field "
                       f"Email), audience {stage.offers.audience_id} (target offers)")
        self.out.print(f"  service    `syncd serve`'s HTTP app at {stage.service.base_url}")
        self.out.print(f"  settings   {stage.config_path.name} through the production "
                       "Settings, with the paths and ports above")
        if stage.ignored_environment:
            self.out.print(f"  [yellow]ignored[/]    {', '.join(stage.ignored_environment)} "
                           "(the demo never uses your own settings)")

    def step_done(self, result: StepResult) -> None:
        self.number += 1
        self.out.print()
        self.out.rule(f"[bold]{self.number}. {result.title}[/]", align="left")
        self.out.print(f"[dim]shows: {result.shows}[/]")
        getattr(self, f"_{result.key}")(result.facts)
        self._checks(result.checks)

    # -- the steps ------------------------------------------------------------------

    def _import(self, facts: dict[str, Any]) -> None:
        self.out.print(f"Imported {facts['imported']} of {facts['lines']} lines of "
                       f"{facts['file']} (--skip-invalid: the valid lines, the others "
                       "reported).")
        for error in facts["refused"]:
            where = f"line {error['line']}" + (f", field {error['field']}" if error["field"]
                                               else "")
            self.out.print(f"  [red]refused[/] {where}: {error['message']}")
        table = Table(title="newsletter: who may be mailed, and why", title_justify="left")
        for column in ("address", "who", "eligible", "the policy's reason"):
            table.add_column(column, overflow="fold")
        for person in facts["people"]:
            eligible = "[green]yes[/]" if person["eligible"] else "[red]no[/]"
            table.add_row(person["email"], person["who"], eligible, person["reason"])
        self.out.print(table)

    def _sync(self, facts: dict[str, Any]) -> None:
        run = facts["run"]
        self.out.print(f"Sync run {run['outcome']}: {run['added']} added, {run['parked']} "
                       f"parked, {run['write_calls']} write calls to Mailchimp.")
        table = Table(title="who was pushed, and why", title_justify="left")
        for column in ("address", "outcome", "why"):
            table.add_column(column, overflow="fold")
        for person in facts["people"]:
            colour = ("green" if person["outcome"].startswith("pushed")
                      else "yellow" if person["outcome"] == "parked" else "dim")
            table.add_row(person["email"], f"[{colour}]{person['outcome']}[/]", person["why"])
        self.out.print(table)
        self._audience(facts["audience"], "the emulator's audience (Mailchimp's side)")

    def _existing(self, facts: dict[str, Any]) -> None:
        pull, audit, sync = facts["pull"], facts["audit"], facts["sync"]
        self.out.print(f"Audience pull: {pull['seen']} members read in {pull['read_calls']} "
                       f"pages, {pull['matched']} match a CRM contact, {pull['unmatched']} "
                       "match none (counted, not written).")
        self.out.print("Audit: " + ", ".join(f"{name} {n}" for name, n in audit.items()))
        self.out.print(f"Sync run {sync['outcome']}: {sync['unsubscribed']} unsubscribed, "
                       f"{sync['reconsent_pending']} re-consent sent as pending.")
        for email, status in facts["after"].items():
            self.out.print(f"  {email}: {status}")

    def _audience(self, members: list[dict[str, Any]], title: str) -> None:
        table = Table(title=title, title_justify="left")
        for column in ("address", "status", "tags"):
            table.add_column(column)
        for member in members:
            table.add_row(member["email"], member["status"], ", ".join(member.get("tags", [])))
        self.out.print(table)

    def _unsubscribe(self, facts: dict[str, Any]) -> None:
        hook = facts["webhook"]
        self.out.print(f"Webhook {'registered' if hook['created'] else 'updated'} through "
                       f"`syncd webhooks register`'s code: {hook['url']} (the secret masked); "
                       f"events {', '.join(hook['events'])}; sources {', '.join(hook['sources'])}"
                       " (api off: syncd's own writes do not echo back).")
        self.out.print(f"{facts['person']} clicks \"unsubscribe\" in a Mailchimp mail; "
                       "Mailchimp POSTs its unsubscribe webhook to the service.")
        status = ", ".join(str(s) for s in facts["http_status"])
        server = facts["ms_server_purge"]
        self.out.print(f"  answered HTTP {status} after [bold]{facts['ms_send_to_2xx']} ms[/] "
                       "(send to 2xx, the purge committed before the answer)"
                       + (f"; server-side purge {server} ms" if server is not None else ""))
        self.out.print(f"  internal lists before: {', '.join(facts['lists_before']) or '-'}")
        self.out.print(f"  internal lists after:  {', '.join(facts['lists_after']) or '-'}")
        blocks = ", ".join(f"{b['purpose']} ({b['reason']})" for b in facts["suppressions"])
        self.out.print(f"  suppression: {blocks or 'none'} (kept as a keyed hash)")
        self.out.print(f"  newsletter now: {facts['reason_after']}")
        self.out.print(f"  at Mailchimp: {facts['mailchimp_status']}")

    def _resync(self, facts: dict[str, Any]) -> None:
        first, second = facts["first"], facts["second"]
        writes = ", ".join(f"{k} x{v}" for k, v in sorted(first["writes"].items())) or "none"
        self.out.print(f"Re-sync: {first['added']} added, {first['unsubscribed']} unsubscribe "
                       f"confirmed at Mailchimp; writes: {writes}.")
        self._audience(facts["audience"], "the audience after the re-sync")
        self.out.print(f"Re-sync with nothing changed: {second['mailchimp_writes']} write "
                       "calls reached Mailchimp.")

    def _signup(self, facts: dict[str, Any]) -> None:
        self.out.print(f"{facts['person']} fills in the form at /signup: HTTP "
                       f"{facts['form_status']}; mails caught by the local SMTP sink: "
                       f"{', '.join(facts['mails'])}.")
        self.out.print(f"  opening {facts['confirm_link']} (as a mail scanner would): ledger "
                       f"{', '.join(facts['after_get'])}; the button: "
                       f"{', '.join(facts['after_post'])}")
        self.out.print(f"  after the sync, at Mailchimp: {facts['mailchimp_after_confirm']} "
                       f"(timestamp_opt {facts['timestamp_opt']})")
        self.out.print(f"  unticked on the preference page: internal lists now "
                       f"{', '.join(facts['lists_after_withdrawal']) or '-'}; after the next "
                       f"sync, at Mailchimp: {facts['mailchimp_final']}")

    def _targets(self, facts: dict[str, Any]) -> None:
        run = facts["offers_run"]
        self.out.print(f"Sync of the offers target (soft opt-in basis): {run['outcome']}, "
                       f"{run['added']} added, {run['write_calls']} write calls. Both "
                       "audiences read back with GET /lists/{id}/members:", markup=False)
        table = Table(title="who reaches which target, and why", title_justify="left")
        for column in ("address", f"newsletter {facts['newsletter_audience']}",
                       f"offers {facts['offers_audience']}", "offers: the policy's reason"):
            table.add_column(column, overflow="fold")
        for person in facts["people"]:
            permission = {True: ", Email on", False: ", Email off", None: ""}[
                person["permission"]]
            tags = f" ({', '.join(person['tags'])})" if person["tags"] else ""
            table.add_row(person["email"], person["newsletter"] + permission,
                          person["offers"] + tags, person["offers_reason"])
        self.out.print(table)

    def _checks(self, found: list[Check]) -> None:
        for check in found:
            detail = f" [dim]({check.detail})[/]" if check.detail and not check.passed else ""
            self.out.print(f"  {MARK[check.passed]} {check.name}{detail}")

    def summary(self, report: DemoReport) -> None:
        self.out.print()
        total = sum(len(s.checks) for s in report.steps)
        if report.ok:
            self.out.print(f"[bold green]All {total} checks passed[/] in "
                           f"{report.seconds:.1f} s: every step behaved as the rules say.")
            if report.kept:
                self.out.print(f"The database is kept in {report.directory}; look around "
                               f"with: syncd --config {report.directory}/syncd.toml "
                               "contacts list")
            return
        if report.error:
            self.out.print(f"[bold red]The demo stopped:[/] {report.error}")
        for step, check in report.failed_checks():
            self.out.print(f"[bold red]FAILED[/] step {step}: {check.name}"
                           + (f" ({check.detail})" if check.detail else ""))


def report_json(report: DemoReport) -> str:
    import json

    return json.dumps(report.as_dict(), indent=2, sort_keys=True, default=str)
