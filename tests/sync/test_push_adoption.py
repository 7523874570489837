"""What the push does when an add finds the member already at Mailchimp and the member is
erased since, or differs, by the time syncd reads it: through the sync run against the
emulator (its request hooks play the other writer), on both databases."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mailchimp_emulator import MailchimpEmulator
from syncd.addresses import subscriber_hash
from syncd.context import AppContext
from syncd.esp.errors import EspTransientError
from syncd.sync.run import run_sync
from tests.builders import add_contact, confirmed, push_state
from tests.conftest import opened
from tests.sync.conftest import sync_settings

ADA = "ada@example.org"
BATCH_PATH = r"^POST /3\.0/lists/[^/]+$"
READ_PATH = r"^GET /3\.0/lists/[^/]+/members/"


@pytest.fixture
def ctx(database_url: str, emulator: MailchimpEmulator) -> Iterator[AppContext]:
    with opened(sync_settings(database_url, emulator, mailchimp_max_retries=1)) as context:
        yield context


def _unconfirmed_add(ctx: AppContext, emu: MailchimpEmulator) -> None:
    """An add sent and never confirmed (its batch failed), whose member is at Mailchimp."""
    add_contact(ctx, ADA, events=confirmed(), first_name="Ada", lists=["newsletter-nl"])

    def refuse(_request: object) -> None:
        raise RuntimeError("injected")  # the emulator answers 500

    emu.set_hook(refuse, match=BATCH_PATH)
    with pytest.raises(EspTransientError):
        run_sync(ctx)
    emu.clear_faults()
    emu.seed_member(ADA, "subscribed")


def _delete_on_read(emu: MailchimpEmulator) -> None:
    def delete(_request: object) -> None:
        emu.state.delete_permanent(subscriber_hash(ADA))  # erased by someone else

    emu.set_hook(delete, match=READ_PATH, times=1)


def test_an_own_unconfirmed_add_that_vanishes_while_adopted_is_not_settled_as_ours(
        ctx: AppContext, emulator: MailchimpEmulator) -> None:
    _unconfirmed_add(ctx, emulator)
    _delete_on_read(emulator)

    vanished = run_sync(ctx)
    unsettled = push_state(ctx).settled_revision
    again = run_sync(ctx)

    assert (vanished.failed, vanished.adopted, unsettled) == (1, 0, 0)
    # Tried again: Mailchimp refuses to re-add an erased address, so it is parked.
    assert (again.added, again.adopted, again.parked, emulator.member(ADA)) == (0, 0, 1, None)


def test_an_own_unconfirmed_add_whose_data_changed_since_is_adopted_with_the_new_data(
        ctx: AppContext, emulator: MailchimpEmulator) -> None:
    _unconfirmed_add(ctx, emulator)
    add_contact(ctx, ADA, first_name="Augusta")  # the CRM changed it after the lost add

    report = run_sync(ctx)

    member = emulator.member(ADA)
    assert member is not None
    assert (report.adopted, member["merge_fields"]["FNAME"]) == (1, "Augusta")
    assert [t["name"] for t in member["tags"]] == ["newsletter-nl"]
    assert (member["status"], emulator.confirmation_mails_sent(ADA)) == ("subscribed", 0)
    assert push_state(ctx).settled_revision > 0


def test_a_member_from_before_syncd_that_vanishes_before_it_is_read_is_not_settled(
        ctx: AppContext, emulator: MailchimpEmulator) -> None:
    run_sync(ctx)  # the first run's audience pull: the member below arrives after it
    emulator.seed_member(ADA, "subscribed")
    add_contact(ctx, ADA, events=confirmed(), lists=["newsletter-nl"])
    _delete_on_read(emulator)

    vanished = run_sync(ctx)
    unsettled = push_state(ctx).settled_revision
    again = run_sync(ctx)

    assert (vanished.failed, vanished.adopted, unsettled) == (1, 0, 0)
    assert (again.added, again.adopted, again.parked, emulator.member(ADA)) == (0, 0, 1, None)
