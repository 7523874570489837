"""Mailchimp, behind syncd's ESP protocols (syncd.esp.protocol).

The official client `mailchimp-marketing` gives the method surface; syncd replaces its
transport and its error handling:
- ONE pooled `requests.Session` (keep-alive, pool size = max connections, blocking when
  full, so syncd never opens more than Mailchimp's 10 simultaneous connections), with
  explicit connect/read timeouts. The stock client opens a new TCP+TLS connection per
  call and ignores per-call timeouts.
- The stock client replaces EVERY "server" in the URL with the datacenter; syncd sets
  the full base URL itself and disables that replacement, and passes only MD5 hashes.
- Every answer goes through syncd.esp.mailchimp_responses (typed errors).
- Transient errors are retried with capped exponential backoff and full jitter.
The API key is handed to the HTTP auth only; it is never logged or put in a message.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

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

from syncd.addresses import subscriber_hash
from syncd.clock import parse_timestamp, utcnow
from syncd.config import Settings
from syncd.errors import ConfigError
from syncd.esp.errors import EspPermanentError, EspTransientError
from syncd.esp.mailchimp_responses import (
    MemberMissingError,
    RecentSignupsError,
    batch_item_error,
    from_client_error,
    interpret,
)
from syncd.esp.protocol import (
    MemberData,
    MemberResult,
    NewMember,
    RemoteMember,
    WebhookConfig,
)
from syncd.logs import get_logger
from syncd.metrics import ESP_RETRIES, ESP_THROTTLED

T = TypeVar("T")
log = get_logger(__name__)
CONNECT_TIMEOUT_SECONDS = 5.0
# Mailchimp's batch subscribe endpoint takes at most 500 members per call.
MAX_BATCH = 500
# What the audience pull and the audit read of each member: nothing more is transferred.
AUDIENCE_FIELDS = [f"members.{name}" for name in (
    "email_address", "status", "last_changed", "unsubscribe_reason", "timestamp_opt",
    "ip_opt")] + ["total_items"]
BATCH_ANSWER_FIELDS = ",".join(
    [f"{part}.{name}" for part in ("new_members", "updated_members")
     for name in ("email_address", "status")]
    + [f"errors.{name}" for name in ("email_address", "error", "error_code", "field",
                                     "field_message")]
    + ["total_created", "total_updated", "error_count"])


def base_url_for(settings: Settings) -> str:
    """`settings.mailchimp_base_url` (emulator, proxy) or `https://<dc>.api.mailchimp.com/3.0`
    from the key's `-<dc>` suffix."""
    if settings.mailchimp_base_url:
        return settings.mailchimp_base_url
    key = settings.mailchimp_api_key.get_secret_value() if settings.mailchimp_api_key else ""
    _, dash, dc = key.rpartition("-")
    if not dash or not dc.isalnum():
        raise ConfigError("setting 'mailchimp_api_key' (SYNCD_MAILCHIMP_API_KEY): a Mailchimp "
                          "API key ends in '-<datacenter>' (e.g. '-us14'); or set "
                          "SYNCD_MAILCHIMP_BASE_URL")
    return f"https://{dc}.api.mailchimp.com/3.0"


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


def _member_body(data: MemberData) -> dict[str, Any]:
    body: dict[str, Any] = {"email_address": data.email}
    if data.merge_fields:
        body["merge_fields"] = dict(data.merge_fields)
    for name in ("ip_signup", "timestamp_signup", "ip_opt", "timestamp_opt"):
        value = getattr(data, name)
        if value:
            body[name] = value
    return body


def _remote(doc: Mapping[str, Any]) -> RemoteMember:
    stamp = doc.get("timestamp_opt") or ""
    return RemoteMember(
        email=str(doc.get("email_address", "")),
        status=str(doc.get("status", "")),
        last_changed=parse_timestamp(str(doc.get("last_changed") or "1970-01-01T00:00:00")),
        unsubscribe_reason=doc.get("unsubscribe_reason") or None,
        merge_fields={k: str(v) for k, v in (doc.get("merge_fields") or {}).items()},
        ip_opt=doc.get("ip_opt") or None,
        timestamp_opt=parse_timestamp(stamp) if stamp else None,
    )


def _webhook(doc: Mapping[str, Any]) -> WebhookConfig:
    return WebhookConfig(id=str(doc["id"]), url=str(doc.get("url", "")),
                         events=dict(doc.get("events") or {}),
                         sources=dict(doc.get("sources") or {}))


