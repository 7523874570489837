"""The demo's step "Two targets": the offers target synced on the soft opt-in basis next
to the newsletter, and both audiences read back over HTTP as any Mailchimp client reads
them (`GET /lists/{id}/members`): who is in which audience, the GDPR permission of the
confirmed subscriber, the product category tag of the customer.

Rules 1, 7 and 11: consent is per purpose, a paid purchase admits to offers of similar
products only, a quote or a free product makes no customer, and neither basis ever
admits anyone to the other target."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import requests

from syncd.addresses import parse_address
from syncd.clock import utcnow
from syncd.crm import inspect
from syncd.demo.cast import CAST, CUSTOMER, NOT_OFFERS, PERMISSION_ON, Example
from syncd.demo.checks import Check
from syncd.demo.report import StepResult
from syncd.demo.stage import Stage
from syncd.sync.run import run_sync

LIVE = ("subscribed", "pending")
# The newsletter target's GDPR field (demo.toml: marketing_permissions).
PERMISSION = "Email"


@dataclass(frozen=True)
class Listed:
    """One member as `GET /lists/{id}/members` shows it."""

    status: str
    tags: tuple[str, ...] = ()
    permissions: Mapping[str, bool] | None = None  # text -> enabled; None: no GDPR fields


@dataclass(frozen=True)
class TargetsState:
    report: Mapping[str, Any]  # the offers run's SyncReport.to_dict()
    newsletter: Mapping[str, Listed]  # the newsletter audience, by address
    offers: Mapping[str, Listed]  # the offers audience, by address


def _live(audience: Mapping[str, Listed]) -> set[str]:
    return {email for email, m in audience.items() if m.status in LIVE}


def check_targets(state: TargetsState, cast: Sequence[Example] = CAST,
                  customer: Example = CUSTOMER, not_offers: Sequence[Example] = NOT_OFFERS,
                  permission_on: Example = PERMISSION_ON) -> list[Check]:
    """Pure: the two audiences as read over HTTP, against what the rules say."""
    customers = {e.email for e in cast if e.offers is not None}
    offered = _live(state.offers)
    report = state.report
    checks = [
        Check("the offers run added exactly the paying customers, nothing failed",
              report.get("outcome") == "succeeded" and report.get("added") == len(customers)
              and report.get("failed") == 0,
              f"outcome {report.get('outcome')}: added {report.get('added')}, failed "
              f"{report.get('failed')}"),
        Check("the offers audience holds exactly the paying customers (soft opt-in)",
              offered == customers, ", ".join(sorted(offered)) or "empty"),
    ]
    member = state.offers.get(customer.email)
    want = set(customer.offers or ())
    checks.append(Check(
        f"{customer.email}: tagged with the category bought "
        f"({', '.join(sorted(want))}): similar products only",
        member is not None and want <= set(member.tags),
        f"tags {list(member.tags)}" if member else "not in the offers audience"))
    for example in not_offers:
        found = state.offers.get(example.email)
        checks.append(Check(
            f"{example.email} ({example.role}) is not in the offers audience",
            example.email not in offered, f"found as {found.status}" if found else ""))
    news = state.newsletter.get(customer.email)
    checks.append(Check(
        f"{customer.email} (a customer without newsletter consent) is not in the "
        "newsletter audience", customer.email not in _live(state.newsletter),
        f"found as {news.status}" if news else ""))
    subscriber = state.newsletter.get(permission_on.email)
    enabled = (subscriber.permissions or {}).get(PERMISSION) if subscriber else None
    checks.append(Check(
        f"{permission_on.email}: GDPR permission \"{PERMISSION}\" enabled (a confirmed "
        "newsletter consent)", subscriber is not None and subscriber.status == "subscribed"
        and enabled is True, f"status {subscriber.status}, {PERMISSION} {enabled}"
        if subscriber else "not in the newsletter audience"))
    return checks


def read_audience(stage: Stage, list_id: str) -> dict[str, Listed]:
    """Every member of the audience (archived aside), read over HTTP with the API key."""
    found: dict[str, Listed] = {}
    offset = 0
    while True:
        answer = requests.get(f"{stage.emulator.base_url}/lists/{list_id}/members",
                              params={"count": 1000, "offset": offset},
                              auth=("syncd-demo", stage.emulator.api_key), timeout=10)
        answer.raise_for_status()
        members = answer.json().get("members") or []
        for m in members:
            permissions = m.get("marketing_permissions")
            found[str(m["email_address"]).lower()] = Listed(
                status=str(m["status"]),
                tags=tuple(sorted(str(t["name"]) for t in m.get("tags") or [])),
                permissions=None if permissions is None else {
                    str(p["text"]): bool(p["enabled"]) for p in permissions})
        if len(members) < 1000:
            return found
        offset += len(members)


def _reasons(stage: Stage) -> dict[str, tuple[str, str]]:
    """(newsletter reason, offers reason) per sample address, as `contacts show` says."""
    keyring, now = stage.ctx.keyring, utcnow()
    out: dict[str, tuple[str, str]] = {}
    with stage.ctx.sessions() as session:
        for example in CAST:
            key = parse_address(example.email).key
            view = inspect.show(session, stage.settings, keyring, key, now=now)
            if view is not None:
                news = view.purposes.get("newsletter")
                offers = view.soft_opt_in.get(stage.offers.name)
                out[example.email] = (news.reason if news else "",
                                      offers.reason if offers else "")
    return out


def targets_step(stage: Stage) -> StepResult:
    report = run_sync(stage.ctx, target=stage.offers)
    newsletter = read_audience(stage, stage.newsletter.audience_id)
    offers = read_audience(stage, stage.offers.audience_id)
    state = TargetsState(report=report.to_dict(), newsletter=newsletter, offers=offers)
    reasons = _reasons(stage)
    people = []
    for example in CAST:
        if example.email not in reasons:
            continue  # refused at import
        news, offer = newsletter.get(example.email), offers.get(example.email)
        people.append({
            "email": example.email, "who": example.role,
            "newsletter": news.status if news else "-",
            "permission": ((news.permissions or {}).get(PERMISSION) if news else None),
            "offers": offer.status if offer else "-",
            "tags": list(offer.tags) if offer else [],
            "offers_reason": reasons[example.email][1]})
    return StepResult(
        "targets", "Two targets: the newsletter by consent, offers by soft opt-in",
        "rules 1, 7, 11: consent per purpose (GDPR field Email on only with it), offers "
        "only to paying customers, tagged with what they bought; read back over HTTP",
        {"offers_run": {k: report.to_dict()[k] for k in ("outcome", "added", "write_calls")},
         "newsletter_audience": stage.newsletter.audience_id,
         "offers_audience": stage.offers.audience_id, "people": people},
        check_targets(state))
