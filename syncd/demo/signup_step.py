"""The demo's sign-up step: consent at the source, through the service's real pages.

A person fills in the form; the confirmation mail lands in the local SMTP sink; opening
its link (what a mail scanner does) confirms nothing; the button does; the sync pushes
the member `subscribed` with the opt-in proof; the preference page withdrawal takes
them off the lists at once, mails a short confirmation, and the next sync unsubscribes
them at Mailchimp."""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any

import requests

from syncd.demo.checks import Check
from syncd.service.smtp_sender import SmtpSender
from syncd.signup.outbox import deliver_due
from syncd.store import status
from syncd.sync.run import run_sync

if TYPE_CHECKING:
    from syncd.demo.stage import Stage

PERSON = "new.reader@example.org"
LINK = re.compile(r"https?://[^\s\"<>]+/(confirm|preferences)/[A-Za-z0-9_.\-]+")
FORM = {"Content-Type": "application/x-www-form-urlencoded", "Accept-Language": "en"}


@dataclass(frozen=True)
class SignupState:
    form_status: int
    mails: list[str]  # subjects, in order
    get_status: int
    actions_after_get: list[str]
    post_status: int
    actions_after_post: list[str]
    pushed_status: str | None
    pushed_timestamp_opt: str
    withdraw_status: int
    lists_after_withdrawal: list[str]
    final_status: str | None


def check_signup(state: SignupState) -> list[Check]:
    return [
        Check("the form answers 200 and records the sign-up (given)",
              state.form_status == 200 and state.actions_after_get[:1] == ["given"]),
        Check("one confirmation mail reaches the mail server",
              state.mails[:1] == ["Please confirm your sign-up"], ", ".join(state.mails)),
        Check("opening the link (GET) confirms nothing (a mail scanner does this)",
              state.get_status == 200 and "confirmed" not in state.actions_after_get),
        Check("the button (POST) records the confirmation",
              state.post_status == 200 and state.actions_after_post == ["given", "confirmed"]),
        Check("the sync pushes the member subscribed with the opt-in time",
              state.pushed_status == "subscribed" and bool(state.pushed_timestamp_opt),
              str(state.pushed_status)),
        Check("unticking on the preference page takes them off the lists at once",
              state.withdraw_status == 200 and state.lists_after_withdrawal == []),
        Check("a short mail confirms the unsubscription",
              state.mails[1:] == ["You are unsubscribed"], ", ".join(state.mails)),
        Check("the next sync unsubscribes them at Mailchimp",
              state.final_status == "unsubscribed", str(state.final_status)),
    ]


def _link(message: EmailMessage, kind: str) -> str:
    part = message.get_body(preferencelist=("plain",))
    text = str(part.get_content()) if part is not None else ""
    for found in LINK.finditer(text):
        if found.group(1) == kind:
            return found.group(0)
    raise RuntimeError(f"no {kind} link in the mail")


def _actions(stage: Stage) -> list[str]:
    with stage.ctx.sessions() as session:
        return status.consent_actions_of(session, PERSON)


def _lists(stage: Stage) -> list[str]:
    from syncd.crm import store

    with stage.ctx.sessions() as session:
        contact = store.find_contact(session, PERSON)
        return store.list_names(session, contact.id) if contact else []


def _send(stage: Stage) -> None:
    deliver_due(stage.ctx, SmtpSender(stage.settings))


def run_signup(stage: Stage) -> tuple[SignupState, dict[str, Any]]:
    base = stage.service.base_url
    form = requests.post(base + "/signup", timeout=10, headers=FORM, data={
        "email": PERSON, "first_name": "Noor", "purposes": ["newsletter"],
        "text_version": "demo-form-1", "privacy_notice_version": "2026-01",
        "form_url": base + "/signup", "language": "en"})
    _send(stage)
    confirmation = stage.mail_sink.wait_for(1)[-1]
    link = _link(confirmation, "confirm")
    opened = requests.get(link, timeout=10, headers={"Accept-Language": "en"})
    after_get = _actions(stage)
    clicked = requests.post(link, timeout=10, headers={"Accept-Language": "en"})
    after_post = _actions(stage)
    run_sync(stage.ctx, target=stage.newsletter)
    member = stage.emulator.member(PERSON) or {}
    preferences = _link(confirmation, "preferences")
    withdrawn = requests.post(preferences, timeout=10, headers=FORM,
                              data={"language": "en"})
    lists_after = _lists(stage)
    _send(stage)
    stage.mail_sink.wait_for(2)
    run_sync(stage.ctx, target=stage.newsletter)
    final = stage.emulator.member(PERSON) or {}
    state = SignupState(
        form_status=form.status_code, mails=[str(m["Subject"]) for m in stage.mail_sink.messages],
        get_status=opened.status_code, actions_after_get=after_get,
        post_status=clicked.status_code, actions_after_post=after_post,
        pushed_status=member.get("status"), pushed_timestamp_opt=member.get("timestamp_opt") or "",
        withdraw_status=withdrawn.status_code, lists_after_withdrawal=lists_after,
        final_status=final.get("status"))
    facts = {"person": PERSON, "form_status": form.status_code, "mails": state.mails,
             "confirm_link": re.sub(r"/confirm/.*", "/confirm/<token>", link),
             "after_get": after_get, "after_post": after_post,
             "mailchimp_after_confirm": state.pushed_status,
             "timestamp_opt": state.pushed_timestamp_opt,
             "lists_after_withdrawal": lists_after, "mailchimp_final": state.final_status}
    return state, facts
