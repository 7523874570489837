"""The audience webhook at Mailchimp: register it right, and check that it still is.

Events subscribe, unsubscribe, profile, cleaned and upemail; campaign off (stored and
ignored anyway). Sources user and admin, NOT api: with api on, every write syncd makes
comes back to it as a webhook (a feedback loop, docs/mailchimp.md section 1). The URL must be
https (http only for 127.0.0.1/localhost) and end in one of the configured secrets,
which is how Mailchimp's unsigned webhooks are authenticated. Secrets are shown masked.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from syncd.errors import InputError
from syncd.esp.protocol import EspWebhooks, WebhookConfig

EVENTS = {"subscribe": True, "unsubscribe": True, "profile": True, "cleaned": True,
          "upemail": True, "campaign": False}
SOURCES = {"user": True, "admin": True, "api": False}
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def mask(secret: str) -> str:
    """Enough to tell two secrets apart, never enough to use one."""
    return (secret[:3] + "…" + f"({len(secret)} chars)") if len(secret) > 8 else "…"


def _last_segment(url: str) -> str:
    return urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]


def masked_url(url: str) -> str:
    """The URL with its last path segment (the secret) masked."""
    parts = urlsplit(url)
    head, _, last = parts.path.rstrip("/").rpartition("/")
    return urlunsplit((parts.scheme, parts.netloc, f"{head}/{mask(last)}", "", ""))


def carries_secret(url: str, secrets: Sequence[str]) -> bool:
    last = _last_segment(url).encode("utf-8")
    found = False
    for secret in secrets:  # constant time, every secret compared
        found |= hmac.compare_digest(last, secret.encode("utf-8"))
    return found


def validate_url(url: str, secrets: Sequence[str]) -> None:
    """InputError naming what is wrong; the message never contains the secret."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise InputError("webhook URL must be an absolute https:// URL")
    if parts.scheme == "http" and parts.hostname not in LOCAL_HOSTS:
        raise InputError("webhook URL must use https (http is allowed only for 127.0.0.1 "
                         "and localhost)")
    if parts.query or parts.fragment:
        raise InputError("webhook URL must not have a query string or fragment")
    if not secrets:
        raise InputError("no webhook secret is configured (SYNCD_WEBHOOK_SECRETS)")
    if not carries_secret(url, secrets):
        raise InputError("the webhook URL's last path segment must be one of the configured "
                         "webhook secrets (…/webhooks/mailchimp/<secret>)")


def _base(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/').rpartition('/')[0]}"


@dataclass(frozen=True)
class Registration:
    webhook: WebhookConfig
    created: bool


def register(esp: EspWebhooks, url: str, secrets: Sequence[str]) -> Registration:
    """Create the webhook, or update the one already pointing at this endpoint (same
    URL up to the secret, or carrying a configured secret) to the right settings."""
    validate_url(url, secrets)
    existing = [w for w in esp.list_webhooks()
                if _base(w.url) == _base(url) or carries_secret(w.url, secrets)]
    if existing:
        hook = existing[0]
        return Registration(esp.update_webhook(hook.id, url, EVENTS, SOURCES), created=False)
    return Registration(esp.create_webhook(url, EVENTS, SOURCES), created=True)


@dataclass(frozen=True)
class Finding:
    webhook_id: str | None
    url: str  # masked
    problem: str


def check(esp: EspWebhooks, secrets: Sequence[str]) -> tuple[list[WebhookConfig], list[Finding]]:
    """(webhooks carrying a configured secret, problems). No such webhook is a problem;
    so is one with api on, an event off, or a URL that is not https."""
    hooks = esp.list_webhooks()
    ours = [w for w in hooks if carries_secret(w.url, secrets)]
    findings: list[Finding] = []
    if not ours:
        findings.append(Finding(None, "", "no audience webhook carries a configured secret "
                                          "(run `syncd webhooks register --url …`)"))
    for hook in hooks:
        shown = masked_url(hook.url)
        if hook not in ours:
            if hook.sources.get("api"):
                findings.append(Finding(hook.id, shown, "another webhook has source api on: "
                                                        "syncd's own writes echo back to it"))
            if "/webhooks/mailchimp/" in hook.url:
                findings.append(Finding(hook.id, shown, "URL does not end in a configured "
                                                        "secret (rotated out?)"))
            continue
        if hook.sources.get("api"):
            findings.append(Finding(hook.id, shown, "source api is on: syncd's own writes "
                                                    "would come back as webhooks"))
        missing = sorted(e for e, wanted in EVENTS.items() if wanted and not hook.events.get(e))
        if missing:
            findings.append(Finding(hook.id, shown, "events off: " + ", ".join(missing)))
        off = sorted(s for s, wanted in SOURCES.items() if wanted and not hook.sources.get(s))
        if off:
            findings.append(Finding(hook.id, shown, "sources off: " + ", ".join(off)))
        try:
            validate_url(hook.url, secrets)
        except InputError as exc:
            findings.append(Finding(hook.id, shown, str(exc)))
    return ours, findings
