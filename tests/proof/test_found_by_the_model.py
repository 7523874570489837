"""Sequences the model (tests/proof/model.py) found breaking an invariant, kept as
fixed regressions: each drives the same machine by hand, with its checks."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from syncd.crm import store
from syncd.db import transaction
from syncd.esp.errors import EspError
from syncd.sync.run import run_sync
from tests.proof.model import MODEL_SETTINGS, checked_model
from tests.proof.world import World

ANN, BOB, EVE = "ann@example.org", "bob@example.org", "eve@example.org"
CLEO, DIRK = "cleo@example.org", "dirk@example.org"
BATCH = r"^POST /3\.0/lists/[^/]+$"


def test_erasure_after_an_abuse_complaint_still_blocks_stale_data(world: World) -> None:
    """I10: the abuse complaint's "*" suppression kept its old date under the unique key,
    so the erasure's entry was never written and a re-import passed the policy."""
    model = checked_model(world)()
    model.import_confirmed(ANN, "Ann")
    model.sync()
    model.unsubscribe(ANN, abuse=True)
    model.rename(ANN, BOB)  # the old address is free at Mailchimp again
    model.import_confirmed(ANN, "Ann")  # a new consent after the complaint: fine
    model.erase(ANN)
    model.import_confirmed(ANN, "Ann")  # stale CRM data from before the erasure

    model.sync()  # checks I1/I10 on every member that became live

    assert ANN not in world.statuses()


def test_withdrawal_after_an_unconfirmed_add_reaches_the_esp(database_url: str,
                                                             tmp_path: Path) -> None:
    """I8 / rule 5: an add that timed out but landed left push_state without a status;
    a withdrawal before the next run was then settled without an unsubscribe, and the
    person stayed subscribed at Mailchimp."""
    world = World(database_url, tmp_path, mailchimp_timeout_seconds=0.3,
                  mailchimp_max_retries=0)
    try:
        model = checked_model(world)()
        model.import_confirmed(ANN, "Ann")
        world.emu.inject_fault("slow", count=1, seconds=0.6, match=BATCH)
        with pytest.raises(EspError):
            run_sync(world.ctx)  # timed out; Mailchimp applies the add after all
        deadline = time.monotonic() + 5
        while world.statuses().get(ANN) != "subscribed" and time.monotonic() < deadline:
            time.sleep(0.05)
        world.clear_faults()
        model.withdraw(ANN)

        model.sync()

        assert world.statuses()[ANN] == "unsubscribed"
    finally:
        world.close()


def test_withdrawal_after_a_timed_out_reconsent_unsubscribes_the_pending_member(
        database_url: str, tmp_path: Path) -> None:
    """I1 / I11 (rule 6): a re-consent's `pending` timed out and landed after the run
    failed, so syncd still knew the member as unsubscribed (attempt marker set); a
    withdrawal before the next run was then settled without a call, and the person stayed
    `pending`: one click in Mailchimp's confirmation mail would subscribe them."""
    world = World(database_url, tmp_path, **MODEL_SETTINGS)
    try:
        model = checked_model(world)()
        model.import_confirmed(ANN, "Ann")
        model.sync()
        model.unsubscribe(ANN, abuse=False)
        model.import_confirmed(ANN, "Ann")  # a re-consent: `pending` is right, once
        model.timed_out_sync()  # the run fails; its `pending` lands all the same
        assert world.statuses()[ANN] == "pending"
        model.withdraw(ANN)

        model.sync()  # checks I8/I11: nobody live whom the target does not admit

        assert world.statuses()[ANN] == "unsubscribed"
    finally:
        world.close()


def test_a_member_renamed_onto_a_later_contacts_address_is_left_alone(world: World) -> None:
    """Not a syncd bug; the model's oracle was too strict (I8/I11 check): a person's
    address changed at Mailchimp with the `upemail` lost, then the CRM got an unconfirmed
    sign-up at the new address. The member there is one syncd never pushed for that
    contact, with no withdrawal: an audit finding, left alone (rule 12)."""
    model = checked_model(world)()
    model.import_confirmed(BOB, "Bob")
    model.sync()
    model.upemail_lost(BOB, EVE)
    model.import_unconfirmed(EVE)

    model.sync()  # checks I8/I11 with the model's exemptions

    assert world.statuses()[EVE] == "subscribed"
    assert world.writes.resubscribes() == []


