"""Load: 1,000 concurrent webhook deliveries (800 distinct unsubscribes, 200 duplicates of
them racing the first) from 50 clients over real HTTP, WHILE a sync adds 2,200 contacts
against an emulator with latency. Each person unsubscribes at the
emulator (its state changes) and the very body Mailchimp would send is POSTed. On both
databases: every event applied exactly once, none lost, no 5xx, and after the run and
the next one none of the 800 is subscribed at Mailchimp."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select

from mailchimp_emulator.webhook_delivery import encode
from syncd.schema import ConsentEvent, Suppression, WebhookEvent
from syncd.sync.run import SyncReport, run_sync
from tests.proof.world import World
from tests.service.conftest import seed_confirmed

CONTACTS, DISTINCT, DUPLICATES, CLIENTS = 3000, 800, 200, 50
FORM = {"Content-Type": "application/x-www-form-urlencoded", "User-Agent": "MailChimp.com"}


@pytest.fixture
def load_world(database_url: str, tmp_path: Path) -> Iterator[World]:
    built = World(database_url, tmp_path, mailchimp_batch_size=50, mailchimp_max_retries=6,
                  mailchimp_timeout_seconds=10)
    yield built
    built.close()


@pytest.mark.slow
def test_a_thousand_concurrent_webhooks_during_a_sync_apply_exactly_once(
        load_world: World, capsys: pytest.CaptureFixture[str]) -> None:
    world = load_world
    # 800 members syncd pushed earlier; then 2,200 new contacts, which the next run adds
    # while the 800 unsubscribe.
    targets = seed_confirmed(world.ctx, DISTINCT, prefix="old")
    run_sync(world.ctx)
    emails = targets + seed_confirmed(world.ctx, CONTACTS - DISTINCT, prefix="new")
    duplicated = set(random.Random(7).sample(targets, DUPLICATES))
    order = list(targets)
    random.Random(11).shuffle(order)

    world.emu.set_latency(800)  # each batch of 50 takes a while: the run is long
    pushing = threading.Event()
    world.emu.set_hook(lambda _r: pushing.set(), match=r"^POST /3\.0/lists/[^/]+$", times=1)
    result: list[SyncReport] = []
    ended: list[float] = []

    def run() -> None:
        result.append(run_sync(world.ctx))
        ended.append(time.monotonic())

    sync = threading.Thread(target=run)
    sync.start()
    assert pushing.wait(30), "the sync never started pushing"

    local = threading.local()
    known = world.emu.audience.rules.known_merge_fields

    refused: list[int] = []  # failed deliveries: a 503, or a connection closed unanswered

    def post(body: bytes) -> tuple[int, str, float, float]:
        # As Mailchimp does, a delivery that failed (answered 503, or its connection
        # closed before an answer: a kept-alive connection the busy server timed out)
        # is sent again (bounded here: 20 tries, at most 0.5 s apart); a failed delivery
        # must have left nothing half-done.
        if not hasattr(local, "session"):
            local.session = requests.Session()
        started = time.monotonic()
        for _ in range(20):
            try:
                answer = local.session.post(world.webhook_url, data=body, headers=FORM,
                                            timeout=30)
            except requests.ConnectionError:
                refused.append(1)
                local.session = requests.Session()
                time.sleep(0.1)
                continue
            if answer.status_code != 503:
                break
            refused.append(1)
            time.sleep(min(float(answer.headers.get("Retry-After", "1")), 0.5))
        done = time.monotonic()
        return answer.status_code, answer.text.strip(), done - started, done

    began = time.monotonic()
    with ThreadPoolExecutor(CLIENTS) as pool:

        def unsubscribe(email: str) -> list[Future[tuple[int, str, float, float]]]:
            # The person clicks "unsubscribe": Mailchimp's state changes, then it POSTs
            # the event (and, for some, POSTs it again: a retry racing the first).
            (event,) = world.emu.audience.user_unsubscribes(email)
            body = encode(event, known)
            again = [pool.submit(post, body)] if email in duplicated else []
            return [pool.submit(post, body), *again]

        queued = [f for batch in pool.map(unsubscribe, order) for f in batch]
        answers = [f.result() for f in queued]
    took = time.monotonic() - began
    sync.join(timeout=300)
    during = sum(1 for *_, done in answers if done < ended[0])
    world.emu.set_latency(0)
    second = run_sync(world.ctx)

    with world.ctx.sessions() as session:
        withdrawals = session.scalar(select(func.count()).select_from(ConsentEvent).where(
            ConsentEvent.action == "withdrawn"))
        suppressed = session.scalar(select(func.count()).select_from(Suppression).where(
            Suppression.purpose == "newsletter"))
        stored = Counter(session.scalars(select(WebhookEvent.status)))
    statuses = world.statuses()
    codes = Counter(code for code, *_ in answers)
    outcomes = Counter(text for _, text, *_ in answers)
    latencies = sorted(t for _, _, t, _ in answers)
    first = result[0]
    with capsys.disabled():
        print(f"\n[{world.ctx.engine.dialect.name}] {len(answers)} deliveries by {CLIENTS} "
              f"clients in {took:.1f} s (p50 {latencies[len(latencies) // 2] * 1000:.0f} ms, "
              f"max {latencies[-1] * 1000:.0f} ms), {during} answered while the sync "
              f"ran; HTTP {dict(codes)} after {len(refused)} retried deliveries; "
              f"answers {dict(outcomes)}; sync during "
              f"them added {first.added}, updated {first.updated} in "
              f"{first.duration_seconds:.1f} s; the next sync: {second.counts()['write_calls']} "
              f"writes, added {second.added}")

    assert codes == {200: DISTINCT + DUPLICATES}
    assert outcomes == {"applied": DISTINCT, "duplicate": DUPLICATES}
    assert stored == {"applied": DISTINCT}  # every 2xx event is in the inbox, once
    assert (withdrawals, suppressed) == (DISTINCT, DISTINCT)
    assert during > 0  # the deliveries overlapped the run
    assert first.outcome == "succeeded"
    assert first.added == CONTACTS - DISTINCT
    assert second.added == 0
    assert not [e for e in targets if statuses.get(e) == "subscribed"]
    chosen = set(targets)
    assert all(statuses.get(e) == "subscribed" for e in emails if e not in chosen)
    assert world.writes.resubscribes() == []
