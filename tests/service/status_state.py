"""A troubled installation for the status page tests: a sync refused by the safety limit
(its withdrawals are held), a parked contact and a parked inbox event whose error texts
name addresses, which the page must never show."""

from __future__ import annotations

from datetime import timedelta

from syncd.clock import utcnow
from syncd.context import AppContext
from syncd.db import transaction
from syncd.schema import PushState, SyncRun, WebhookEvent
from tests.builders import add_contact, confirmed
from tests.conftest import TEST_AUDIENCE_ID

PARKED = "parked.person@example.com"
OTHER = "eve.sender@example.org"
ADDRESSES = (PARKED, OTHER, "held.one@example.com")


def troubled(ctx: AppContext, *, held: int = 3) -> int:
    """Build the state; returns the parked contact's id."""
    now = utcnow()
    add_contact(ctx, "held.one@example.com", events=confirmed())
    parked_id = add_contact(ctx, PARKED, events=confirmed())
    with transaction(ctx.sessions) as session:
        session.add(SyncRun(kind="sync", audience_id=TEST_AUDIENCE_ID, outcome="succeeded",
                            counts={"added": 4}, started_at=now - timedelta(hours=2),
                            finished_at=now - timedelta(hours=2)))
        session.add(SyncRun(kind="sync", audience_id=TEST_AUDIENCE_ID, outcome="refused",
                            counts={"held_unsubscribes": held, "known_members": 10},
                            started_at=now - timedelta(minutes=5),
                            finished_at=now - timedelta(minutes=5),
                            error=f"held: the plan would unsubscribe {held} of 10"))
        session.add(PushState(contact_id=parked_id, audience_id=TEST_AUDIENCE_ID,
                              settled_revision=1, esp_status=None,
                              parked_reason=f"{PARKED} looks fake or invalid",
                              updated_at=now))
        session.add(WebhookEvent(dedupe_key="e" * 64, kind="upemail", list_id=TEST_AUDIENCE_ID,
                                 fired_at=now, received_at=now - timedelta(minutes=1),
                                 address_hmac=ctx.keyring.address_hmac(OTHER), status="parked",
                                 attempts=5, last_error=f"no contact for {OTHER}",
                                 body=f"type=upemail&data[new_email]={OTHER}"))
    return parked_id
