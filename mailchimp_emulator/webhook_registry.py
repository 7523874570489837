"""The audience's registered webhooks (`/lists/{id}/webhooks`) and who gets what."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mailchimp_emulator import webhook_delivery
from mailchimp_emulator.members import JSON, AudienceEvent
from mailchimp_emulator.problems import field_error, invalid_resource, not_found

WEBHOOK_EVENTS = ("subscribe", "unsubscribe", "profile", "cleaned", "upemail", "campaign")
WEBHOOK_SOURCES = ("user", "admin", "api")


@dataclass
class Webhook:
    id: str
    url: str
    events: dict[str, bool]
    sources: dict[str, bool]

    def render(self, list_id: str) -> JSON:
        return {
            "id": self.id,
            "url": self.url,
            "events": dict(self.events),
            "sources": dict(self.sources),
            "list_id": list_id,
        }

    def update(self, body: Mapping[str, Any]) -> None:
        url = body.get("url")
        if url is not None:
            self.url = _check_url(url)
        for attr, names in (("events", WEBHOOK_EVENTS), ("sources", WEBHOOK_SOURCES)):
            given = body.get(attr)
            if isinstance(given, dict):
                flags: dict[str, bool] = getattr(self, attr)
                flags.update({n: bool(given[n]) for n in names if n in given})


def _check_url(url: Any) -> str:
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise field_error("url", "Please provide a valid URL.")
    return url


class WebhookRegistry:
    def __init__(self, list_id: str) -> None:
        self.list_id = list_id
        self._lock = threading.Lock()
        self._hooks: dict[str, Webhook] = {}

    def clear(self) -> None:
        with self._lock:
            self._hooks.clear()

    def all(self) -> JSON:
        with self._lock:
            hooks = [h.render(self.list_id) for h in self._hooks.values()]
        return {"webhooks": hooks, "list_id": self.list_id, "total_items": len(hooks)}

    def add(self, body: Mapping[str, Any], *, validate: bool = False) -> JSON:
        """Register a webhook; with `validate`, the URL must answer Mailchimp's GET check."""
        url = _check_url(body.get("url"))
        if validate and not webhook_delivery.validate(url):
            raise field_error("url", "We couldn't verify the URL is working. Please try again.")
        with self._lock:
            if any(h.url == url for h in self._hooks.values()):
                raise invalid_resource("A webhook with this URL already exists for this list.")
            # Mailchimp's form defaults: every member event on, campaign off, api off.
            hook = Webhook(
                id=secrets.token_hex(5),
                url=url,
                events={e: e != "campaign" for e in WEBHOOK_EVENTS},
                sources={"user": True, "admin": True, "api": False},
            )
            hook.update(body)
            self._hooks[hook.id] = hook
            return hook.render(self.list_id)

    def get(self, webhook_id: str) -> JSON:
        with self._lock:
            return self._find(webhook_id).render(self.list_id)

    def update(self, webhook_id: str, body: Mapping[str, Any]) -> JSON:
        with self._lock:
            hook = self._find(webhook_id)
            hook.update(body)
            return hook.render(self.list_id)

    def delete(self, webhook_id: str) -> None:
        with self._lock:
            self._find(webhook_id)
            del self._hooks[webhook_id]

    def _find(self, webhook_id: str) -> Webhook:
        hook = self._hooks.get(webhook_id)
        if hook is None:
            raise not_found()
        return hook

    def any_from_api(self) -> bool:
        with self._lock:
            return any(h.sources.get("api") for h in self._hooks.values())

    def targets(self, event: AudienceEvent) -> list[str]:
        """URLs that get this event: event enabled and source allowed (campaign: any)."""
        with self._lock:
            return [
                h.url
                for h in self._hooks.values()
                if h.events.get(event.type)
                and (event.type == "campaign" or h.sources.get(event.source))
            ]
