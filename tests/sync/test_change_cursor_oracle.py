"""The change cursor against its oracle, the full scan: over seeded random sequences of
what happens to contacts (CRM changes, imports of lists and withdrawals, sign-ups,
Mailchimp's webhooks for unsubscribes, profile edits, address changes and bounces, sync
runs that succeed, are interrupted, fail or only plan, audience pulls and
reconciliations), after every step the contacts the next run would read through the
cursor include every contact the full scan finds (syncd.store.candidates)."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import select

from mailchimp_emulator import MailchimpEmulator
from syncd.addresses import parse_address
from syncd.clock import utcnow
from syncd.consent.policy import Action
from syncd.context import AppContext
from syncd.crm import store
from syncd.db import transaction
from syncd.esp.errors import EspError
from syncd.esp.mailchimp import mailchimp_client
from syncd.inbound.reconcile import run_reconcile
from syncd.schema import InternalList
from syncd.signup.form import SignupInput
from syncd.signup.intake import Evidence, record_signup
from syncd.sync.audience_pull import run_pull
from syncd.sync.run import run_sync
from syncd.webhooks import registration
from tests.builders import (
    add_contact,
    at,
    change_first_name,
    confirm_now,
    confirmed,
    contact_by_email,
    withdraw_now,
)
from tests.conftest import TEST_WEBHOOK_SECRET, opened
from tests.sync.conftest import sync_settings
from tests.sync.test_change_cursor import narrowed, read_ids
from tests.webhooks.conftest import Served, served_for  # noqa: F401 - fixture

STEPS = 30
BATCH_ADD = r"^POST /3\.0/lists/[^/]+$"


@pytest.fixture
def ctx(database_url: str, emulator: MailchimpEmulator,
        served_for: Callable[[AppContext], Served]) -> Iterator[AppContext]:  # noqa: F811
    settings = sync_settings(database_url, emulator, mailchimp_max_retries=0,
                             sync_unsubscribe_floor=1)
    with opened(settings) as context:
        context.sync_lists()
        site = served_for(context)
        client = mailchimp_client(context.settings)
        try:
            registration.register(client, site.url(), [TEST_WEBHOOK_SECRET])
        finally:
            client.close()
        yield context


class World:
    """The random sequence's state: the addresses made so far, the step's randomness."""

    def __init__(self, ctx: AppContext, emulator: MailchimpEmulator, seed: int) -> None:
        self.ctx, self.emulator, self.rand = ctx, emulator, random.Random(seed)
        self.addresses: list[str] = []
        self.made = 0

    def new_address(self) -> str:
        self.made += 1
        address = f"p{self.made}@example.org"
        self.addresses.append(address)
        return address

    def some(self) -> str | None:
        """An address the CRM holds (an address change at Mailchimp may not be there)."""
        known = [a for a in self.addresses if contact_by_email(self.ctx, a) is not None]
        return self.rand.choice(known) if known else None

    def pushed(self) -> str | None:
        """A live member's address that the CRM holds."""
        live = [m["email_address"] for m in self.emulator.members()
                if m["status"] in ("subscribed", "pending")]
        known = [a for a in live if contact_by_email(self.ctx, a) is not None]
        return self.rand.choice(known) if known else None


def _add(w: World) -> None:
    events = w.rand.choice([confirmed(), [("newsletter", Action.GIVEN, at(1))], []])
    add_contact(w.ctx, w.new_address(), events=events,
                lists=w.rand.choice([["newsletter-nl"], [], ["offers"]]))


def _rename(w: World) -> None:
    if (address := w.some()) is not None:
        change_first_name(w.ctx, address, f"N{w.rand.randrange(1000)}")


def _withdraw(w: World) -> None:
    if (address := w.some()) is not None:
        withdraw_now(w.ctx, address)


def _confirm(w: World) -> None:
    if (address := w.some()) is not None:
        confirm_now(w.ctx, address)


def _join_list(w: World) -> None:
    if (address := w.some()) is None:
        return
    with transaction(w.ctx.sessions) as session:
        contact = store.find_contact(session, address)
        internal = session.scalars(select(InternalList).where(
            InternalList.name == "newsletter-en")).one()
        if contact is not None:
            store.add_to_list(session, contact, internal, actor="test", source="test")


