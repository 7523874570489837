"""Our own API writes echoing back as webhooks (a webhook saved with `sources.api` on,
which `syncd webhooks register` never does but an operator might): adds, updates and
unsubscribes echo as subscribe/profile/unsubscribe, and none of it creates consent,
changes who is eligible, or starts a loop of writes."""

from __future__ import annotations

import time

from sqlalchemy import func, select

from syncd.schema import ConsentEvent, WebhookEvent
from syncd.sync.run import run_sync
from tests.proof.world import World, at_text

EMAILS = [f"echo{n}@example.org" for n in range(4)]


def _inbox(world: World) -> int:
    with world.ctx.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(WebhookEvent)) or 0)


def _settle(world: World) -> int:
    """Echoes are delivered from background threads: wait until the inbox is quiet."""
    seen, still = -1, 0
    while still < 5:
        time.sleep(0.1)
        now = _inbox(world)
        still = still + 1 if now == seen else 0
        seen = now
    return seen


def _confirmations(world: World) -> int:
    with world.ctx.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(ConsentEvent).where(
            ConsentEvent.action == "confirmed")) or 0)


def test_echoes_of_our_own_writes_change_no_decision_and_start_no_loop(world: World) -> None:
    world.emu.audience.webhooks.clear()
    world.emu.audience.webhooks.add({"url": world.webhook_url,
                                     "sources": {"user": True, "admin": True, "api": True}})
    given, confirmed = at_text(world.clock.advance(60)), at_text(world.clock.advance(60))
    world.import_lines([{"email": e, "first_name": "Echo", "lists": ["newsletter-nl"],
                         "consents": [
                             {"purpose": "newsletter", "action": "given", "at": given},
                             {"purpose": "newsletter", "action": "confirmed",
                              "at": confirmed}]} for e in EMAILS])
    confirmations = _confirmations(world)

    run_sync(world.ctx)  # adds: echoed as subscribe
    world.import_lines([{"email": EMAILS[1], "first_name": "Changed"}])  # echoed as profile
    world.clock.advance(60)
    world.import_lines([{"email": EMAILS[2], "consents": [
        {"purpose": "newsletter", "action": "withdrawn",
         "at": at_text(world.clock.advance(60))}]}])  # echoed as unsubscribe
    run_sync(world.ctx)
    echoes = _settle(world)
    after_echoes = run_sync(world.ctx)
    again = run_sync(world.ctx)

    assert echoes >= len(EMAILS) + 2  # the echoes did arrive
    assert _confirmations(world) == confirmations  # a subscribe echo is never consent
    assert (after_echoes.added, after_echoes.reconsent_pending) == (0, 0)
    assert again.write_calls == 0  # no loop
    statuses = world.statuses()
    assert [statuses[e] for e in EMAILS] == ["subscribed", "subscribed", "unsubscribed",
                                             "subscribed"]
    assert world.emu.member(EMAILS[1])["merge_fields"]["FNAME"] == "Changed"  # type: ignore[index]
    assert world.writes.resubscribes() == []
