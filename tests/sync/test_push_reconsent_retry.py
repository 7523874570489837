"""A re-consent sent again after a crash, through the sync run against the emulator on both
databases: when the earlier `pending` never reached Mailchimp (the member is still
unsubscribed there), the confirmation is requested now, once."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import select

from mailchimp_emulator import MailchimpEmulator
from syncd.clock import utcnow
from syncd.consent.policy import Action
from syncd.context import AppContext
from syncd.db import transaction
from syncd.schema import PushState
from syncd.sync.run import run_sync
from tests.builders import add_contact, at, confirmed
from tests.webhooks.emulated import emulated_context  # noqa: F401 - fixture

ADA = "ada@example.org"


@pytest.fixture
def ctx(emulated_context: AppContext) -> AppContext:  # noqa: F811 - the fixture above
    return emulated_context


def test_a_re_consent_whose_earlier_attempt_never_landed_is_requested_now(
        ctx: AppContext, emulator: MailchimpEmulator) -> None:
    add_contact(ctx, ADA, events=confirmed())
    run_sync(ctx)
    add_contact(ctx, ADA, events=[("newsletter", Action.WITHDRAWN, at(5))])
    run_sync(ctx)  # unsubscribed at Mailchimp
    time.sleep(1.0)  # Mailchimp's timestamp_opt holds whole seconds: a later second
    moment = utcnow()
    add_contact(ctx, ADA, events=[("newsletter", Action.GIVEN, moment),
                                  ("newsletter", Action.CONFIRMED,
                                   moment + timedelta(microseconds=1))])
    # A run before the crash marked the `pending` as attempted; it never reached Mailchimp.
    with transaction(ctx.sessions) as session:
        state = session.scalars(select(PushState)).one()
        state.attempt_fingerprint = "f" * 64

    run_sync(ctx)

    member = emulator.member(ADA)
    assert member is not None
    assert (member["status"], emulator.confirmation_mails_sent(ADA)) == ("pending", 1)
