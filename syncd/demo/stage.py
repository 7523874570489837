"""The demo's stage: a directory with a fresh SQLite file, the Mailchimp emulator (the
newsletter audience with its GDPR field, and the offers audience) and the
real HTTP service (the app `syncd serve` runs, on uvicorn), all on 127.0.0.1 with ports
the system picks, configured through the production Settings (syncd/demo/demo.toml plus
overrides for what is made fresh here). Everything started is stopped on exit; the
directory is removed unless the caller chose it."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import uvicorn

from mailchimp_emulator import MailchimpEmulator
from syncd import logs
from syncd.clock import utcnow
from syncd.config import ENV_PREFIX, Settings, load_settings
from syncd.config.targets import TargetSettings
from syncd.context import AppContext
from syncd.demo.cast import REFUSED_BY_MAILCHIMP
from syncd.demo.mail_sink import MailSink
from syncd.errors import ConfigError

DB_NAME = "syncd.db"
NEWSLETTER_TARGET, OFFERS_TARGET = "newsletter", "offers"
# A member of the newsletter audience from before syncd, in no CRM at all (step 5).
PRE_EXISTING = "old.list@example.com"
KEPT_CONFIG_NAME = "syncd.toml"
START_TIMEOUT_SECONDS = 10.0
# The service's own bound for open requests at stop; webhooks answer in milliseconds.
STOP_TIMEOUT_SECONDS = 10.0


def demo_config_path() -> Path:
    """The demo's settings file, shipped inside the package (so `syncd demo` works from an
    installed wheel too, not only from a source checkout)."""
    path = Path(__file__).with_name("demo.toml")
    if not path.is_file():
        raise ConfigError(f"the demo's settings file is missing from the installation: {path}")
    return path


@contextlib.contextmanager
def _without_syncd_environment() -> Iterator[list[str]]:
    """SYNCD_* variables are set aside while the demo's settings load: a production
    database or API key must never reach the demo. Yields their names (never values)."""
    saved = {k: v for k, v in os.environ.items() if k.upper().startswith(ENV_PREFIX)}
    for name in saved:
        del os.environ[name]
    try:
        yield sorted(saved)
    finally:
        os.environ.update(saved)


def _bind_loopback() -> socket.socket:
    """A listening address on 127.0.0.1 the system picks, bound before the settings are
    made so that they can name the real port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


class Service:
    """The service's HTTP app on uvicorn in a thread (the scheduler stays off: the demo
    runs each job itself, so what it shows is that job, not a race with a timer)."""

    def __init__(self, ctx: AppContext, sock: socket.socket) -> None:
        self.ctx = ctx
        self._socket = sock
        self.port = int(sock.getsockname()[1])
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        from syncd.service.app import create_app

        config = uvicorn.Config(create_app(self.ctx), log_config=None, access_log=False,
                                lifespan="on", server_header=False,
                                timeout_graceful_shutdown=int(STOP_TIMEOUT_SECONDS))
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(target=server.run, kwargs={"sockets": [self._socket]},
                                        name="syncd-demo-service", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the service did not start on 127.0.0.1")
            time.sleep(0.02)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=STOP_TIMEOUT_SECONDS + 5)
        self._socket.close()
        self.ctx.close()


