"""The settings' fields: every setting's name, type, bounds and default (`SettingFields`),
an internal list's settings, and the names the environment uses."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from syncd.config.targets import TargetSettings

NEWSLETTER = "newsletter"
ENV_PREFIX = "SYNCD_"
CONFIG_ENV = "SYNCD_CONFIG"

# Settings that hold secrets: each may also come from a file named by SYNCD_<NAME>_FILE.
SECRET_FIELDS = ("mailchimp_api_key", "webhook_secrets", "pseudonym_key", "database_url",
                 "smtp_password", "signup_api_tokens", "operator_token")


class ListSettings(BaseModel):
    """An internal mailing list and the one purpose its members consented to."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    purpose: str = Field(min_length=1, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    description: str = ""
    # Marketing lists are emptied for a person who complains of abuse (Art. 21(3) GDPR).
    marketing: bool = True



class SettingFields(BaseSettings):
    """Every setting of syncd; `config/syncd.example.toml` documents each one. The rules
    across settings and the derived values are in `Settings`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, frozen=True, extra="forbid", case_sensitive=False
    )

    database_url: str = "sqlite:///syncd.db"
    # Key for keyed hashes (suppression entries, log pseudonyms). Unset: a random key is
    # generated once and kept in the database (table `installation`).
    pseudonym_key: SecretStr | None = None

    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
    # Bounds on the HTTP side (docs/threats.md, "connection exhaustion"): open connections
    # at most (lowered at start to what the descriptor limit allows), the time a client
    # has to send a request head, and a request body; idle keep-alive connections close.
    http_max_connections: int = Field(default=1000, ge=16, le=100_000)
    http_header_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    http_body_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    http_keep_alive_seconds: float = Field(default=5.0, gt=0, le=300)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["auto", "json", "console"] = "auto"

    mailchimp_api_key: SecretStr | None = None
    mailchimp_audience_id: str | None = None
    mailchimp_base_url: str | None = None
    # Mailchimp allows 10 simultaneous connections per account, across all apps.
    mailchimp_max_connections: int = Field(default=10, ge=1, le=10)
    # Mailchimp's batch subscribe endpoint takes at most 500 members per call.
    mailchimp_batch_size: int = Field(default=500, ge=1, le=500)
    mailchimp_timeout_seconds: float = Field(default=30.0, gt=0, le=120)
    mailchimp_max_retries: int = Field(default=6, ge=0, le=20)
    mailchimp_retry_max_wait_seconds: float = Field(default=30.0, gt=0)
    # CRM field -> Mailchimp merge tag. first_name/last_name or any key of a contact's
    # imported `attributes`.
    mailchimp_merge_fields: dict[str, str] = Field(
        default_factory=lambda: {"first_name": "FNAME", "last_name": "LNAME"}
    )
    # Members at the ESP that syncd never added are left alone unless this is true.
    mailchimp_manage_foreign_members: bool = False
    # Mirror internal list memberships as Mailchimp tags.
    mailchimp_sync_tags: bool = True

    sync_purpose: str = NEWSLETTER
    sync_interval_minutes: float = Field(default=15.0, gt=0)
    # A plan that would unsubscribe or archive more than this share of the audience is
    # refused unless forced: protection against a broken CRM export.
    sync_max_unsubscribe_share: float = Field(default=0.10, ge=0, le=1)
    # ... and only when the plan unsubscribes more than this many members: a handful of
    # withdrawals never waits on the size of the audience. A refused plan still sends
    # every add and update; only the unsubscribes are held, visibly, until `--force`.
    sync_unsubscribe_floor: int = Field(default=50, ge=0)
    # Consent rule 3: unconfirmed sign-ups may be pushed as `pending` so that Mailchimp
    # sends the confirmation mail. A deliberate choice, off by default.
    sync_push_unconfirmed_as_pending: bool = False

    reconcile_interval_minutes: float = Field(default=60.0, gt=0)
    # Mailchimp retries a failed webhook for 75 minutes: look back further than that.
    reconcile_overlap_minutes: float = Field(default=90.0, ge=0)

    # `syncd serve` refuses to start without a webhook secret unless this is false: a
    # service answering every delivery 401 would learn of unsubscribes only by reconciling.
    webhook_enabled: bool = True
    webhook_secrets: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    # Every delivery is answered within this (503 if the purge could not commit in time):
    # Mailchimp gives up after 10 s, so the answer must come well before.
    webhook_deadline_seconds: float = Field(default=5.0, ge=0.5, le=9.0)
    webhook_max_body_bytes: int = Field(default=65536, ge=1024, le=1048576)
    # Which side wins for names and merge fields on a `profile` webhook.
    webhook_profile_master: Literal["crm", "esp"] = "crm"
    inbox_max_attempts: int = Field(default=5, ge=1)
    inbox_retry_interval_minutes: float = Field(default=5.0, gt=0)

    # Least data kept (Art. 5(1)(c,e)): raw webhook bodies hold addresses.
    retention_webhook_body_days: int = Field(default=30, ge=0)
    retention_run_history_days: int = Field(default=400, ge=1)
    # The consent lifecycle (docs/operations.md, retention table); 0 turns a rule off.
    # A sign-up never confirmed is not consent: its data goes after this many days.
    retention_unconfirmed_days: int = Field(default=30, ge=0)
    # A contact with no purpose left (no consent, not a customer, on no list) is erased
    # after this many days without one; the suppression entry stays (rule 8).
    retention_no_purpose_days: int = Field(default=180, ge=0)
    # A confirmed consent older than this is flagged for re-permission (not acted on).
    retention_repermission_days: int = Field(default=730, ge=0)
    # Audit entries older than this are deleted (the limitation period for claims).
    retention_audit_days: int = Field(default=1826, ge=0)
    readiness_max_sync_age_minutes: float = Field(default=120.0, gt=0)

    # Bearer token for the operator endpoints (/status, the DSAR API). Unset: /status
    # answers loopback only and the DSAR API is off.
    operator_token: SecretStr | None = None
    # /status without a token from 127.0.0.1/::1 (never through a proxy that forwards).
    status_allow_localhost: bool = True
    # POSTed a JSON alert when a sync fails twice, withdrawals are held, events are parked
    # or the inbox is stuck (checked by the service every inbox-retry interval).
    alert_webhook_url: str | None = None
    # The inbox counts as stuck when an event waits longer than this.
    alert_inbox_stuck_minutes: float = Field(default=30.0, gt=0)
    # Graceful shutdown bound: on SIGTERM the current batch finishes and checkpoints, then
    # the process exits; systemd TimeoutStopSec / Docker stop_grace_period must exceed it.
    shutdown_timeout_seconds: float = Field(default=30.0, gt=0, le=600)

    # Sync targets ([[targets]] tables), one audience each. None given: the single-audience
    # settings above ([mailchimp] audience_id, sync_purpose, ...) are one target, "default".
    targets: list[TargetSettings] = Field(default_factory=list)

    lists: dict[str, ListSettings] = Field(
        default_factory=lambda: {"newsletter": ListSettings(purpose=NEWSLETTER)}
    )

    # Mail (syncd's own double opt-in, preference page): a real mail server in production.
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = True
    smtp_timeout_seconds: float = Field(default=20.0, gt=0, le=300)
    mail_from: str | None = None
    # Where people reach syncd's pages: the links in mails start with it.
    public_base_url: str | None = None

    # Who runs the double opt-in of a sign-up: syncd (its own mail, needs smtp_host) or
    # esp (pushed as pending, Mailchimp mails; needs sync_push_unconfirmed_as_pending);
    # auto: syncd when a mail server is set, else esp when pending pushes are on, else off.
    signup_double_opt_in: Literal["auto", "syncd", "esp"] = "auto"
    # Bearer tokens for POST /api/v1/signups; several during a rotation (>= 24 characters).
    signup_api_tokens: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    # Origins whose pages may call the sign-up API from a browser (CORS); none by default.
    signup_cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Internal lists a confirmed sign-up joins (each for the purpose it names).
    signup_lists: Annotated[list[str], NoDecode] = Field(default_factory=list)
    signup_max_body_bytes: int = Field(default=16384, ge=1024, le=1048576)
    signup_rate_per_ip_per_hour: int = Field(default=30, ge=1)
    signup_rate_per_address_per_hour: int = Field(default=5, ge=1)
    # At most one confirmation mail per address and purpose within this many hours.
    signup_mail_window_hours: float = Field(default=24.0, ge=0)
    signup_token_expiry_days: int = Field(default=7, ge=1, le=90)
    # A form field people never see: a bot that fills it in is answered, not recorded.
    signup_honeypot_field: str = Field(default="website", min_length=1, max_length=64)
    # The version of the text of syncd's own form at GET /signup (rule 4).
    signup_form_text_version: str = "syncd-form-1"
    signup_privacy_notice_version: str = "unset"
    # Purpose -> {language: label} for pages and mails; unset: the purpose's name.
    signup_purpose_labels: dict[str, dict[str, str]] = Field(default_factory=dict)
    # Days a personal preference-page link stays valid.
    preferences_link_days: int = Field(default=365, ge=1)
    # A directory whose templates replace syncd's own (pages and mails, same names).
    pages_template_dir: str | None = None
    pages_default_language: Literal["nl", "en"] = "nl"
    outbox_interval_seconds: float = Field(default=10.0, gt=0)
    outbox_max_attempts: int = Field(default=8, ge=1)
