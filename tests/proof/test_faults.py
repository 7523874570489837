"""ESP faults at every stage of a run, and an unsubscribe arriving in the middle of one.

The sync owner's tests/sync/test_sync_faults.py covers each fault on the FIRST add
batches; here each fault hits the other stages: a middle batch, the member updates, the
unsubscribes, the tag calls and the reconciliation pull. Every case: the run (or a
re-run) converges, a further run sends nothing, and no write re-subscribed anyone (I2).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from mailchimp_emulator import RequestInfo
from syncd.consent.policy import Standing
from syncd.esp.errors import EspError
from syncd.inbound.reconcile import run_reconcile
from syncd.schema import SyncRun, WebhookEvent
from syncd.sync.run import SyncReport, run_sync
from tests.proof.world import World, at_text
from tests.webhooks.snapshot import person

KINDS = ("429", "403_bodyless", "500", "slow", "reset")
BATCH = r"^POST /3\.0/lists/[^/]+$"
EMAILS = [f"p{n:02d}@example.org" for n in range(7)]
# The client gives up on a call after TIMEOUT s; a `slow` fault answers after SLOW s
# (and the write lands anyway, as at Mailchimp).
TIMEOUT, SLOW = 0.3, 0.45


@pytest.fixture
def fworld(database_url: str, tmp_path: Path) -> Iterator[World]:
    built = World(database_url, tmp_path, mailchimp_timeout_seconds=TIMEOUT,
                  mailchimp_max_retries=4)
    yield built
    built.close()


def _import(world: World, emails: list[str], *, first_name: str = "A",
            lists: tuple[str, ...] = ("newsletter-nl",)) -> None:
    given = world.clock.advance(60)
    confirmed = world.clock.advance(60)
    world.import_lines([{"email": e, "first_name": first_name, "lists": list(lists),
                         "consents": [
                             {"purpose": "newsletter", "action": "given", "at": at_text(given)},
                             {"purpose": "newsletter", "action": "confirmed",
                              "at": at_text(confirmed)}]} for e in emails])


def _withdraw(world: World, emails: list[str]) -> None:
    moment = world.clock.advance(60)
    world.import_lines([{"email": e, "consents": [
        {"purpose": "newsletter", "action": "withdrawn", "at": at_text(moment)}]}
        for e in emails])


def _converge(world: World) -> list[SyncReport | None]:
    """Run until a run succeeds with nothing failed (at most 3), then once more."""
    reports: list[SyncReport | None] = []
    for _ in range(3):
        try:
            report: SyncReport | None = run_sync(world.ctx)
        except EspError:
            report = None
        reports.append(report)
        if report is not None and report.outcome == "succeeded" and not report.partial:
            break
    time.sleep(SLOW)  # a slow write still in flight lands before we look
    world.clear_faults()
    final = run_sync(world.ctx)
    assert (final.write_calls, final.failed, final.parked) == (0, 0, 0), final.counts()
    assert world.writes.resubscribes() == []
    return reports


def _middle_batch(world: World, kind: str) -> None:
    """Arm the fault from inside the first batch call: it hits a later batch."""
    def arm(_request: RequestInfo) -> None:
        world.emu.inject_fault(kind, count=2, match=BATCH, seconds=SLOW)  # type: ignore[arg-type]

    world.emu.set_hook(arm, match=BATCH, times=1)


@pytest.mark.parametrize("kind", KINDS)
def test_fault_on_a_middle_batch_converges(fworld: World, kind: str) -> None:
    _import(fworld, EMAILS)
    _middle_batch(fworld, kind)
    _converge(fworld)
    assert sorted(fworld.statuses()) == EMAILS
    assert set(fworld.statuses().values()) == {"subscribed"}


@pytest.mark.parametrize("kind", KINDS)
def test_fault_on_member_updates_converges(fworld: World, kind: str) -> None:
    _import(fworld, EMAILS)
    run_sync(fworld.ctx)
    _import(fworld, EMAILS, first_name="B")  # a data change: one PUT per member
    fworld.emu.inject_fault(kind, count=2, match=r"^PUT /3\.0/.*/members/",  # type: ignore[arg-type]
                            seconds=SLOW)
    _converge(fworld)
    assert {m["merge_fields"]["FNAME"] for m in fworld.emu.members()} == {"B"}
    assert set(fworld.statuses().values()) == {"subscribed"}


@pytest.mark.parametrize("kind", KINDS)
def test_fault_on_unsubscribes_converges(fworld: World, kind: str) -> None:
    _import(fworld, EMAILS)
    run_sync(fworld.ctx)
    _withdraw(fworld, EMAILS[:4])
    fworld.emu.inject_fault(kind, count=2, match=r"^PATCH /3\.0/.*/members/",  # type: ignore[arg-type]
                            seconds=SLOW)
    _converge(fworld)
    statuses = fworld.statuses()
    assert [statuses[e] for e in EMAILS] == ["unsubscribed"] * 4 + ["subscribed"] * 3


@pytest.mark.parametrize("kind", KINDS)
def test_fault_on_tag_calls_converges(fworld: World, kind: str) -> None:
    _import(fworld, EMAILS)
    run_sync(fworld.ctx)
    _import(fworld, EMAILS, lists=("newsletter-en",))  # a list change: tags only
    fworld.emu.inject_fault(kind, count=2, match=r"^POST /3\.0/.*/tags$",  # type: ignore[arg-type]
                            seconds=SLOW)
    _converge(fworld)
    assert {tuple(sorted(t["name"] for t in m["tags"])) for m in fworld.emu.members()} == {
        ("newsletter-en", "newsletter-nl")}


@pytest.mark.parametrize("kind", KINDS)
def test_fault_on_the_reconcile_pull_converges(fworld: World, kind: str) -> None:
    _import(fworld, EMAILS)
    run_sync(fworld.ctx)
    for email in EMAILS[:3]:
        fworld.clock.advance(60)
        fworld.emu.fire_unsubscribe(email, deliver=False)  # the webhooks were lost
    fworld.emu.inject_fault(kind, count=2, match=r"^GET /3\.0/.*/members",  # type: ignore[arg-type]
                            seconds=SLOW)
    with contextlib.suppress(EspError):  # failed: its cursor stays, the next one repeats
        run_reconcile(fworld.ctx)
    time.sleep(SLOW)
    fworld.clear_faults()
    again = run_reconcile(fworld.ctx)
    assert again.outcome == "succeeded"
    for email in EMAILS:
        assert (person(fworld.ctx, email).standing in (Standing.WITHDRAWN, Standing.SUPPRESSED)
                ) is (email in EMAILS[:3]), email
    follow = run_sync(fworld.ctx)  # at most a harmless repeat of the unsubscribes
    final = run_sync(fworld.ctx)
    assert (follow.added, follow.updated, follow.reconsent_pending) == (0, 0, 0)
    assert final.write_calls == 0
    assert [fworld.statuses()[e] for e in EMAILS] == ["unsubscribed"] * 3 + ["subscribed"] * 4
    assert fworld.writes.resubscribes() == []


# -- an unsubscribe in the middle of a sync --------------------------------------------


def _applied_at(world: World, email: str) -> float:
    mac = world.ctx.keyring.address_hmac(email)
    with world.ctx.sessions() as session:
        row = session.scalars(select(WebhookEvent).where(
            WebhookEvent.address_hmac == mac, WebhookEvent.kind == "unsubscribe",
            WebhookEvent.status == "applied")).one()
        return row.received_at.timestamp()


def _last_run_finished(world: World) -> float:
    with world.ctx.sessions() as session:
        finished = session.scalars(select(SyncRun.finished_at).where(SyncRun.kind == "sync")
                                   .order_by(SyncRun.id.desc())).first()
        assert finished is not None
        return finished.timestamp()


def _assert_out_for_good(world: World, email: str) -> None:
    state = person(world.ctx, email)
    assert state.standing in (Standing.WITHDRAWN, Standing.SUPPRESSED)
    assert not [n for n in state.lists if n.startswith("newsletter")]
    assert world.statuses()[email] == "unsubscribed"
    assert world.writes.resubscribes() == []


def test_unsubscribe_while_its_add_batch_is_in_flight(world: World) -> None:
    """The person's batch has been applied at Mailchimp and its answer is on its way;
    the run's other batches are held in flight (a barrier in the emulator) until the
    person's unsubscribe webhook, sent over real HTTP, has been answered."""
    _import(world, EMAILS)
    target = EMAILS[0]
    fired: list[object] = []
    delivered = threading.Event()

    def unsubscribe_once_added() -> None:
        deadline = time.monotonic() + 10
        while world.emu.member(target) is None and time.monotonic() < deadline:
            time.sleep(0.001)
        fired.extend(world.emu.fire_unsubscribe(target))  # real HTTP to the served app
        delivered.set()

    def barrier(request: RequestInfo) -> None:
        members = request.body.get("members", []) if isinstance(request.body, dict) else []
        if any(m.get("email_address") == target for m in members):
            threading.Thread(target=unsubscribe_once_added).start()
        else:
            delivered.wait(10)

    world.emu.set_hook(barrier, match=BATCH)
    first = run_sync(world.ctx)
    assert delivered.wait(10)
    world.clear_faults()
    assert [d.ok for d in fired] == [True]  # type: ignore[attr-defined]
    assert _applied_at(world, target) < _last_run_finished(world)  # during the run
    second = run_sync(world.ctx)
    third = run_sync(world.ctx)

    assert first.outcome == second.outcome == "succeeded"
    assert third.write_calls == 0
    _assert_out_for_good(world, target)
    assert all(world.statuses()[e] == "subscribed" for e in EMAILS[1:])


def test_unsubscribe_while_an_update_of_that_member_is_in_flight(world: World) -> None:
    """The person unsubscribes at Mailchimp while syncd's PATCH of their new name is on
    its way (the webhook is delivered and applied before Mailchimp handles the write)."""
    _import(world, EMAILS)
    run_sync(world.ctx)
    _import(world, EMAILS, first_name="B")
    target = EMAILS[2]
    fired: list[object] = []

    def unsubscribe_first(request: RequestInfo) -> None:
        body = request.body if isinstance(request.body, dict) else {}
        if body.get("email_address") == target and not fired:
            fired.extend(world.emu.fire_unsubscribe(target))

    world.emu.set_hook(unsubscribe_first, match=r"^(PUT|PATCH) /3\.0/.*/members/")
    run_sync(world.ctx)
    assert [d.ok for d in fired] == [True]  # type: ignore[attr-defined]
    run_sync(world.ctx)
    final = run_sync(world.ctx)

    assert final.write_calls == 0
    _assert_out_for_good(world, target)
