"""What each step of the demo must find, as pure functions of the state the step read.

Each step reads the real state (the emulator's audience, the database) into one of the
snapshots below and hands it to its check function; the demo passes only if every check
does. Pure, so a test can hand a check a manipulated state (a withdrawn person in the
audience, say) and see it fail."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from syncd.crm.import_format import PRECHECKED_MESSAGE
from syncd.demo.cast import CAST, PRETICKED, REFUSED_BY_MAILCHIMP, UNSUBSCRIBER, Example

NEWSLETTER_LISTS = ("newsletter-nl", "newsletter-en")


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "detail": self.detail}


def _check(name: str, passed: bool, detail: str = "") -> Check:
    return Check(name, bool(passed), detail)


# -- step 1: import -----------------------------------------------------------------


@dataclass(frozen=True)
class Eligibility:
    eligible: bool
    standing: str
    reason: str
    lists: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImportState:
    applied: bool
    lines: int
    valid: int
    invalid: int
    errors: Sequence[tuple[int, str | None, str]]  # (line, field, message)
    line_of: Mapping[str, int]  # sample address -> its line number
    contacts: Mapping[str, Eligibility]  # every contact in the database, by address
    consent_events: Mapping[str, int]  # stored consent events per address


def check_import(state: ImportState, cast: Sequence[Example] = CAST) -> list[Check]:
    checks = [
        _check("every valid line imported, the pre-ticked one refused (--skip-invalid)",
               state.applied and state.invalid == 1 and state.valid == state.lines - 1,
               f"{state.valid} of {state.lines} lines imported, {state.invalid} refused"),
    ]
    line = state.line_of.get(PRETICKED.email)
    refusal = [e for e in state.errors if e[0] == line and (e[1] or "").endswith(".prechecked")]
    checks.append(_check(
        "the pre-ticked box is refused with the Planet49 reason",
        bool(refusal) and all(message == PRECHECKED_MESSAGE for _, _, message in refusal),
        "; ".join(f"line {ln}, field {fld}: {msg}" for ln, fld, msg in refusal) or "no error"))
    checks.append(_check(
        "nothing of the refused line is stored (no contact, no consent)",
        PRETICKED.email not in state.contacts and not state.consent_events.get(PRETICKED.email),
        "the address is not in the database" if PRETICKED.email not in state.contacts
        else "the refused line was stored"))
    for example in cast:
        if example.standing is None:
            continue
        found = state.contacts.get(example.email)
        if found is None:
            checks.append(_check(f"{example.email}: imported", False, "not in the database"))
            continue
        checks.append(_check(
            f"{example.email}: newsletter standing {example.standing} "
            f"({'eligible' if example.eligible else 'not eligible'})",
            found.standing == example.standing and found.eligible == example.eligible,
            found.reason))
    return checks


# -- step 2: first sync -------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    status: str
    tags: tuple[str, ...] = ()
    timestamp_opt: str = ""


@dataclass(frozen=True)
class SyncState:
    report: Mapping[str, Any]  # SyncReport.to_dict()
    audience: Mapping[str, Member]  # the emulator's members, by address
    parked: Mapping[str, str]  # push_state.parked_reason, by address


def _of_cast(audience: Mapping[str, Member], cast: Sequence[Example]) -> dict[str, Member]:
    """The sample CRM's people in the audience (it also has a member from before syncd,
    in no CRM: step 5 is about it)."""
    people = {e.email for e in cast}
    return {email: m for email, m in audience.items() if email in people}


def check_first_sync(state: SyncState, cast: Sequence[Example] = CAST) -> list[Check]:
    expected = {e.email for e in cast if e.pushed == "subscribed"}
    ours = _of_cast(state.audience, cast)
    subscribed = {email for email, m in ours.items() if m.status == "subscribed"}
    checks = [_check(
        "exactly the confirmed subscribers are in the audience",
        subscribed == expected and set(ours) == expected,
        "audience: " + (", ".join(f"{e} ({m.status})" for e, m in sorted(state.audience.items()))
                        or "empty"))]
    for example in cast:
        if example.pushed in ("no", "refused at import"):
            member = state.audience.get(example.email)
            checks.append(_check(
                f"{example.email} ({example.rule.split(':')[0]}) is not in the audience",
                member is None, f"found as {member.status}" if member else "not sent"))
    for example in cast:
        if example.pushed != "subscribed":
            continue
        member = state.audience.get(example.email)
        want = tuple(sorted(n for n in example.lists if n in NEWSLETTER_LISTS))
        checks.append(_check(
            f"{example.email}: tags mirror the newsletter lists {', '.join(want)}; "
            "opt-in proof sent",
            member is not None and tuple(sorted(member.tags)) == want
            and bool(member.timestamp_opt),
            f"tags {list(member.tags)}, timestamp_opt {member.timestamp_opt or 'missing'}"
            if member else "not in the audience"))
    refused = REFUSED_BY_MAILCHIMP.email
    reason = state.parked.get(refused, "")
    checks.append(_check(
        f"{refused} is parked with Mailchimp's reason and not in the audience",
        refused not in state.audience and "fake or invalid" in reason,
        reason or "not parked"))
    report = state.report
    checks.append(_check(
        "the run reports 2 added, 1 parked, nothing failed",
        report.get("added") == len(expected) and report.get("parked") == 1
        and report.get("failed") == 0 and report.get("outcome") == "succeeded",
        f"outcome {report.get('outcome')}: added {report.get('added')}, parked "
        f"{report.get('parked')}, failed {report.get('failed')}, write calls "
        f"{report.get('write_calls')}"))
    return checks


# -- step 3: unsubscribe webhook and purge ------------------------------------------


@dataclass(frozen=True)
class PurgeState:
    registered: bool  # the webhook exists at Mailchimp and points at the service
    api_source_off: bool
    validated: bool  # Mailchimp's GET check of the URL answered 200 at registration
    deliveries: Sequence[int | None]  # HTTP status of each delivery of the unsubscribe
    lists_before: tuple[str, ...]
    lists_after: tuple[str, ...]
    suppressions: Sequence[tuple[str, str]]  # (purpose, reason) for the address
    withdrawal_recorded: bool  # a withdrawn event from the webhook in the ledger
    inbox_status: str | None  # the stored event's status
    esp_status: str | None  # the member's status at Mailchimp
    eligible_after: bool
    seconds_to_2xx: float = 0.0
    server_purge_seconds: float | None = None


def check_purge(state: PurgeState) -> list[Check]:
    before_news = [n for n in state.lists_before if n in NEWSLETTER_LISTS]
    after_news = [n for n in state.lists_after if n in NEWSLETTER_LISTS]
    others_kept = [n for n in state.lists_before if n not in NEWSLETTER_LISTS]
    return [
        _check("the webhook is registered at the service's URL (Mailchimp's GET check "
               "passed), source api off",
               state.registered and state.validated and state.api_source_off),
        _check("Mailchimp's unsubscribe webhook was answered 2xx, once",
               len(state.deliveries) == 1
               and all(s is not None and 200 <= s < 300 for s in state.deliveries),
               f"HTTP {', '.join(str(s) for s in state.deliveries) or 'nothing sent'}"),
        # Nothing else applies inbox events in the demo (the scheduler is off): applied
        # when the 2xx arrived means applied by the delivery itself, before its answer.
        _check("the delivery itself stored and applied the event before its 2xx",
               state.inbox_status == "applied", f"inbox status {state.inbox_status}"),
        _check("off every newsletter list at once",
               bool(before_news) and not after_news,
               f"before {list(state.lists_before)}, after {list(state.lists_after)}"),
        _check("other purposes untouched (one consent per purpose)",
               all(n in state.lists_after for n in others_kept),
               f"kept {others_kept}"),
        _check("withdrawal recorded in the consent ledger (append-only)",
               state.withdrawal_recorded),
        _check("suppression entry for the newsletter (keyed hash of the address)",
               any(p == "newsletter" for p, _ in state.suppressions),
               ", ".join(f"{p} ({r})" for p, r in state.suppressions) or "none"),
        _check("no longer eligible for the newsletter", not state.eligible_after),
        _check("Mailchimp has the member unsubscribed", state.esp_status == "unsubscribed",
               f"status {state.esp_status}"),
    ]


# -- step 4: re-sync ----------------------------------------------------------------


@dataclass(frozen=True)
class ResyncState:
    first: Mapping[str, Any]  # report of the re-sync after the webhook
    resubscribe_writes: int  # writes that would (re)subscribe the person who left
    esp_status_after: str | None  # the person at Mailchimp after the re-sync
    audience_after: Mapping[str, Member]
    second: Mapping[str, Any]  # report of a re-sync with nothing changed
    second_esp_writes: int  # write calls the emulator counted during it
    writes_first: Mapping[str, int] = field(default_factory=dict)


def check_resync(state: ResyncState, cast: Sequence[Example] = CAST) -> list[Check]:
    person = UNSUBSCRIBER.email
    still = {e.email for e in cast if e.pushed == "subscribed" and e is not UNSUBSCRIBER}
    subscribed = {email for email, m in _of_cast(state.audience_after, cast).items()
                  if m.status == "subscribed"}
    return [
        _check(f"{person} is not re-added: no write subscribes or re-confirms them",
               state.resubscribe_writes == 0 and state.first.get("added") == 0
               and state.first.get("reconsent_pending") == 0,
               f"{state.resubscribe_writes} re-subscribe writes; added "
               f"{state.first.get('added')}, re-consent {state.first.get('reconsent_pending')}"),
        _check(f"{person} stays unsubscribed at Mailchimp",
               state.esp_status_after == "unsubscribed", f"status {state.esp_status_after}"),
        _check("the audience is the remaining confirmed subscribers",
               subscribed == still, ", ".join(sorted(subscribed)) or "nobody"),
        _check("the re-sync succeeded, nothing parked again, nothing failed",
               state.first.get("outcome") == "succeeded" and state.first.get("failed") == 0
               and state.first.get("parked") == 0,
               f"outcome {state.first.get('outcome')}"),
        _check("a re-sync with nothing changed makes zero write calls",
               state.second_esp_writes == 0 and state.second.get("write_calls") == 0
               and state.second.get("outcome") == "succeeded",
               f"Mailchimp counted {state.second_esp_writes} writes; syncd reports "
               f"{state.second.get('write_calls')}"),
    ]