def test_a_withdrawal_suppresses_an_old_address_another_person_has_taken_since(
        world: World) -> None:
    """Not a syncd bug; the model's oracle was too lax (I8 check): Bob's address changed
    to Ann's, then Eve's to Bob's old one, then Bob (now at Ann's) unsubscribed. syncd
    suppresses every address the person ever had (rule 5, I12), Bob's old one included,
    which Eve holds now: she is unsubscribed there too, and the oracle must expect it."""
    model = checked_model(world)()
    model.import_confirmed(BOB, "Bob")
    model.import_confirmed(EVE, "Eve")
    model.sync()
    model.rename(BOB, ANN)
    model.rename(EVE, BOB)
    model.unsubscribe(ANN, abuse=False)

    model.sync()  # checks I8/I11 against the oracle

    assert world.statuses()[BOB] == "unsubscribed"
    assert not model.eligible(BOB)  # the oracle agrees: Eve is blocked at Bob's old address


def _audience_before_syncd(model: Any) -> None:
    """The audience before syncd: Ann unsubscribed (a paying customer, as Bob), Dirk
    subscribed without consent, Eve signed up in the CRM only."""
    model.pre_existing_audience(
        plan=[("unsubscribed", "none"), ("absent", "none"), ("absent", "none"),
              ("subscribed", "none"), ("absent", "unconfirmed")],
        customers=["paid", "paid", "none", "none", "none"])


def test_a_rename_of_a_member_syncd_does_not_know_moves_no_contact(
        database_url: str, tmp_path: Path) -> None:
    """I1: Dirk's member (no CRM contact) moved to Cleo's address, Ann's contact to Dirk's
    old one, then Dirk's member on to Ann's old one. Resolving that last rename walked
    cleo -> ann (the rename itself) -> dirk (an older rename) and moved Ann's contact to
    her old address, where the offers target then added her as a new member."""
    world = World(database_url, tmp_path, two_targets=True, **MODEL_SETTINGS)
    try:
        model = checked_model(world)()
        _audience_before_syncd(model)
        model.rename(DIRK, CLEO)
        model.rename(ANN, DIRK)
        model.import_confirmed(DIRK, "Ann")
        model.rename(CLEO, ANN)

        model.timed_out_sync()  # checks I1 on every member that became live

        with transaction(world.ctx.sessions) as session:
            assert store.find_contact(session, DIRK) is not None  # Ann's stays where it was
            assert store.find_contact(session, ANN) is None
    finally:
        world.close()


@pytest.mark.xfail(strict=True, reason=(
    "open (2026-12-07): a member unsubscribed before syncd, renamed at Mailchimp after the "
    "person confirmed again in the CRM, is first seen by the reconciliation pull with the "
    "rename's last_changed; the pull dates the withdrawal there, after the confirmation, so "
    "the re-consent is blocked. Mailchimp gives no unsubscribe moment: the pull takes the "
    "latest one the member's data allows (the safe side), the model knows it was earlier"))
def test_a_rename_after_a_reconsent_does_not_date_an_old_unsubscribe_after_it(
        database_url: str, tmp_path: Path) -> None:
    world = World(database_url, tmp_path, two_targets=True, **MODEL_SETTINGS)
    try:
        model = checked_model(world)()
        _audience_before_syncd(model)
        model.rename(DIRK, CLEO)  # Dirk's address is free at Mailchimp
        model.rename(ANN, DIRK)
        model.import_confirmed(DIRK, "Ann")  # a new confirmed consent, after Mailchimp's
        model.rename(DIRK, ANN)
        model.timed_out_sync()  # the offers target adds the customer (it lands)
        model.reconcile()
        assert model.offers is not None

        model.unsubscribe(ANN, abuse=False, list_id=model.offers.audience_id)  # checks I3
    finally:
        world.close()
