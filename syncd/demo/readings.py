"""Reading the demo's state after a step: who is eligible and why, the emulator's audience,
who is parked, a sample contact."""

from __future__ import annotations

from syncd.clock import utcnow
from syncd.config import NEWSLETTER
from syncd.crm import inspect, store
from syncd.demo import checks
from syncd.demo.stage import Stage
from syncd.schema import Contact
from syncd.store import status


def eligibility(stage: Stage) -> dict[str, checks.Eligibility]:
    with stage.ctx.sessions() as session:
        return {row.email.lower(): checks.Eligibility(row.eligible, row.standing, row.reason,
                                                      tuple(row.lists))
                for row in inspect.rows(session, stage.ctx.keyring, purpose=NEWSLETTER,
                                        now=utcnow())}


def audience(stage: Stage) -> dict[str, checks.Member]:
    return {m["email_address"].lower(): checks.Member(
                status=m["status"],
                tags=tuple(sorted(t["name"] for t in m.get("tags") or [])),
                timestamp_opt=m.get("timestamp_opt") or "")
            for m in stage.emulator.members()}


def parked(stage: Stage) -> dict[str, str]:
    with stage.ctx.sessions() as session:
        return status.parked_by_address(session)


def consent_events(stage: Stage) -> dict[str, int]:
    with stage.ctx.sessions() as session:
        return status.consent_events_by_address(session)


def contact(stage: Stage, email: str) -> Contact:
    with stage.ctx.sessions() as session:
        found = store.find_contact(session, email)
        if found is None:
            raise RuntimeError(f"the sample contact {email} is missing")
        session.expunge(found)
        return found
