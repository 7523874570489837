"""Settings: one immutable object, loaded once from a TOML file, then `SYNCD_*` environment
variables, then `SYNCD_*_FILE` for secrets (Docker/systemd credentials). Validated at start;
every error names the setting to fix."""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from syncd.errors import ConfigError

NEWSLETTER = "newsletter"
ENV_PREFIX = "SYNCD_"
CONFIG_ENV = "SYNCD_CONFIG"

# Settings that hold secrets: each may also come from a file named by SYNCD_<NAME>_FILE.
SECRET_FIELDS = ("mailchimp_api_key", "webhook_secrets", "pseudonym_key", "database_url",
                 "operator_token")


class ListSettings(BaseModel):
    """An internal mailing list and the one purpose its members consented to."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    purpose: str = Field(min_length=1, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    description: str = ""
    # Marketing lists are emptied for a person who complains of abuse (Art. 21(3) GDPR).
    marketing: bool = True


def _split_commas(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Every setting of syncd; `config/syncd.example.toml` documents each one."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, frozen=True, extra="forbid", case_sensitive=False
    )

    database_url: str = "sqlite:///syncd.db"
    # Key for keyed hashes (suppression entries, log pseudonyms). Unset: a random key is
    # generated once and kept in the database (table `installation`).
    pseudonym_key: SecretStr | None = None

    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)
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
    # Consent rule 3: unconfirmed sign-ups may be pushed as `pending` so that Mailchimp
    # sends the confirmation mail. A deliberate choice, off by default.
    sync_push_unconfirmed_as_pending: bool = False

    reconcile_interval_minutes: float = Field(default=60.0, gt=0)
    # Mailchimp retries a failed webhook for 75 minutes: look back further than that.
    reconcile_overlap_minutes: float = Field(default=90.0, ge=0)

    webhook_secrets: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
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

    lists: dict[str, ListSettings] = Field(
        default_factory=lambda: {"newsletter": ListSettings(purpose=NEWSLETTER)}
    )

    @field_validator("webhook_secrets", mode="before")
    @classmethod
    def _secrets_from_commas(cls, value: Any) -> Any:
        return _split_commas(value)

    @field_validator("webhook_secrets")
    @classmethod
    def _secrets_long_enough(cls, value: list[SecretStr]) -> list[SecretStr]:
        for secret in value:
            if len(secret.get_secret_value()) < 16:
                raise ValueError("each webhook secret needs at least 16 characters")
        return value

    @field_validator("operator_token")
    @classmethod
    def _token_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 24:
            raise ValueError("the operator token needs at least 24 characters")
        return value

    @field_validator("alert_webhook_url")
    @classmethod
    def _alert_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value or None

    @field_validator("lists")
    @classmethod
    def _list_names(cls, value: dict[str, ListSettings]) -> dict[str, ListSettings]:
        for name in value:
            if not name or len(name) > 100:
                raise ValueError(f"list name {name!r} must have 1 to 100 characters")
        return value

    @field_validator("mailchimp_base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/") if value else value

    @property
    def purposes(self) -> frozenset[str]:
        """Known purposes: the newsletter and every purpose a configured list names."""
        return frozenset({NEWSLETTER, self.sync_purpose} | {c.purpose for c in self.lists.values()})

    def lists_of_purpose(self, purpose: str) -> list[str]:
        return sorted(name for name, cfg in self.lists.items() if cfg.purpose == purpose)

    def require_audience_id(self) -> str:
        """The audience id, for the runs that read or write it."""
        if not self.mailchimp_audience_id:
            raise ConfigError(f"this command talks to Mailchimp; set "
                              f"{ENV_PREFIX}MAILCHIMP_AUDIENCE_ID ([mailchimp] audience_id)")
        return self.mailchimp_audience_id

    def require_mailchimp(self) -> tuple[str, str]:
        """API key and audience id, for the commands that talk to Mailchimp."""
        missing = [
            f"{ENV_PREFIX}{name.upper()} ([mailchimp] {name.removeprefix('mailchimp_')})"
            for name in ("mailchimp_api_key", "mailchimp_audience_id")
            if getattr(self, name) is None
        ]
        if missing:
            raise ConfigError("this command talks to Mailchimp; set " + " and ".join(missing))
        assert self.mailchimp_api_key is not None
        assert self.mailchimp_audience_id is not None
        return self.mailchimp_api_key.get_secret_value(), self.mailchimp_audience_id

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            _SecretFileSource(settings_cls),
            env_settings,
            _TomlSource(settings_cls),
        )


class _SecretFileSource(PydanticBaseSettingsSource):
    """`SYNCD_<NAME>_FILE=/run/secrets/x` reads the secret from that file."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for name in SECRET_FIELDS:
            path = os.environ.get(f"{ENV_PREFIX}{name.upper()}_FILE")
            if path:
                try:
                    found[name] = Path(path).read_text(encoding="utf-8").strip()
                except OSError as exc:
                    raise ConfigError(
                        f"{ENV_PREFIX}{name.upper()}_FILE: cannot read {path}: {exc.strerror}"
                    ) from exc
        return found


class _TomlSource(PydanticBaseSettingsSource):
    """The TOML file; tables other than [lists] flatten to `<table>_<key>`."""

    path: Path | None = None

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        if self.path is None:
            return {}
        try:
            raw = tomllib.loads(self.path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"config file {self.path}: cannot read: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {self.path}: not valid TOML: {exc}") from exc
        flat: dict[str, Any] = {}
        for key, value in raw.items():
            if isinstance(value, dict) and key not in ("lists",):
                for sub, subvalue in value.items():
                    flat[f"{key}_{sub}"] = subvalue
            else:
                flat[key] = value
        return flat


# SYNCD_* variables that are not settings but are read elsewhere.
OTHER_VARIABLES = frozenset({CONFIG_ENV, "SYNCD_TEST_POSTGRES_URL", "SYNCD_FAILPOINT"})


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """SYNCD_* variables that name no setting: a typo would otherwise be ignored silently
    (pydantic-settings skips unknown variables)."""
    known = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    known |= {f"{ENV_PREFIX}{name.upper()}_FILE" for name in SECRET_FIELDS}
    return sorted(name for name in environ
                  if name.upper().startswith(ENV_PREFIX) and name.upper() not in known
                  and name.upper() not in OTHER_VARIABLES)


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Load and validate; raises ConfigError naming each wrong setting."""
    strangers = unknown_variables(os.environ)
    if strangers:
        known = [ENV_PREFIX + name.upper() for name in Settings.model_fields]
        hints = []
        for name in strangers:
            close = difflib.get_close_matches(name.upper(), known, n=1)
            hints.append(name + (f" (did you mean {close[0]}?)" if close else ""))
        raise ConfigError("unknown environment variable(s), no such setting: "
                          + ", ".join(hints))
    chosen = path if path is not None else os.environ.get(CONFIG_ENV)
    _TomlSource.path = Path(chosen) if chosen else None
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = ".".join(str(part) for part in error["loc"]) or "settings"
            problems.append(f"setting {name!r} ({ENV_PREFIX}{name.split('.')[0].upper()}): "
                            f"{error['msg']}")
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems)) from None
    finally:
        _TomlSource.path = None
