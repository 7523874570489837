"""The Mailchimp transport: one pooled HTTP session under the official client, and the one
retry path every call takes.

The official client `mailchimp-marketing` gives the method surface; syncd replaces its
transport and its error handling:
- ONE pooled `requests.Session` (keep-alive, pool size = max connections, blocking when
  full, so syncd never opens more than Mailchimp's 10 simultaneous connections), with
  explicit connect/read timeouts. The stock client opens a new TCP+TLS connection per
  call and ignores per-call timeouts.
- The stock client replaces EVERY "server" in the URL with the datacenter; syncd sets
  the full base URL itself and disables that replacement, and passes only MD5 hashes.
- Every answer goes through syncd.esp.mailchimp_responses (typed errors).
- Transient errors (429, bodyless 403, 5xx, timeouts, resets) are retried with capped
  exponential backoff and full jitter, all through `MailchimpTransport.call`.
The API key is handed to the HTTP auth only; it is never logged or put in a message.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from typing import Any

import requests
from mailchimp_marketing.api.lists_api import ListsApi
from mailchimp_marketing.api_client import ApiClient, ApiClientError
from requests.adapters import HTTPAdapter
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from syncd.esp.errors import EspTransientError
from syncd.esp.mailchimp_responses import RecentSignupsError, from_client_error, interpret
from syncd.logs import get_logger
from syncd.metrics import ESP_RETRIES, ESP_THROTTLED

log = get_logger(__name__)
CONNECT_TIMEOUT_SECONDS = 5.0
# A Mailchimp answer as JSON (None for a bodyless success).
Doc = dict[str, Any] | None


class _PooledApiClient(ApiClient):  # type: ignore[misc]
    """The official ApiClient with its transport replaced by one pooled session."""

    def __init__(self, api_key: str, host: str, session: requests.Session,
                 timeout: float) -> None:
        super().__init__({"api_key": api_key})
        self.host = host
        # The stock client does url.replace('server', dc) on the WHOLE URL: disabled,
        # the host is already complete.
        self.server = ""
        self._session = session
        self._timeout = (min(CONNECT_TIMEOUT_SECONDS, timeout), timeout)
        self._auth = ("syncd", api_key)

    def request(self, method: str, url: str, query_params: Any = None,
                headers: Any = None, body: Any = None) -> requests.Response:
        data = json.dumps(body) if method in ("POST", "PUT", "PATCH") else None
        return self._session.request(method, url, params=query_params, headers=headers,
                                     data=data, auth=self._auth, timeout=self._timeout)


def _retryable(exc: BaseException) -> bool:
    # Hours, not seconds: parked by the caller, never retried inside the run.
    return isinstance(exc, EspTransientError) and not isinstance(exc, RecentSignupsError)


def _count_retry(what: str, state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    throttled = isinstance(exc, EspTransientError) and exc.throttled
    reason = "throttled" if throttled else (
        f"http_{exc.status}" if isinstance(exc, EspTransientError) and exc.status
        else "transport")
    ESP_RETRIES.labels(reason=reason).inc()
    if throttled:
        ESP_THROTTLED.inc()
    log.info("esp_retry", call=what, attempt=state.attempt_number, reason=reason)


class MailchimpTransport:
    """The pooled session, the official client's lists API on it, and the counted,
    retried call path."""

    def __init__(self, *, api_key: str, base_url: str, max_connections: int,
                 timeout_seconds: float, max_retries: int,
                 retry_max_wait_seconds: float) -> None:
        self._max_retries = max_retries
        self._retry_max_wait = retry_max_wait_seconds
        self._session = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=max_connections,
                              pool_block=True, max_retries=0)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        # The official client's generated API classes, on the pooled transport.
        self.lists = ListsApi(_PooledApiClient(api_key, base_url, self._session,
                                               timeout_seconds))
        self._calls_lock = threading.Lock()
        self.write_calls = 0

    def close(self) -> None:
        self._session.close()

    def call(self, what: str, fn: Callable[..., Any], *args: Any, write: bool = False,
             member_level: bool = False, landed: Callable[[], Doc] | None = None,
             **kwargs: Any) -> Doc:
        """`fn(*args, **kwargs)` through the typed answers, retried while transient.

        `landed`, for a write that must not be repeated blindly: asked before each retry
        whether the previous attempt took effect after all; an answer other than None is
        the call's result and ends it, an error it raises ends the call too."""
        def once() -> Doc:
            if write:
                with self._calls_lock:
                    self.write_calls += 1
            try:
                return interpret(fn(*args, **kwargs), what=what)
            except ApiClientError as err:
                raise from_client_error(err, what=what, member_level=member_level) from None

        def before_sleep(state: RetryCallState) -> None:
            if landed is None:
                _count_retry(what, state)
            else:
                ESP_RETRIES.labels(reason="pending_check").inc()

        retrying = Retrying(
            retry=retry_if_exception(_retryable),
            stop=stop_after_attempt(self._max_retries + 1),
            # Full jitter: a random wait in [0, min(cap, 0.25 * 2^n)] spreads retries of
            # parallel workers instead of synchronising them into a new burst.
            wait=wait_random_exponential(multiplier=0.25, max=self._retry_max_wait),
            before_sleep=before_sleep,
            reraise=True,
        )
        if landed is None:
            answer: Doc = retrying(once)
            return answer
        result: Doc = None
        for attempt in retrying:
            if attempt.retry_state.attempt_number > 1:
                # Outside the attempt: an error of this check is not retried here.
                doc = landed()
                if doc is not None:
                    return doc
            with attempt:
                result = once()
        return result

    def post(self, path: str, path_params: Mapping[str, str], query: list[tuple[str, str]],
             body: dict[str, Any]) -> Any:
        """A POST through the official client's call_api, for a call whose generated
        method cannot ask for only some fields of the answer."""
        return self.lists.api_client.call_api(
            path, "POST", path_params=dict(path_params), query_params=query,
            header_params={"Accept": "application/json",
                           "Content-Type": "application/json"},
            body=body)