def _signup(w: World) -> None:
    signup = SignupInput(address=parse_address(w.new_address()), purposes=("newsletter",),
                         text_version="v3", privacy_notice_version="2026-01")
    record_signup(w.ctx, signup, Evidence.of(utcnow(), "192.0.2.7", "test"),
                  channel="form", language="en")


def _webhook(w: World) -> None:
    if (address := w.pushed()) is None:
        return
    kind = w.rand.choice(["unsubscribe", "profile", "upemail", "cleaned"])
    if kind == "unsubscribe":
        w.emulator.fire_unsubscribe(address)
    elif kind == "profile":
        w.emulator.fire_profile(address, {"FNAME": f"M{w.rand.randrange(99)}"})
    elif kind == "upemail":
        w.emulator.fire_upemail(address, w.new_address())
    else:
        w.emulator.fire_cleaned(address)


def _unsubscribe_lost(w: World) -> None:
    """A webhook that never arrived: the reconciliation reads it."""
    if (address := w.pushed()) is not None:
        w.emulator.fire_unsubscribe(address, deliver=False)
    run_reconcile(w.ctx)


def _sync(w: World) -> None:
    run_sync(w.ctx, force=w.rand.random() < 0.3)


def _sync_interrupted(w: World) -> None:
    stop = threading.Event()
    stop.set()
    run_sync(w.ctx, stop=stop)


def _sync_dry(w: World) -> None:
    run_sync(w.ctx, dry_run=True)


def _sync_failing(w: World) -> None:
    w.emulator.inject_fault("500", count=None, match=BATCH_ADD)
    try:
        run_sync(w.ctx)
    except EspError:
        pass  # an add to send: the run failed
    finally:
        w.emulator.clear_faults()


def _sync_recent_signups(w: World) -> None:
    """Mailchimp refuses a new address for too many recent sign-ups: left for later."""
    address = w.new_address()
    add_contact(w.ctx, address, events=confirmed())
    w.emulator.configure(recent_signup_addresses=[address])
    try:
        run_sync(w.ctx)
    finally:
        w.emulator.configure(recent_signup_addresses=[])


def _sync_held(w: World) -> None:
    """Two withdrawals at once: more than the safety limit lets through unforced."""
    for _ in range(2):
        if (address := w.pushed()) is not None:
            withdraw_now(w.ctx, address)
    run_sync(w.ctx)


def _pull(w: World) -> None:
    """The audience read whole, after a change at Mailchimp whose webhook was lost."""
    if (address := w.pushed()) is not None:
        if w.rand.random() < 0.5:
            w.emulator.fire_upemail(address, w.new_address(), deliver=False)
        else:
            w.emulator.fire_unsubscribe(address, deliver=False)
    run_pull(w.ctx)


OPERATIONS: tuple[tuple[Callable[[World], None], int], ...] = (
    (_add, 5), (_rename, 3), (_withdraw, 2), (_confirm, 2), (_join_list, 1), (_signup, 1),
    (_webhook, 3), (_unsubscribe_lost, 1), (_sync, 5), (_sync_interrupted, 1),
    (_sync_dry, 1), (_sync_failing, 1), (_sync_recent_signups, 1), (_sync_held, 1),
    (_pull, 2))


@pytest.mark.parametrize("seed", [1, 2])
def test_the_cursor_reads_every_contact_the_full_scan_finds(
        ctx: AppContext, emulator: MailchimpEmulator, seed: int) -> None:
    world = World(ctx, emulator, seed)
    operations = [op for op, weight in OPERATIONS for _ in range(weight)]
    for _ in range(3):
        _add(world)
    run_sync(ctx)
    done: list[str] = []
    for _ in range(STEPS):
        operation = world.rand.choice(operations)
        operation(world)
        done.append(operation.__name__)
        full = read_ids(ctx, None)
        read = narrowed(ctx)
        through_cursor = full if read.ids is None else read_ids(ctx, read.ids)

        assert full <= through_cursor, (done, full - through_cursor)
