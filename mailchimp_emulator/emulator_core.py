"""The emulator without its socket: the audience, the knobs (latency, connection limit,
rules), injected faults and hooks, the stats, and the Mailchimp-side events it delivers
as webhooks. `server.MailchimpEmulator` adds the HTTP server; `control.py` drives this."""

from __future__ import annotations

import ipaddress
import re
import threading
from collections.abc import Mapping
from typing import Any

from mailchimp_emulator.audience import (
    DEFAULT_LIST_ID,
    Audience,
    AudienceEvent,
    AudienceRules,
    Clock,
)
from mailchimp_emulator.faults import Fault, FaultKind, FaultPlan, Hook, Stats, StatsSnapshot
from mailchimp_emulator.webhook_delivery import Delivery, encode, post

# Looks like a real key (`<32 hex>-<datacenter>`) so that key parsing code is exercised.
DEFAULT_API_KEY = "5e7e1e55c0ffee0ddba11fee1dcafe00-us1"


class EmulatorCore:
    """Everything of a `MailchimpEmulator` but serving HTTP."""

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_API_KEY,
        list_id: str = DEFAULT_LIST_ID,
        host: str = "127.0.0.1",
        port: int = 0,
        latency_ms: float = 0.0,
        max_connections: int = 10,
        rules: AudienceRules | None = None,
        clock: Clock | None = None,
        seed: int | None = None,
    ) -> None:
        self.api_key = api_key
        self.audience = Audience(list_id, rules=rules, clock=clock)
        self._host, self._port = host, port
        self._latency_s = latency_ms / 1000
        self._stats = Stats(max_in_flight=max_connections)
        self._initial = (self.audience.rules, self._latency_s, max_connections)
        self._epoch = 0  # bumped by reset()
        self._faults = FaultPlan(seed)
        self._undelivered: list[tuple[str, str, bytes]] = []
        self._undelivered_lock = threading.Lock()

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        """What `client.api_client.host` should be: `http://127.0.0.1:PORT/3.0`."""
        return f"http://{self._host}:{self._port}/3.0"

    @property
    def control_url(self) -> str:
        return f"http://{self._host}:{self._port}/_emulator"

    @property
    def list_id(self) -> str:
        return self.audience.list_id

    @property
    def state(self) -> Audience:
        return self.audience

    @property
    def loopback(self) -> bool:
        try:
            return ipaddress.ip_address(self._host).is_loopback
        except ValueError:
            return self._host == "localhost"

    # -- knobs ----------------------------------------------------------------------

    def set_latency(self, ms: float) -> None:
        self._latency_s = max(ms, 0) / 1000

    @property
    def latency_ms(self) -> float:
        return self._latency_s * 1000

    def set_max_connections(self, limit: int) -> None:
        self._stats.max_in_flight = limit

    @property
    def max_connections(self) -> int:
        return self._stats.max_in_flight

    def configure(self, **rules: Any) -> AudienceRules:
        """Change audience rules, e.g. `configure(allow_api_resubscribe=True)`."""
        return self.audience.configure(**rules)

    def inject_fault(
        self,
        kind: FaultKind,
        *,
        count: int | None = 1,
        match: str | None = None,
        probability: float = 1.0,
        seconds: float = 1.0,
    ) -> None:
        """Make the next `count` matching `/3.0` requests fail with `kind`.

        `match` is a regex searched in "METHOD /path" (e.g. r"^PUT .*/members/");
        `probability` < 1 hits only that share of matching requests; `count=None`
        keeps the fault until `clear_faults()`; `seconds` is the delay of `slow`.
        """
        pattern = re.compile(match) if match else None
        self._faults.add(Fault(kind, count, pattern, probability, seconds))

    def set_hook(self, hook: Hook, *, match: str | None = None, times: int | None = None) -> None:
        """Run `hook(RequestInfo)` before matching `/3.0` requests are handled."""
        self._faults.add_hook(hook, re.compile(match) if match else None, times)

    def clear_faults(self) -> None:
        """Drop pending faults and hooks."""
        self._faults.clear()

    def pending_faults(self) -> list[dict[str, Any]]:
        return self._faults.pending()

    @property
    def stats(self) -> StatsSnapshot:
        return self._stats.snapshot()

    def reset_stats(self) -> None:
        self._stats.reset()

    def reset(self) -> None:
        """As freshly constructed, on the same port: empty audience and webhooks, the
        constructor's rules, latency and connection limit, no faults or hooks, zero stats."""
        self._epoch += 1
        self.audience.rules, self._latency_s, self._stats.max_in_flight = self._initial
        self.audience.reset()
        self._faults.clear()
        self._stats.reset()
        with self._undelivered_lock:
            self._undelivered.clear()

    # -- members, for assertions ----------------------------------------------------

    def member(self, email_or_hash: str) -> dict[str, Any] | None:
        return self.audience.member(email_or_hash)

    def members(self, status: str | None = None) -> list[dict[str, Any]]:
        return self.audience.members(status)

    def confirmation_mails_sent(self, email: str) -> int:
        return self.audience.confirmation_mails_sent(email)

    def seed_member(self, email: str, status: str = "subscribed", **fields: Any) -> dict[str, Any]:
        """Put an existing member in place, bypassing the API rules."""
        return self.audience.seed(email, status, **fields)

    # -- Mailchimp-side events, delivered as webhooks -------------------------------

    def fire_subscribe(
        self,
        email: str,
        merges: Mapping[str, str] | None = None,
        *,
        ip_opt: str = "",
        source: str = "user",
        deliver: bool = True,
    ) -> list[Delivery]:
        """A signup form, or the person confirming a double opt-in mail."""
        events = self.audience.user_subscribes(email, merges=merges, ip_opt=ip_opt, source=source)
        return self._deliver(events, deliver)

    def fire_unsubscribe(
        self,
        email: str,
        reason: str = "manual",
        campaign_id: str | None = None,
        *,
        action: str | None = "unsub",
        source: str = "user",
        deliver: bool = True,
    ) -> list[Delivery]:
        """The person unsubscribes (`manual`) or marks a mail as spam (`abuse`)."""
        events = self.audience.user_unsubscribes(
            email, reason=reason, campaign_id=campaign_id, action=action, source=source
        )
        return self._deliver(events, deliver)

    def fire_cleaned(
        self,
        email: str,
        reason: str = "hard",
        campaign_id: str | None = None,
        *,
        source: str = "user",
        deliver: bool = True,
    ) -> list[Delivery]:
        events = self.audience.user_cleaned(
            email, reason=reason, campaign_id=campaign_id, source=source
        )
        return self._deliver(events, deliver)

    def fire_profile(
        self, email: str, merges: Mapping[str, str], *, source: str = "user", deliver: bool = True
    ) -> list[Delivery]:
        return self._deliver(
            self.audience.user_updates_profile(email, merges, source=source), deliver
        )

    def fire_upemail(
        self, old: str, new: str, *, source: str = "user", deliver: bool = True
    ) -> list[Delivery]:
        """Sends `upemail` and then `profile`, as Mailchimp does."""
        return self._deliver(self.audience.user_changes_email(old, new, source=source), deliver)

    def fire_campaign(
        self, campaign_id: str, subject: str = "", status: str = "sent", *, deliver: bool = True
    ) -> list[Delivery]:
        return self._deliver(
            self.audience.campaign_sent(campaign_id, subject=subject, status=status), deliver
        )

    def redeliver_failed(self) -> list[Delivery]:
        """Retry deliveries that got no 2xx (Mailchimp retries for 75 minutes)."""
        with self._undelivered_lock:
            queued, self._undelivered = self._undelivered, []
        return [self._post(url, kind, body) for url, kind, body in queued]

    def _deliver(self, events: list[AudienceEvent], deliver: bool) -> list[Delivery]:
        if not deliver:  # a lost webhook: the state changed, nobody was told
            return []
        known = self.audience.rules.known_merge_fields
        return [
            self._post(url, event.type, encode(event, known))
            for event in events
            for url in self.audience.webhook_targets(event)
        ]

    def _post(self, url: str, kind: str, body: bytes) -> Delivery:
        delivery = post(url, kind, body)
        if not delivery.ok:
            with self._undelivered_lock:
                self._undelivered.append((url, kind, body))
        return delivery
