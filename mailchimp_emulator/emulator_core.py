"""The emulator without its socket: one account's audiences (the default one and any
added, by list id), the knobs (latency, connection limit, rules), injected faults and
hooks, the stats, and the Mailchimp-side events it delivers as webhooks.
`server.MailchimpEmulator` adds the HTTP server; `control.py` drives this.

Every helper that is about one audience (`seed_member`, `member`, `fire_*`, `configure`)
takes an optional `list_id`; without it, the default audience (`emulator.audience`)."""

from __future__ import annotations

import ipaddress
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from mailchimp_emulator.audience import (
    DEFAULT_LIST_ID,
    Audience,
    AudienceRules,
    Clock,
    FieldsSetup,
)
from mailchimp_emulator.emulator_events import EmulatorEvents
from mailchimp_emulator.faults import Fault, FaultKind, FaultPlan, Hook, Stats, StatsSnapshot

# Looks like a real key (`<32 hex>-<datacenter>`) so that key parsing code is exercised.
DEFAULT_API_KEY = "5e7e1e55c0ffee0ddba11fee1dcafe00-us1"


class EmulatorCore(EmulatorEvents):
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
        marketing_permissions: Iterable[str] = (),
        interest_categories: Mapping[str, Iterable[str]] | None = None,
        audiences: Iterable[str] = (),
    ) -> None:
        """`marketing_permissions` (texts such as "Email") switch the default audience's
        GDPR fields on; `interest_categories` maps a category title to its interests'
        names; `audiences` are more list ids of the account (empty, no GDPR fields)."""
        self.api_key = api_key
        self._clock = clock
        self.audience = Audience(
            list_id,
            rules=rules,
            clock=clock,
            fields=FieldsSetup.of(marketing_permissions, interest_categories),
        )
        self._audiences: dict[str, Audience] = {list_id: self.audience}
        for extra in audiences:
            self.add_audience(extra)
        self._constructed = dict(self._audiences)
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

    # -- the account's audiences ----------------------------------------------------

    @property
    def audiences(self) -> Mapping[str, Audience]:
        """Every audience by list id, the default one first."""
        return dict(self._audiences)

    def add_audience(
        self,
        list_id: str,
        *,
        name: str | None = None,
        marketing_permissions: Iterable[str] = (),
        interest_categories: Mapping[str, Iterable[str]] | None = None,
        rules: AudienceRules | None = None,
    ) -> Audience:
        """One more audience of the account; `reset()` drops it again (those given to the
        constructor stay). A list id already in use is a ValueError."""
        if not re.fullmatch(r"[0-9A-Za-z]{1,32}", list_id):
            raise ValueError("a list id is 1-32 letters and digits")
        if list_id in self._audiences:
            raise ValueError(f"audience {list_id} exists already")
        audience = Audience(
            list_id,
            name=name or f"syncd emulator audience {list_id}",
            rules=rules or self.audience.rules,
            clock=self._clock,
            fields=FieldsSetup.of(marketing_permissions, interest_categories),
        )
        self._audiences[list_id] = audience
        return audience

    def audience_of(self, list_id: str | None = None) -> Audience:
        """The audience with this list id (default: the default one); LookupError if the
        account has none."""
        if list_id is None:
            return self.audience
        found = self._audiences.get(list_id)
        if found is None:
            raise LookupError("no such audience")
        return found

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

    def configure(self, list_id: str | None = None, **rules: Any) -> AudienceRules:
        """Change audience rules, e.g. `configure(allow_api_resubscribe=True)`."""
        return self.audience_of(list_id).configure(**rules)

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
        """As freshly constructed, on the same port: the constructor's audiences, empty, with
        their webhooks gone and their set-up GDPR fields and groups; the constructor's
        rules, latency and connection limit, no faults or hooks, zero stats."""
        self._epoch += 1
        self._audiences = dict(self._constructed)
        self.audience.rules, self._latency_s, self._stats.max_in_flight = self._initial
        for audience in self._audiences.values():
            if audience is not self.audience:
                audience.rules = self._initial[0]
            audience.reset()
        self._faults.clear()
        self._stats.reset()
        with self._undelivered_lock:
            self._undelivered.clear()

    # -- members, for assertions ----------------------------------------------------

    def member(self, email_or_hash: str, list_id: str | None = None) -> dict[str, Any] | None:
        return self.audience_of(list_id).member(email_or_hash)

    def members(
        self, status: str | None = None, list_id: str | None = None
    ) -> list[dict[str, Any]]:
        return self.audience_of(list_id).members(status)

    def confirmation_mails_sent(self, email: str, list_id: str | None = None) -> int:
        return self.audience_of(list_id).confirmation_mails_sent(email)

    def seed_member(
        self, email: str, status: str = "subscribed", *, list_id: str | None = None, **fields: Any
    ) -> dict[str, Any]:
        """Put an existing member in place, bypassing the API rules (`interests` and
        `marketing_permissions` as ids or names/texts -> bool)."""
        return self.audience_of(list_id).seed(email, status, **fields)
