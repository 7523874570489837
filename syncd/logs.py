"""Logging: structlog configured once. JSON when not on a terminal, readable on one.

I9: no secret, token or raw address in any sink. A processor drops secret-named keys and
replaces every address it finds, in keys and in free text, with a keyed pseudonym;
stdlib logging (uvicorn, APScheduler, SQLAlchemy) is routed through the same chain."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable, MutableMapping
from typing import Any
from urllib.parse import unquote

import structlog

from syncd.keys import Keyring

SECRET_KEY_PATTERN = re.compile(
    r"(secret|token|password|passwd|api_?key|authorization|cookie|dsn|database_url)", re.I)
# Addresses, also URL-encoded (%40) as they appear in webhook bodies and query strings.
ADDRESS_PATTERN = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+(?:@|%40)[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
# URL userinfo (postgresql://user:password@host) and Mailchimp keys (<32 hex>-<dc>).
URL_PASSWORD_PATTERN = re.compile(r"(://[^:/@\s]*:)[^@\s]+@")
MAILCHIMP_KEY_PATTERN = re.compile(r"\b[0-9a-f]{32}-[a-z]{2,4}[0-9]{1,3}\b")
REDACTED = "[redacted]"


class Redactor:
    """The redaction processor. Known secrets (from settings) are replaced wherever they
    appear; addresses become pseudonyms; secret-named keys are dropped."""

    def __init__(self, keyring: Keyring | None = None, secrets: tuple[str, ...] = ()) -> None:
        self.keyring = keyring
        self.secrets = tuple(s for s in secrets if s)

    def scrub_text(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        text = URL_PASSWORD_PATTERN.sub(r"\1" + REDACTED + "@", text)
        text = MAILCHIMP_KEY_PATTERN.sub(REDACTED, text)
        return ADDRESS_PATTERN.sub(self._pseudonym, text)

    def _pseudonym(self, match: re.Match[str]) -> str:
        address = unquote(match.group(0)).lower()
        return self.keyring.pseudonym(address) if self.keyring else "<address>"

    def scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.scrub_text(value)
        if isinstance(value, dict):
            return {k: (REDACTED if SECRET_KEY_PATTERN.search(str(k)) else self.scrub(v))
                    for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.scrub(v) for v in value]
        if isinstance(value, BaseException):
            return self.scrub_text(f"{type(value).__name__}: {value}")
        return value

    def __call__(self, _logger: Any, _method: str,
                 event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        for key in list(event_dict):
            if SECRET_KEY_PATTERN.search(key):
                event_dict[key] = REDACTED
            else:
                event_dict[key] = self.scrub(event_dict[key])
        return event_dict


_redactor = Redactor()


def redactor() -> Redactor:
    return _redactor


def _scrub_exception(_logger: Any, _method: str,
                     event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    # Tracebacks carry messages and local reprs: scrub the rendered text too.
    if "exception" in event_dict and isinstance(event_dict["exception"], str):
        event_dict["exception"] = _redactor.scrub_text(event_dict["exception"])
    return event_dict


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is at each record, not the one of configure(): a
    handler holding a replaced stream (a test runner's capture, closed since) makes every
    later record, from any thread, a "Logging error" on a closed file."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass  # always the current sys.stderr


def configure(*, level: str = "info", fmt: str = "auto", keyring: Keyring | None = None,
              secrets: tuple[str, ...] = (), stream: Any = None) -> None:
    """Configure structlog and stdlib logging once per process."""
    global _redactor  # noqa: PLW0603 - one process-wide redactor, replaced on reconfigure
    _redactor = Redactor(keyring, secrets)
    out = stream or sys.stderr
    as_json = fmt == "json" or (fmt == "auto" and not out.isatty())
    shared: list[Callable[..., Any]] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        _redactor,
        _scrub_exception,
    ]
    renderer: Any = (structlog.processors.JSONRenderer() if as_json
                     else structlog.dev.ConsoleRenderer(colors=out.isatty()))
    structlog.configure(
        processors=[structlog.stdlib.filter_by_level, *shared,
                    structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.ExtraAdder(), *shared],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("sqlalchemy.engine", "urllib3", "apscheduler.executors.default", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def url_password(url: str) -> tuple[str, ...]:
    """The password of a database URL, as a known secret: a driver error can quote it
    outside a URL, where the URL pattern does not see it."""
    from sqlalchemy.engine import make_url

    try:
        password = make_url(url).password
    except Exception:  # not a URL: the setting is refused elsewhere, with its name
        return ()
    return (str(password),) if password else ()


def get_logger(name: str) -> Any:
    return structlog.stdlib.get_logger(name)
