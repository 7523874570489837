"""The whole system on loopback, for the proof tests: a database (SQLite or PostgreSQL),
the real service app (webhook endpoint included) on a real uvicorn, a Mailchimp emulator
whose webhooks are registered to that app, a model-controlled clock for the emulator and
a log of every write request the emulator received (what syncd SENT, for I2).

`World(..., two_targets=True)`: two sync targets, each with its own audience and the
one webhook URL registered on both (events routed by their list_id): the newsletter
(consent) in the default audience, offers (soft opt-in, purchases in the imports) in a
second one.

Nothing here stands in for syncd: imports go through the importer, syncs through
`run_sync`, webhooks through the emulator's `fire_*` and real HTTP POSTs."""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, text

from mailchimp_emulator import MailchimpEmulator, RequestInfo
from mailchimp_emulator.members import subscriber_hash
from syncd.config import Settings
from syncd.config.targets import TargetSettings
from syncd.context import AppContext
from syncd.crm.importer import import_file
from syncd.schema import Base
from syncd.service.app import create_app
from tests.conftest import TEST_AUDIENCE_ID, TEST_WEBHOOK_SECRET, emulated_settings
from tests.webhooks.conftest import Served, serve_app

LIVE = frozenset({"subscribed", "pending"})
WRITE_PATTERN = r"^(PUT|PATCH|POST) /3\.0/"
MEMBER_PATH = re.compile(r"/lists/([^/]+)/members/([0-9a-f]{32})$")
BATCH_PATH = re.compile(r"^/3\.0/lists/([^/]+)$")
OFFERS_AUDIENCE = "0ffe7512ab"
# The model unsubscribes a large share of a tiny audience on purpose: no safety limit.
NEWSLETTER_TARGET = TargetSettings(name="newsletter", audience_id=TEST_AUDIENCE_ID,
                                   purposes=("newsletter",), max_unsubscribe_share=1.0)
OFFERS_TARGET = TargetSettings(name="offers", audience_id=OFFERS_AUDIENCE,
                               purposes=("offers",), basis="soft_opt_in",
                               max_unsubscribe_share=1.0)
# Tables the tests own; installation, internal lists and the schema version stay.
KEPT_TABLES = ("alembic_version", "installation", "internal_lists")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class ModelClock:
    """The emulator's clock (so `fired_at` and `last_changed`), moved by the model only.
    Whole seconds (Mailchimp's fired_at has no fraction) and in the past, so that every
    moment the model makes is strictly ordered and older than the real `now` the policy
    and an erasure use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.restart()

    def restart(self) -> None:
        with self._lock:
            self.now = (datetime.now(UTC) - timedelta(days=30)).replace(microsecond=0)

    def __call__(self) -> datetime:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> datetime:
        with self._lock:
            self.now += timedelta(seconds=max(1, int(seconds)))
            return self.now


@dataclass(frozen=True)
class SentWrite:
    """One write request the emulator received and was about to apply (after faults)."""

    method: str
    path: str
    body: Any
    # status of each addressed member just before the request: None if absent
    before: dict[str, str | None]


@dataclass
class WriteLog:
    """Every write syncd sent to the emulator, with the members' statuses before it."""

    emulator: MailchimpEmulator
    writes: list[SentWrite] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, request: RequestInfo) -> None:
        before: dict[str, str | None] = {}
        body = request.body if isinstance(request.body, dict) else {}
        member = MEMBER_PATH.search(request.path)
        batch = BATCH_PATH.match(request.path)
        if member:
            found = self._member(member.group(2), member.group(1))
            before[member.group(2)] = found["status"] if found else None
        elif batch:
            for item in body.get("members") or []:
                email = item.get("email_address") if isinstance(item, dict) else None
                if isinstance(email, str):
                    found = self._member(email, batch.group(1))
                    before[subscriber_hash(email)] = found["status"] if found else None
        with self._lock:
            self.writes.append(SentWrite(request.method, request.path, request.body, before))

    def _member(self, email_or_hash: str, list_id: str) -> dict[str, Any] | None:
        """The member in the audience the request addresses (the write's own)."""
        try:
            return self.emulator.member(email_or_hash, list_id=list_id)
        except LookupError:  # an audience the account does not have: Mailchimp's 404
            return None

    def install(self) -> None:
        self.emulator.set_hook(self, match=WRITE_PATTERN)

    def resubscribes(self) -> list[str]:
        """I2: requests that would set `subscribed` on a member that exists (not archived).
        A batch with update_existing false never touches an existing member."""
        found = []
        for write in list(self.writes):
            body = write.body if isinstance(write.body, dict) else {}
            if MEMBER_PATH.search(write.path):
                (status,) = write.before.values()
                if body.get("status") == "subscribed" and status not in (None, "archived"):
                    found.append(f"{write.method} member (was {status}) status=subscribed")
            elif BATCH_PATH.match(write.path) and body.get("update_existing"):
                for item in body.get("members") or []:
                    status = write.before.get(subscriber_hash(item.get("email_address", "")))
                    if item.get("status") == "subscribed" and status not in (None, "archived"):
                        found.append(f"batch update_existing (was {status}) status=subscribed")
        return found