class MailchimpClient:
    """syncd's Mailchimp client: EspWriter, EspReader and EspWebhooks in one."""

    def __init__(self, *, api_key: str, audience_id: str, base_url: str,
                 max_connections: int = 10, timeout_seconds: float = 30.0,
                 max_retries: int = 6, retry_max_wait_seconds: float = 30.0) -> None:
        self.audience_id = audience_id
        self.base_url = base_url.rstrip("/")
        self.max_connections = max_connections
        self._max_retries = max_retries
        self._retry_max_wait = retry_max_wait_seconds
        self._session = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=max_connections,
                              pool_block=True, max_retries=0)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        # The official client's generated API classes, on the pooled transport.
        self._lists = ListsApi(_PooledApiClient(api_key, self.base_url, self._session,
                                                timeout_seconds))
        self._calls_lock = threading.Lock()
        self.write_calls = 0

    def close(self) -> None:
        self._session.close()

    # -- the one call path -----------------------------------------------------------

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, write: bool = False,
              member_level: bool = False, retries: int | None = None,
              **kwargs: Any) -> dict[str, Any] | None:
        def once() -> dict[str, Any] | None:
            if write:
                with self._calls_lock:
                    self.write_calls += 1
            try:
                return interpret(fn(*args, **kwargs), what=what)
            except ApiClientError as err:
                raise from_client_error(err, what=what, member_level=member_level) from None

        def retryable(exc: BaseException) -> bool:
            # Hours, not seconds: parked by the caller, never retried inside the run.
            return isinstance(exc, EspTransientError) and not isinstance(exc, RecentSignupsError)

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            throttled = isinstance(exc, EspTransientError) and exc.throttled
            reason = "throttled" if throttled else (
                f"http_{exc.status}" if isinstance(exc, EspTransientError) and exc.status
                else "transport")
            ESP_RETRIES.labels(reason=reason).inc()
            if throttled:
                ESP_THROTTLED.inc()
            log.info("esp_retry", call=what, attempt=state.attempt_number, reason=reason)

        retrying = Retrying(
            retry=retry_if_exception(retryable),
            stop=stop_after_attempt((self._max_retries if retries is None else retries) + 1),
            # Full jitter: a random wait in [0, min(cap, 0.25 * 2^n)] spreads retries of
            # parallel workers instead of synchronising them into a new burst.
            wait=wait_random_exponential(multiplier=0.25, max=self._retry_max_wait),
            before_sleep=before_sleep,
            reraise=True,
        )
        result: dict[str, Any] | None = retrying(once)
        return result

    # -- EspReader -------------------------------------------------------------------

    def ping(self) -> None:
        """Checks the key AND the audience: one read of the audience."""
        self._call("check audience", self._lists.get_list, self.audience_id,
                   fields=["id"])

    def iter_changed_members(self, *, status: str | None, since: datetime,
                             page_size: int = 1000) -> Iterator[Sequence[RemoteMember]]:
        """`status` None: every status but archived (Mailchimp's default listing)."""
        offset = 0
        extra: dict[str, Any] = {"status": status} if status else {}
        while True:
            doc = self._call("read members", self._lists.get_list_members_info,
                             self.audience_id, since_last_changed=since.isoformat(),
                             count=page_size, offset=offset, fields=AUDIENCE_FIELDS,
                             sort_field="last_changed", sort_dir="ASC", **extra) or {}
            page = [_remote(m) for m in doc.get("members") or []]
            if page:
                yield page
            if len(page) < page_size:
                return
            offset += len(page)

    def iter_audience(self, *, page_size: int = 1000) -> Iterator[Sequence[RemoteMember]]:
        """Every member of the audience, archived ones included, in pages of
        `page_size` (Mailchimp's maximum is 1000) with only the fields syncd reads:
        ceil(N / 1000) + 2 calls, one page in memory at a time. Without a `status`
        filter Mailchimp lists every status but `archived`, which needs its own pass."""
        for status in (None, "archived"):
            offset = 0
            while True:
                extra: dict[str, Any] = {"status": status} if status else {}
                doc = self._call("read audience", self._lists.get_list_members_info,
                                 self.audience_id, count=page_size, offset=offset,
                                 fields=AUDIENCE_FIELDS, sort_field="last_changed",
                                 sort_dir="ASC", **extra) or {}
                page = [_remote(m) for m in doc.get("members") or []]
                if page:
                    yield page
                if len(page) < page_size:
                    break
                offset += len(page)

    def get_member(self, email: str) -> RemoteMember | None:
        try:
            doc = self._call("read member", self._lists.get_list_member, self.audience_id,
                             subscriber_hash(email), member_level=True)
        except MemberMissingError:
            return None
        return _remote(doc or {})

    # -- EspWriter -------------------------------------------------------------------

    def push_batch(self, members: Sequence[NewMember]) -> list[MemberResult]:
        if not members:
            return []
        if len(members) > MAX_BATCH:
            raise ValueError(f"at most {MAX_BATCH} members per batch call")
        items = []
        for member in members:
            item = _member_body(member.data) | {"status": member.status}
            if member.data.tags:
                item["tags"] = list(member.data.tags)
            items.append(item)
        attempts: list[tuple[datetime, bool]] = []  # (sent at, failed in a way that may land)

        def attempt(body: dict[str, Any]) -> Any:
            attempts.append((utcnow(), False))
            try:
                return self._batch_call(body)
            except ApiClientError as err:
                # A throttled answer (429, bodyless 403) was not processed; a timeout, a
                # reset or a 5xx may have been, after all.
                code = getattr(err, "status_code", None)
                attempts[-1] = (attempts[-1][0], code is None or code >= 500)
                raise

        doc = self._call("add members", attempt,
                         {"members": items, "update_existing": False}, write=True) or {}
        uncertain = next((sent for sent, may_have_landed in attempts[:-1] if may_have_landed),
                         None)
        results: dict[str, MemberResult] = {}
        for created in doc.get("new_members") or []:
            email = str(created.get("email_address", "")).lower()
            results[email] = MemberResult(email, "created", str(created.get("status") or ""))
        for updated in doc.get("updated_members") or []:
            email = str(updated.get("email_address", "")).lower()
            results[email] = MemberResult(email, "written", str(updated.get("status") or ""))
        for item in doc.get("errors") or []:
            email = str(item.get("email_address", "")).lower()
            error = batch_item_error(item)
            results[email] = (MemberResult(email, "exists", uncertain_since=uncertain)
                              if error is None
                              else MemberResult(email, "failed", error=error))
        out = []
        for member in members:
            email = member.data.email.lower()
            out.append(results.get(email) or MemberResult(
                email, "failed", error=EspTransientError("add members: no answer for member")))
        return out

    def _batch_call(self, body: dict[str, Any]) -> Any:
        """`POST /lists/{id}` through the official client's call_api, asking only for the
        fields syncd reads: the default answer repeats every new member in full (about
        1 KB each), which would cost more to transfer and parse than the write itself."""
        api_client = self._lists.api_client
        return api_client.call_api(
            "/lists/{list_id}", "POST", path_params={"list_id": self.audience_id},
            query_params=[("fields", BATCH_ANSWER_FIELDS)],
            header_params={"Accept": "application/json",
                           "Content-Type": "application/json"},
            body=body)

    def upsert_member(self, data: MemberData, *, status_if_new: str,
                      status: str | None = None) -> MemberResult:
        body = _member_body(data) | {"status_if_new": status_if_new}
        if status is not None:
            body["status"] = status
        if status == "pending":
            return self._pending_once(data.email, body)
        return self._member_write("update member", self._lists.set_list_member,
                                  data.email, body)

    def _pending_once(self, email: str, body: dict[str, Any]) -> MemberResult:
        """Every accepted `pending` makes Mailchimp mail a confirmation, also pending ->
        pending. A blind retry after a timeout or reset could mail the person twice, so
        before each retry syncd reads the member: already pending means it landed."""
        for attempt in range(self._max_retries + 1):
            try:
                return self._member_write("re-consent member", self._lists.update_list_member,
                                          email, body, retries=0)
            except EspTransientError:
                if attempt == self._max_retries:
                    raise
                ESP_RETRIES.labels(reason="pending_check").inc()
                # Full jitter, as in _call.
                time.sleep(random.uniform(0, min(self._retry_max_wait, 0.25 * 2 ** attempt)))  # noqa: S311
                remote = self.get_member(email)
                if remote is not None and remote.status == "pending":
                    return MemberResult(email.lower(), "written", "pending")
        raise AssertionError("unreachable")

    def update_member(self, data: MemberData, *, status: str | None = None) -> MemberResult:
        """PATCH a member syncd believes exists: data, and a status only when the intent
        is exactly that change (`pending` for a re-consent). PATCH answers 404 for a
        missing member and creates nothing, where a PUT with `status_if_new` would add a
        new member, e.g. at an address the person has since changed (I12)."""
        body = _member_body(data)
        if status is not None:
            body["status"] = status
        if status == "pending":
            return self._pending_once(data.email, body)
        return self._member_write("update member", self._lists.update_list_member,
                                  data.email, body)

    def rename_member(self, old_email: str, data: MemberData) -> MemberResult:
        # PATCH (not PUT): PUT would create a second member under the new address.
        return self._member_write("change member address", self._lists.update_list_member,
                                  old_email, _member_body(data))

    def set_status(self, email: str, status: str) -> MemberResult:
        return self._member_write("change member status", self._lists.update_list_member,
                                  email, {"status": status})

    def _member_write(self, what: str, fn: Callable[..., Any], email: str,
                      body: dict[str, Any], retries: int | None = None) -> MemberResult:
        try:
            doc = self._call(what, fn, self.audience_id, subscriber_hash(email), body,
                             write=True, member_level=True, retries=retries) or {}
        except MemberMissingError:
            return MemberResult(email.lower(), "missing")
        except RecentSignupsError as exc:
            return MemberResult(email.lower(), "failed", error=exc)
        except EspPermanentError as exc:
            # One refused member (compliance state, fake address, merge fields) is an
            # outcome for that contact, never a reason to stop the run.
            return MemberResult(email.lower(), "failed", error=exc)
        return MemberResult(email.lower(), "written", str(doc.get("status") or "") or None)

    def set_tags(self, email: str, *, active: Sequence[str], inactive: Sequence[str]) -> None:
        tags = ([{"name": n, "status": "active"} for n in active]
                + [{"name": n, "status": "inactive"} for n in inactive])
        if not tags:
            return
        # is_syncing: tag automations do not fire for changes that only mirror the CRM.
        self._call("set member tags", self._lists.update_list_member_tags,
                   self.audience_id, subscriber_hash(email),
                   {"tags": tags, "is_syncing": True}, write=True, member_level=True)

    def archive_member(self, subscriber_hash: str) -> None:
        """DELETE archives at Mailchimp (the member can come back with fresh consent)."""
        self._call("archive member", self._lists.delete_list_member, self.audience_id,
                   subscriber_hash, write=True, member_level=True)

    def delete_member_permanently(self, subscriber_hash: str) -> None:
        """Irreversible: Mailchimp erases the member and refuses the address for ever
        (`Forgotten Email Not Subscribed`). An absent member is already erased."""
        try:
            self._call("erase member", self._lists.delete_list_member_permanent,
                       self.audience_id, subscriber_hash, write=True, member_level=True)
        except MemberMissingError:
            return

    # -- EspWebhooks -----------------------------------------------------------------

    def list_webhooks(self) -> list[WebhookConfig]:
        doc = self._call("list webhooks", self._lists.get_list_webhooks,
                         self.audience_id) or {}
        return [_webhook(w) for w in doc.get("webhooks") or []]

    def create_webhook(self, url: str, events: Mapping[str, bool],
                       sources: Mapping[str, bool]) -> WebhookConfig:
        doc = self._call("create webhook", self._lists.create_list_webhook,
                         self.audience_id, {"url": url, "events": dict(events),
                                            "sources": dict(sources)}, write=True)
        return _webhook(doc or {})

    def update_webhook(self, webhook_id: str, url: str, events: Mapping[str, bool],
                       sources: Mapping[str, bool]) -> WebhookConfig:
        doc = self._call("update webhook", self._lists.update_list_webhook,
                         self.audience_id, webhook_id,
                         {"url": url, "events": dict(events), "sources": dict(sources)},
                         write=True)
        return _webhook(doc or {})


def mailchimp_client(settings: Settings) -> MailchimpClient:
    """The client for the configured audience; ConfigError names a missing setting."""
    api_key, audience_id = settings.require_mailchimp()
    return MailchimpClient(
        api_key=api_key, audience_id=audience_id, base_url=base_url_for(settings),
        max_connections=settings.mailchimp_max_connections,
        timeout_seconds=settings.mailchimp_timeout_seconds,
        max_retries=settings.mailchimp_max_retries,
        retry_max_wait_seconds=settings.mailchimp_retry_max_wait_seconds,
    )
