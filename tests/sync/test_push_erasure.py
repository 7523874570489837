"""A contact erased while its add is in flight (the CRM's erasure runs between the call
and the checkpoint): the others of the batch are settled, the erased one leaves no member
state behind, and the run succeeds. Against the emulator (its request hook runs the
erasure during the call), on both databases."""

from __future__ import annotations

from sqlalchemy import select

from mailchimp_emulator import MailchimpEmulator
from syncd.context import AppContext
from syncd.crm.erasure import erase_contact
from syncd.db import transaction
from syncd.schema import PushState, RunOutcome
from syncd.sync.run import run_sync
from tests.builders import add_contact, confirmed
from tests.webhooks.emulated import emulated_context  # noqa: F401 - fixture

ADA = "ada@example.org"
ALAN = "alan@example.org"
BATCH_PATH = r"^POST /3\.0/lists/[^/]+$"


def test_a_contact_erased_while_its_add_is_in_flight_leaves_the_rest_of_the_batch_settled(
        emulated_context: AppContext, emulator: MailchimpEmulator) -> None:  # noqa: F811
    ctx = emulated_context
    ada = add_contact(ctx, ADA, events=confirmed(), lists=["newsletter-nl"])
    add_contact(ctx, ALAN, events=confirmed(), lists=["newsletter-nl"])

    def erase_alan(_request: object) -> None:
        erase_contact(ctx, ALAN, actor="test")

    emulator.set_hook(erase_alan, match=BATCH_PATH, times=1)
    report = run_sync(ctx)

    with transaction(ctx.sessions) as session:
        states = {row.contact_id: row.settled_revision
                  for row in session.scalars(select(PushState))}
    assert report.outcome == RunOutcome.SUCCEEDED
    assert list(states) == [ada]
    assert states[ada] > 0
