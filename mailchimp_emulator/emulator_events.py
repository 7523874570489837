"""The Mailchimp-side events of the emulator's audiences (what people do there), each
delivered as webhooks to the URLs registered on its own audience, `data[list_id]` and
all; failed deliveries are kept for `redeliver_failed`."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Unpack

from mailchimp_emulator.audience import Audience, AudienceEvent
from mailchimp_emulator.audience_people import Unsubscribe
from mailchimp_emulator.webhook_delivery import Delivery, encode, post


class EmulatorEvents:
    """`fire_*`: the default audience unless `list_id` names another."""

    _audiences: dict[str, Audience]
    _undelivered: list[tuple[str, str, bytes]]
    _undelivered_lock: threading.Lock

    def audience_of(self, list_id: str | None = None) -> Audience:
        raise NotImplementedError

    def fire_subscribe(
        self,
        email: str,
        merges: Mapping[str, str] | None = None,
        *,
        ip_opt: str = "",
        source: str = "user",
        deliver: bool = True,
        list_id: str | None = None,
    ) -> list[Delivery]:
        """A signup form, or the person confirming a double opt-in mail."""
        events = self.audience_of(list_id).user_subscribes(
            email, merges=merges, ip_opt=ip_opt, source=source
        )
        return self._deliver(events, deliver)

    def fire_unsubscribe(
        self,
        email: str,
        *,
        deliver: bool = True,
        list_id: str | None = None,
        **how: Unpack[Unsubscribe],
    ) -> list[Delivery]:
        """The person unsubscribes (`reason` manual) or marks a mail as spam (abuse)."""
        events = self.audience_of(list_id).user_unsubscribes(email, **how)
        return self._deliver(events, deliver)

    def fire_cleaned(
        self,
        email: str,
        reason: str = "hard",
        campaign_id: str | None = None,
        *,
        source: str = "user",
        deliver: bool = True,
        list_id: str | None = None,
    ) -> list[Delivery]:
        events = self.audience_of(list_id).user_cleaned(
            email, reason=reason, campaign_id=campaign_id, source=source
        )
        return self._deliver(events, deliver)

    def fire_profile(
        self,
        email: str,
        merges: Mapping[str, str] | None = None,
        *,
        interests: Mapping[str, bool] | None = None,
        marketing_permissions: Mapping[str, bool] | None = None,
        source: str = "user",
        deliver: bool = True,
        list_id: str | None = None,
    ) -> list[Delivery]:
        """The person edits their profile on Mailchimp's page: merge fields, groups
        ticked or unticked, GDPR permissions switched (ids or names/texts -> bool)."""
        events = self.audience_of(list_id).user_updates_profile(
            email,
            merges or {},
            interests=interests,
            marketing_permissions=marketing_permissions,
            source=source,
        )
        return self._deliver(events, deliver)

    def fire_upemail(
        self,
        old: str,
        new: str,
        *,
        source: str = "user",
        deliver: bool = True,
        list_id: str | None = None,
    ) -> list[Delivery]:
        """Sends `upemail` and then `profile`, as Mailchimp does."""
        events = self.audience_of(list_id).user_changes_email(old, new, source=source)
        return self._deliver(events, deliver)

    def fire_campaign(
        self,
        campaign_id: str,
        subject: str = "",
        status: str = "sent",
        *,
        deliver: bool = True,
        list_id: str | None = None,
    ) -> list[Delivery]:
        events = self.audience_of(list_id).campaign_sent(
            campaign_id, subject=subject, status=status
        )
        return self._deliver(events, deliver)

    def redeliver_failed(self) -> list[Delivery]:
        """Retry deliveries that got no 2xx (Mailchimp retries for 75 minutes)."""
        with self._undelivered_lock:
            queued, self._undelivered = self._undelivered, []
        return [self._post(url, kind, body) for url, kind, body in queued]

    def _deliver(self, events: list[AudienceEvent], deliver: bool) -> list[Delivery]:
        if not deliver:  # a lost webhook: the state changed, nobody was told
            return []
        deliveries = []
        for event in events:
            audience = self._audiences.get(event.list_id)
            if audience is None:  # dropped by a reset meanwhile
                continue
            body = encode(event, audience.rules.known_merge_fields)
            targets = audience.webhook_targets(event)
            deliveries += [self._post(url, event.type, body) for url in targets]
        return deliveries

    def _post(self, url: str, kind: str, body: bytes) -> Delivery:
        delivery = post(url, kind, body)
        if not delivery.ok:
            with self._undelivered_lock:
                self._undelivered.append((url, kind, body))
        return delivery
