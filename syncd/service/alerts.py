"""Alerts to a webhook URL (`alert_webhook_url`): a JSON POST when an alert condition of the
status page begins (a sync failed twice in a row, withdrawals are held, inbox events are
parked, the inbox is stuck) and when it ends. Checked after every job the service runs.

The body carries the same sentences as the status page: counts and ids, no personal data.
The URL often embeds a secret (chat webhooks): it is never logged. One try with a short
deadline; an alert that could not be sent is tried again at the next check."""

from __future__ import annotations

import threading
from typing import Any

import requests

from syncd.clock import utcnow
from syncd.context import AppContext
from syncd.logs import get_logger

log = get_logger("syncd.service.alerts")

ALERT_TIMEOUT_SECONDS = 5.0


class AlertNotifier:
    """Remembers which alerts it announced, so each start and end is sent once."""

    def __init__(self, ctx: AppContext, *, session: requests.Session | None = None) -> None:
        self.ctx = ctx
        self.announced: dict[str, str] = {}
        self._lock = threading.Lock()
        self._http = session or requests.Session()

    def check(self) -> dict[str, Any] | None:
        """Compare the alert conditions with those announced; POST what changed. Returns
        the body sent, or None when nothing was (no URL, no change, or the send failed)."""
        url = self.ctx.settings.alert_webhook_url
        if url is None:
            return None
        from syncd.service.status_data import collect

        with self._lock:
            current = {a["key"]: a["message"]
                       for a in collect(self.ctx, alerts_only=True)["alerts"]}
            began = sorted(set(current) - set(self.announced))
            ended = sorted(set(self.announced) - set(current))
            if not began and not ended:
                return None
            body = {"source": "syncd", "at": utcnow().isoformat(),
                    "began": [{"key": k, "message": current[k]} for k in began],
                    "ended": [{"key": k, "message": self.announced[k]} for k in ended],
                    "active": [{"key": k, "message": m} for k, m in sorted(current.items())],
                    "details": "GET /status on the syncd service"}
            try:
                answer = self._http.post(url, json=body, timeout=ALERT_TIMEOUT_SECONDS,
                                         allow_redirects=False)
                answer.raise_for_status()
            except requests.RequestException as exc:
                log.warning("alert not sent; tried again at the next check",
                            error=type(exc).__name__, began=began, ended=ended)
                return None
            self.announced = current
            log.info("alert sent", began=began, ended=ended)
            return body

    def close(self) -> None:
        self._http.close()
