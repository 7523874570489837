"""The retry of failed webhook events, for the cases test_durability.py leaves open, over
HTTP through the real endpoint: an event whose raw body was forgotten by an erasure is
parked on retry (there is nothing left to apply), never retried forever."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from syncd.context import AppContext
from syncd.crm.erasure import erase_contact
from syncd.store import contacts
from syncd.webhooks.inbox import retry_pending
from tests.builders import add_contact, confirmed
from tests.webhooks.conftest import Served, inbox_rows

ADA = "ada.lovelace@example.com"


@pytest.fixture
def broken_purge_step(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """A bug in the last step of the purge (the revision bump, on both databases' paths):
    the event is kept as failed."""

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("purge broke")

    monkeypatch.setattr(contacts, "bump_revision", broken)
    return monkeypatch.undo


def test_a_failed_event_whose_body_an_erasure_forgot_is_parked_on_retry(
        served: Served, app_context: AppContext, broken_purge_step: Callable[[], None]) -> None:
    add_contact(app_context, ADA, events=confirmed(), lists=["newsletter-nl"])
    served.deliver("unsubscribe.form")
    broken_purge_step()  # the bug is fixed
    erase_contact(app_context, ADA, actor="test")

    applied = retry_pending(app_context)

    [row] = inbox_rows(app_context)
    assert applied == 0
    assert (row.status, row.body) == ("parked", None)
    assert "raw body no longer kept" in (row.last_error or "")
    assert retry_pending(app_context) == 0  # parked: not tried again
