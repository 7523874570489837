"""Mailchimp behind syncd's ESP protocols (syncd.esp.protocol): the member, audience and
webhook operations, each one call through syncd.esp.mailchimp_transport (the pooled
session, the typed answers and the one retry path).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from mailchimp_marketing.api_client import ApiClientError

from syncd.addresses import subscriber_hash
from syncd.clock import utcnow
from syncd.config import Settings
from syncd.errors import ConfigError
from syncd.esp.errors import EspPermanentError
from syncd.esp.mailchimp_bodies import (
    AUDIENCE_FIELDS,
    BATCH_ANSWER_FIELDS,
    MAX_BATCH,
    batch_items,
    batch_results,
    member_body,
    permissions_body,
    remote_member,
    webhook_config,
)
from syncd.esp.mailchimp_fields import read_audience_fields
from syncd.esp.mailchimp_responses import MemberMissingError, RecentSignupsError
from syncd.esp.mailchimp_transport import Doc, MailchimpTransport
from syncd.esp.protocol import (
    AudienceFields,
    MemberData,
    MemberResult,
    NewMember,
    RemoteMember,
    WebhookConfig,
)


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


class MailchimpClient:
    """syncd's Mailchimp client: EspWriter, EspReader and EspWebhooks in one."""

    def __init__(self, *, api_key: str, audience_id: str, base_url: str,
                 max_connections: int = 10, timeout_seconds: float = 30.0,
                 max_retries: int = 6, retry_max_wait_seconds: float = 30.0) -> None:
        self.audience_id = audience_id
        self.base_url = base_url.rstrip("/")
        self.max_connections = max_connections
        self._http = MailchimpTransport(
            api_key=api_key, base_url=self.base_url, max_connections=max_connections,
            timeout_seconds=timeout_seconds, max_retries=max_retries,
            retry_max_wait_seconds=retry_max_wait_seconds)
        self._lists = self._http.lists
        self._call = self._http.call

    @property
    def write_calls(self) -> int:
        """Write calls sent so far, every retry counted (a run reports the difference)."""
        return self._http.write_calls

    def close(self) -> None:
        self._http.close()

    # -- EspReader -------------------------------------------------------------------

    def ping(self) -> None:
        """Checks the key AND the audience: one read of the audience."""
        self._call("check audience", self._lists.get_list, self.audience_id,
                   fields=["id"])

    def iter_changed_members(self, *, status: str | None, since: datetime,
                             page_size: int = 1000) -> Iterator[Sequence[RemoteMember]]:
        """`status` None: every status but archived (Mailchimp's default listing)."""
        return self._pages("read members", status, page_size,
                           since_last_changed=since.isoformat())

    def iter_audience(self, *, page_size: int = 1000) -> Iterator[Sequence[RemoteMember]]:
        """Every member of the audience, archived ones included, in pages of
        `page_size` (Mailchimp's maximum is 1000) with only the fields syncd reads:
        ceil(N / 1000) + 2 calls, one page in memory at a time. Without a `status`
        filter Mailchimp lists every status but `archived`, which needs its own pass."""
        for status in (None, "archived"):
            yield from self._pages("read audience", status, page_size)

    def _pages(self, what: str, status: str | None, page_size: int,
               **filters: Any) -> Iterator[Sequence[RemoteMember]]:
        """The members listing, oldest change first, page by page until a short page."""
        offset = 0
        extra: dict[str, Any] = {"status": status} if status else {}
        while True:
            doc = self._call(what, self._lists.get_list_members_info, self.audience_id,
                             **filters, count=page_size, offset=offset,
                             fields=AUDIENCE_FIELDS, sort_field="last_changed",
                             sort_dir="ASC", **extra) or {}
            page = [remote_member(m) for m in doc.get("members") or []]
            if page:
                yield page
            if len(page) < page_size:
                return
            offset += len(page)

    def read_audience_fields(self) -> AudienceFields:
        """GDPR fields and groups, by name (syncd.esp.mailchimp_fields)."""
        return read_audience_fields(self._http, self.audience_id)

    def get_member(self, email: str) -> RemoteMember | None:
        try:
            doc = self._call("read member", self._lists.get_list_member, self.audience_id,
                             subscriber_hash(email), member_level=True)
        except MemberMissingError:
            return None
        return remote_member(doc or {})

    # -- EspWriter -------------------------------------------------------------------

    def push_batch(self, members: Sequence[NewMember]) -> list[MemberResult]:
        if not members:
            return []
        if len(members) > MAX_BATCH:
            raise ValueError(f"at most {MAX_BATCH} members per batch call")
        items = batch_items(members)
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
        return batch_results(doc, members, uncertain)

    def _batch_call(self, body: dict[str, Any]) -> Any:
        """`POST /lists/{id}`, asking only for the fields syncd reads: the default answer
        repeats every new member in full (about 1 KB each), which would cost more to
        transfer and parse than the write itself."""
        return self._http.post("/lists/{list_id}", {"list_id": self.audience_id},
                               [("fields", BATCH_ANSWER_FIELDS)], body)

    def upsert_member(self, data: MemberData, *, status_if_new: str,
                      status: str | None = None) -> MemberResult:
        return self._write_status("update member", self._lists.set_list_member, data.email,
                                  member_body(data) | {"status_if_new": status_if_new},
                                  status)

    def update_member(self, data: MemberData, *, status: str | None = None) -> MemberResult:
        """PATCH a member syncd believes exists: data, and a status only when the intent
        is exactly that change (`pending` for a re-consent). PATCH answers 404 for a
        missing member and creates nothing, where a PUT with `status_if_new` would add a
        new member, e.g. at an address the person has since changed (I12)."""
        return self._write_status("update member", self._lists.update_list_member,
                                  data.email, member_body(data), status)

    def _write_status(self, what: str, fn: Callable[..., Any], email: str,
                      body: dict[str, Any], status: str | None) -> MemberResult:
        """A member write carrying `status` when given; `pending` is always a PATCH that
        is never repeated blindly.

        Every accepted `pending` makes Mailchimp mail a confirmation, also pending ->
        pending. A blind retry after a timeout or reset could mail the person twice, so
        before each retry syncd reads the member: already pending means it landed."""
        if status is None:
            return self._member_write(what, fn, email, body)
        body = body | {"status": status}
        if status != "pending":
            return self._member_write(what, fn, email, body)

        def landed() -> Doc:
            remote = self.get_member(email)
            return {"status": "pending"} if remote is not None and remote.status == "pending" \
                else None

        return self._member_write("re-consent member", self._lists.update_list_member,
                                  email, body, landed=landed)

    def rename_member(self, old_email: str, data: MemberData) -> MemberResult:
        # PATCH (not PUT): PUT would create a second member under the new address.
        return self._member_write("change member address", self._lists.update_list_member,
                                  old_email, member_body(data))

    def set_status(self, email: str, status: str, *,
                   marketing_permissions: Mapping[str, bool] | None = None) -> MemberResult:
        body: dict[str, Any] = {"status": status}
        if marketing_permissions:
            body["marketing_permissions"] = permissions_body(marketing_permissions)
        return self._member_write("change member status", self._lists.update_list_member,
                                  email, body)

    def _member_write(self, what: str, fn: Callable[..., Any], email: str,
                      body: dict[str, Any], landed: Callable[[], Doc] | None = None
                      ) -> MemberResult:
        try:
            doc = self._call(what, fn, self.audience_id, subscriber_hash(email), body,
                             write=True, member_level=True, landed=landed) or {}
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
        return [webhook_config(w) for w in doc.get("webhooks") or []]

    def create_webhook(self, url: str, events: Mapping[str, bool],
                       sources: Mapping[str, bool]) -> WebhookConfig:
        doc = self._call("create webhook", self._lists.create_list_webhook,
                         self.audience_id, {"url": url, "events": dict(events),
                                            "sources": dict(sources)}, write=True)
        return webhook_config(doc or {})

    def update_webhook(self, webhook_id: str, url: str, events: Mapping[str, bool],
                       sources: Mapping[str, bool]) -> WebhookConfig:
        doc = self._call("update webhook", self._lists.update_list_webhook,
                         self.audience_id, webhook_id,
                         {"url": url, "events": dict(events), "sources": dict(sources)},
                         write=True)
        return webhook_config(doc or {})


def mailchimp_client(settings: Settings, audience_id: str | None = None) -> MailchimpClient:
    """The client for `audience_id` (a target's; None: the single-audience setting);
    ConfigError names a missing setting."""
    api_key, audience_id = settings.require_mailchimp(audience_id)
    return MailchimpClient(
        api_key=api_key, audience_id=audience_id, base_url=base_url_for(settings),
        max_connections=settings.mailchimp_max_connections,
        timeout_seconds=settings.mailchimp_timeout_seconds,
        max_retries=settings.mailchimp_max_retries,
        retry_max_wait_seconds=settings.mailchimp_retry_max_wait_seconds,
    )