class BodyRecorder:
    """ASGI wrapper that keeps the raw bodies POSTed to the webhook route (for replays)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.bodies: list[bytes] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope.get("path", "").startswith("/webhooks/"):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []

        async def tee() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    self.bodies.append(b"".join(chunks))
            return message

        await self.app(scope, tee, send)


def proof_settings(database_url: str, emu: MailchimpEmulator, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "mailchimp_retry_max_wait_seconds": 0.005,
        "mailchimp_max_retries": 4,
        # Small batches: a run over a handful of contacts still has a first, middle
        # and last batch for the faults and crashes to hit.
        "mailchimp_batch_size": 2,
        # The model unsubscribes a large share of a tiny audience on purpose.
        "sync_max_unsubscribe_share": 1.0,
        "webhook_profile_master": "esp",
    }
    return emulated_settings(database_url, emu, **(values | overrides))


def empty_database(ctx: AppContext) -> None:
    """Every row the tests write, gone; the configured lists back in place."""
    names = [t.name for t in Base.metadata.sorted_tables if t.name not in KEPT_TABLES]
    with ctx.engine.begin() as conn:
        if ctx.engine.dialect.name == "postgresql":
            conn.execute(text("TRUNCATE " + ", ".join(f'"{n}"' for n in names)
                              + " RESTART IDENTITY CASCADE"))
        else:
            # The ledger's triggers refuse a DELETE without tombstone (as they must in
            # production); a test reset lifts them for the moment of the reset only.
            triggers = conn.execute(text(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")).all()
            for name, _ in triggers:
                conn.execute(text(f'DROP TRIGGER "{name}"'))
            for name in reversed(names):
                conn.execute(text(f'DELETE FROM "{name}"'))
            for _, sql in triggers:
                conn.execute(text(sql))
    ctx.sync_lists()


def state_hash(ctx: AppContext, *, skip: tuple[str, ...] = ()) -> str:
    """A digest of every row of every table (I5: a replay must leave it unchanged)."""
    digest = hashlib.sha256()
    with ctx.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            if table.name in skip:
                continue
            order = list(table.primary_key.columns)
            for row in conn.execute(select(table).order_by(*order)):
                digest.update(repr((table.name, tuple(row))).encode())
    return digest.hexdigest()


def table_counts(ctx: AppContext, tables: tuple[str, ...]) -> dict[str, int]:
    with ctx.engine.connect() as conn:
        return {t: int(conn.execute(text(f'select count(*) from "{t}"')).scalar_one())
                for t in tables}


class World:
    """One database, one emulator, the service app served on loopback."""

    def __init__(self, database_url: str, tmp_path: Path, *, two_targets: bool = False,
                 **overrides: Any) -> None:
        self.clock = ModelClock()
        self.emu = MailchimpEmulator(list_id=TEST_AUDIENCE_ID, clock=self.clock, audiences=(
            (OFFERS_AUDIENCE,) if two_targets else ())).start()
        if two_targets:
            overrides = {"mailchimp_audience_id": None,
                         "targets": [NEWSLETTER_TARGET, OFFERS_TARGET]} | overrides
        self.settings = proof_settings(database_url, self.emu, **overrides)
        self.ctx = AppContext.open(self.settings)
        self.ctx.sync_lists()
        self.recorder = BodyRecorder(create_app(self.ctx))
        self.served: Served = serve_app(self.recorder)  # type: ignore[arg-type]
        self.writes = WriteLog(self.emu)
        self.tmp_path = tmp_path
        self._files = 0
        self.prepare_emulator()

    @property
    def webhook_url(self) -> str:
        return self.served.url(TEST_WEBHOOK_SECRET)

    def prepare_emulator(self) -> None:
        self.emu.reset()
        # The live API was reported to accept a re-subscribe: let a bug show as state.
        for audience in self.audiences:
            self.emu.configure(audience, allow_api_resubscribe=True)
            self.emu.audience_of(audience).webhooks.add({"url": self.webhook_url})
        self.writes.writes.clear()
        self.writes.install()

    def clear_faults(self) -> None:
        self.emu.clear_faults()  # also drops hooks: put the write log back
        self.writes.install()

    def reset(self) -> None:
        self.clock.restart()
        empty_database(self.ctx)
        self.prepare_emulator()
        self.recorder.bodies.clear()

    def import_lines(self, lines: list[dict[str, Any]]) -> None:
        self._files += 1
        path = self.tmp_path / f"import-{self._files}.jsonl"
        path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
        report = import_file(self.ctx, path)
        assert report.applied, [str(e) for e in report.errors]

    @property
    def audiences(self) -> list[str]:
        """The list ids of the account, the default (newsletter) audience first."""
        return list(self.emu.audiences)

    def statuses(self, list_id: str | None = None) -> dict[str, str]:
        """address (lower-cased) -> status at the emulator, every member of the audience
        (None: the default one)."""
        return {m["email_address"].lower(): m["status"]
                for m in self.emu.members(list_id=list_id)}

    def close(self) -> None:
        self.served.stop()
        self.emu.stop()
        self.ctx.close()


def at_text(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
