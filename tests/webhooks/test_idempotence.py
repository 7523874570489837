"""I5: a duplicate delivery, serial or concurrent, changes the state once."""

from __future__ import annotations

import threading
from urllib.parse import parse_qsl, urlencode

from sqlalchemy import func, select

from syncd.context import AppContext
from syncd.db import transaction
from syncd.schema import AuditEntry, ConsentEvent, Suppression
from syncd.webhooks.inbox import dedupe_key
from syncd.webhooks.mailchimp_form import parse_body
from tests.builders import add_contact, confirmed
from tests.conftest import fixture_body
from tests.webhooks.conftest import Served, inbox_rows
from tests.webhooks.snapshot import person, suppressions

ADA = "ada.lovelace@example.com"


def _counts(ctx: AppContext) -> tuple[int, int, int]:
    with transaction(ctx.sessions) as session:
        return (session.scalar(select(func.count()).select_from(ConsentEvent)) or 0,
                session.scalar(select(func.count()).select_from(Suppression)) or 0,
                session.scalar(select(func.count()).select_from(AuditEntry)) or 0)


def test_serial_duplicates_change_state_once(served: Served, app_context: AppContext) -> None:
    add_contact(app_context, ADA, events=confirmed(), lists=["newsletter-nl", "offers"])
    first = served.deliver("unsubscribe.form")
    after_once = (person(app_context, ADA), _counts(app_context))
    answers = [served.deliver("unsubscribe.form").text.strip() for _ in range(3)]
    assert first.text.strip() == "applied"
    assert answers == ["duplicate"] * 3
    assert (person(app_context, ADA), _counts(app_context)) == after_once
    assert len(inbox_rows(app_context)) == 1


def test_replay_with_reordered_keys_is_the_same_event(served: Served,
                                                      app_context: AppContext) -> None:
    add_contact(app_context, ADA, events=confirmed(), lists=["newsletter-nl"])
    body = fixture_body("unsubscribe.form")
    reordered = urlencode(list(reversed(parse_qsl(body.decode())))).encode()
    assert dedupe_key(parse_body(reordered)) == dedupe_key(parse_body(body))
    served.post(body)
    assert served.post(reordered).text.strip() == "duplicate"
    assert len(person(app_context, ADA).withdrawals) == 1


def test_a_later_unsubscribe_of_the_same_person_is_a_new_event(
        served: Served, app_context: AppContext) -> None:
    body = fixture_body("unsubscribe.form")
    later = body.replace(b"fired_at=2026-03-04+13", b"fired_at=2026-05-04+13")
    assert dedupe_key(parse_body(later)) != dedupe_key(parse_body(body))
    served.post(body)
    assert served.post(later).text.strip() != "duplicate"
    assert len(inbox_rows(app_context)) == 2


def test_concurrent_duplicates_change_state_once(served: Served,
                                                 app_context: AppContext) -> None:
    add_contact(app_context, ADA, events=confirmed(), lists=["newsletter-nl", "newsletter-en"])
    start = threading.Barrier(16)
    answers: list[str] = []
    lock = threading.Lock()

    def deliver() -> None:
        start.wait()
        response = served.deliver("unsubscribe.form")
        with lock:
            answers.append(f"{response.status_code} {response.text.strip()}")

    threads = [threading.Thread(target=deliver) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == ["200 applied"] + ["200 duplicate"] * 15
    state = person(app_context, ADA)
    assert len(state.withdrawals) == 1
    assert state.lists == ()
    assert len(suppressions(app_context, ADA)) == 1
    assert len(inbox_rows(app_context)) == 1


def test_concurrent_distinct_unsubscribes_all_apply(served: Served,
                                                    app_context: AppContext) -> None:
    people = [f"person{i}@example.com" for i in range(12)]
    for email in people:
        add_contact(app_context, email, events=confirmed(), lists=["newsletter-nl"])
    start = threading.Barrier(len(people))
    statuses: list[int] = []

    def deliver(email: str) -> None:
        body = fixture_body("unsubscribe.form").replace(
            b"ada.lovelace%40example.com", email.replace("@", "%40").encode())
        start.wait()
        statuses.append(served.post(body).status_code)

    threads = [threading.Thread(target=deliver, args=(e,)) for e in people]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * len(people)
    for email in people:
        assert person(app_context, email).lists == ()
        assert "newsletter" in suppressions(app_context, email)