@dataclass
class Stage:
    """Start with `with Stage(directory) as stage:`; `directory` None: a temporary one."""

    chosen_directory: Path | None = None
    # The demo's clock: the sample's purchases are dated relative to it (cast.sample_text).
    clock: Callable[[], datetime] = utcnow
    directory: Path = field(init=False)
    settings: Settings = field(init=False)
    emulator: MailchimpEmulator = field(init=False)
    ctx: AppContext = field(init=False)
    service: Service = field(init=False)
    mail_sink: MailSink = field(init=False)
    webhook_secret: str = field(init=False, repr=False)
    ignored_environment: list[str] = field(default_factory=list)
    config_path: Path = field(init=False)
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def __enter__(self) -> Self:
        try:
            self._open()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stack.close()

    @property
    def kept(self) -> bool:
        return self.chosen_directory is not None

    @property
    def newsletter(self) -> TargetSettings:
        """The newsletter target (consent, GDPR field Email)."""
        return self.settings.target(NEWSLETTER_TARGET)

    @property
    def offers(self) -> TargetSettings:
        """The offers target (soft opt-in basis)."""
        return self.settings.target(OFFERS_TARGET)

    @property
    def webhook_url(self) -> str:
        """The URL Mailchimp is given: it ends in the secret (never printed unmasked)."""
        return f"{self.service.base_url}/webhooks/mailchimp/{self.webhook_secret}"

    def _open(self) -> None:
        self.directory = self._make_directory()
        self.config_path = demo_config_path()
        with _without_syncd_environment() as ignored:
            self.ignored_environment = ignored
            configured = {t.name: t for t in load_settings(self.config_path).sync_targets}
            if set(configured) != {NEWSLETTER_TARGET, OFFERS_TARGET}:
                raise ConfigError(f"{self.config_path}: the demo needs the [[targets]] "
                                  f"{NEWSLETTER_TARGET} and {OFFERS_TARGET}")
            newsletter, offers = configured[NEWSLETTER_TARGET], configured[OFFERS_TARGET]
            # The newsletter audience has Mailchimp's GDPR fields, as EU audiences do; the
            # offers audience is a second one of the same account.
            self.emulator = MailchimpEmulator(
                list_id=newsletter.audience_id,
                marketing_permissions=tuple(newsletter.marketing_permissions))
            self.emulator.add_audience(offers.audience_id, name="Offers to customers")
            # Mailchimp GETs a webhook URL when it is saved; it refuses addresses it
            # thinks are fake ("looks fake or invalid"). syncd itself already refuses
            # `.invalid` domains at import, so the fake one here is a plausible address.
            self.emulator.configure(validate_webhook_urls=True, refused_addresses=frozenset(
                {REFUSED_BY_MAILCHIMP.email}))
            self.emulator.start()
            self._stack.callback(self.emulator.stop)
            # Every real audience has members from before syncd; Mailchimp shows the ids
            # of its GDPR fields only on members (docs/mailchimp.md section 6).
            self.emulator.seed_member(PRE_EXISTING, "subscribed")
            self.webhook_secret = secrets.token_urlsafe(32)
            # The mail server of syncd's own double opt-in: a local sink.
            self.mail_sink = MailSink().start()
            self._stack.callback(self.mail_sink.stop)
            sock = _bind_loopback()
            self._stack.callback(sock.close)
            port = int(sock.getsockname()[1])
            self.settings = load_settings(self.config_path, **self._overrides(port))
        self.ctx = AppContext.open(self.settings)
        self._stack.callback(self.ctx.close)
        from syncd.migrate import upgrade

        upgrade(self.ctx.engine)
        self.ctx.sync_lists()
        logs.configure(level=self.settings.log_level, fmt=self.settings.log_format,
                       keyring=self.ctx.keyring,
                       secrets=(self.webhook_secret, self.emulator.api_key))
        # Its own context, as a separate `syncd serve` process would have.
        self.service = Service(AppContext.open(self.settings), sock)
        self._stack.callback(self.service.stop)
        self.service.start()
        if self.kept:
            self._write_kept_config()

    def _overrides(self, port: int) -> dict[str, Any]:
        return {
            "database_url": f"sqlite:///{self.directory / DB_NAME}",
            "mailchimp_api_key": self.emulator.api_key,
            "mailchimp_base_url": self.emulator.base_url,
            "http_host": "127.0.0.1",
            "http_port": port,
            "webhook_secrets": [self.webhook_secret],
            "smtp_host": "127.0.0.1",
            "smtp_port": self.mail_sink.port,
            "smtp_starttls": False,  # loopback only: nothing leaves the machine
            "public_base_url": f"http://127.0.0.1:{port}",
        }

    def _make_directory(self) -> Path:
        if self.chosen_directory is None:
            made = Path(tempfile.mkdtemp(prefix="syncd-demo-"))
            self._stack.callback(shutil.rmtree, made, ignore_errors=True)
            return made
        chosen = self.chosen_directory.expanduser().resolve()
        if chosen.exists() and not chosen.is_dir():
            raise ConfigError(f"--dir {chosen}: not a directory")
        if (chosen / DB_NAME).exists():
            raise ConfigError(f"--dir {chosen}: holds a {DB_NAME} from an earlier demo; "
                              "choose an empty directory (the emulator starts empty each run)")
        try:
            chosen.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"--dir {chosen}: cannot create it: {exc.strerror}") from None
        if not os.access(chosen, os.W_OK | os.X_OK):
            raise ConfigError(f"--dir {chosen}: not writable")
        return chosen

    def _write_kept_config(self) -> None:
        """A settings file beside the kept database, so that `syncd --config DIR/syncd.toml
        contacts list` reads it afterwards (no secret in it: the emulator is gone)."""
        lines = [line for line in self.config_path.read_text(encoding="utf-8").splitlines()
                 if not line.startswith("database_url")]
        head = (f"# Written by `syncd demo --dir`: the demo's settings, its database.\n"
                f"database_url = \"sqlite:///{self.directory / DB_NAME}\"\n")
        (self.directory / KEPT_CONFIG_NAME).write_text(head + "\n".join(lines) + "\n",
                                                       encoding="utf-8")
