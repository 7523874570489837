"""Step 3 of the demo: the webhook registered at the running service, and a real
unsubscribe webhook from the emulator over HTTP, purged at once (and how long it took)."""

from __future__ import annotations

import re
import time

import requests

from syncd.consent import ledger
from syncd.consent.policy import Action
from syncd.crm import store, suppression
from syncd.demo import checks, readings
from syncd.demo.cast import UNSUBSCRIBER
from syncd.demo.report import StepResult
from syncd.demo.stage import Stage
from syncd.store import status
from syncd.webhooks import registration

PURGE_METRIC = "syncd_purge_latency_seconds"



def _purge_metric(stage: Stage) -> tuple[float, float] | None:
    """(sum, count) of the service's purge latency histogram, read from its /metrics."""
    try:
        text = requests.get(stage.service.base_url + "/metrics", timeout=5).text
    except requests.RequestException:
        return None
    found: dict[str, float] = {}
    for name in ("sum", "count"):
        match = re.search(rf"^{PURGE_METRIC}_{name} ([0-9.eE+-]+)$", text, re.MULTILINE)
        if match is None:
            return None
        found[name] = float(match.group(1))
    return found["sum"], found["count"]


def unsubscribe_step(stage: Stage) -> StepResult:
    from syncd.esp.mailchimp import mailchimp_client

    secrets = [s.get_secret_value() for s in stage.settings.webhook_secrets]
    client = mailchimp_client(stage.settings, stage.newsletter.audience_id)
    try:
        done = registration.register(client, stage.webhook_url, secrets)
        hooks = client.list_webhooks()
    finally:
        client.close()
    ours = [h for h in hooks if h.url == stage.webhook_url]
    person = UNSUBSCRIBER.email
    contact = readings.contact(stage, person)
    with stage.ctx.sessions() as session:
        before = tuple(store.list_names(session, contact.id))
    metric_before = _purge_metric(stage)
    began = time.perf_counter()
    deliveries = stage.emulator.fire_unsubscribe(person, reason="manual")
    seconds = time.perf_counter() - began
    metric_after = _purge_metric(stage)
    server_seconds = None
    if metric_before and metric_after and metric_after[1] - metric_before[1] == 1:
        server_seconds = metric_after[0] - metric_before[0]
    address_hmac = stage.ctx.keyring.address_hmac(contact.email_key)
    with stage.ctx.sessions() as session:
        after = tuple(store.list_names(session, contact.id))
        blocks = suppression.facts_by_hmac(session, [address_hmac]).get(address_hmac, [])
        withdrawn = any(e.action == Action.WITHDRAWN and e.source == "esp_webhook"
                        for e in ledger.history(session, contact.id))
        inbox_status = status.latest_event_status(session, address_hmac, "unsubscribe")
    eligible_after = readings.eligibility(stage)[person]
    member = stage.emulator.member(person)
    state = checks.PurgeState(
        registered=bool(ours), validated=stage.emulator.audience.rules.validate_webhook_urls
        and bool(ours), api_source_off=bool(ours) and not ours[0].sources.get("api"),
        deliveries=[d.status for d in deliveries], lists_before=before, lists_after=after,
        suppressions=[(b.purpose, b.reason) for b in blocks], withdrawal_recorded=withdrawn,
        inbox_status=inbox_status, esp_status=member["status"] if member else None,
        eligible_after=eligible_after.eligible, seconds_to_2xx=seconds,
        server_purge_seconds=server_seconds)
    return StepResult(
        "unsubscribe", "Unsubscribe at Mailchimp: the webhook purges at once",
        "rule 5 and I3: withdrawal takes effect at once, in the transaction that stores the "
        "webhook, before the 2xx",
        {"webhook": {"url": registration.masked_url(stage.webhook_url),
                     "created": done.created,
                     "events": sorted(k for k, v in done.webhook.events.items() if v),
                     "sources": sorted(k for k, v in done.webhook.sources.items() if v)},
         "person": person, "http_status": [d.status for d in deliveries],
         "lists_before": list(before), "lists_after": list(after),
         "suppressions": [{"purpose": b.purpose, "reason": b.reason} for b in blocks],
         "standing_after": eligible_after.standing, "reason_after": eligible_after.reason,
         "mailchimp_status": state.esp_status,
         "ms_send_to_2xx": round(seconds * 1000, 1),
         "ms_server_purge": None if server_seconds is None else round(server_seconds * 1000, 2)},
        checks.check_purge(state))
