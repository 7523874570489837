"""Settings: the validated, immutable object every command gets; the rules on single
settings and across settings, the values derived from them, and where values come from
(the sources, highest first)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from syncd.config.fields import ENV_PREFIX, NEWSLETTER, ListSettings, SettingFields
from syncd.config.sources import SecretFileSource, TomlSource
from syncd.config.targets import DEFAULT_TARGET, SINGLE_AUDIENCE_NAMES, TargetSettings
from syncd.errors import ConfigError


def _split_commas(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


# Secrets given as lists: the shortest each may be, and what the error calls one.
_MIN_LENGTHS = {"signup_api_tokens": (24, "sign-up API token"),
                "webhook_secrets": (16, "webhook secret")}


def _http_url(value: str | None, message: str = "must start with http:// or https://"
              ) -> str | None:
    if value is not None and not value.startswith(("http://", "https://")):
        raise ValueError(message)
    return value


class Settings(SettingFields):
    """Every setting of syncd (fields: `SettingFields`), validated together."""

    @field_validator("webhook_secrets", "signup_api_tokens", "signup_cors_origins",
                     "signup_lists", mode="before")
    @classmethod
    def _secrets_from_commas(cls, value: Any) -> Any:
        return _split_commas(value)

    @field_validator("signup_api_tokens", "webhook_secrets")
    @classmethod
    def _long_enough(cls, value: list[SecretStr], info: ValidationInfo) -> list[SecretStr]:
        length, what = _MIN_LENGTHS[str(info.field_name)]
        for secret in value:
            if len(secret.get_secret_value()) < length:
                raise ValueError(f"each {what} needs at least {length} characters")
        return value

    @field_validator("public_base_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        _http_url(value, "must start with https:// (or http:// for a local test)")
        return value.rstrip("/") if value else value

    @model_validator(mode="after")
    def _signup_consistent(self) -> Settings:
        unknown = [name for name in self.signup_lists if name not in self.lists]
        if unknown:
            raise ValueError(f"signup_lists names unknown lists: {', '.join(unknown)}")
        if self.signup_double_opt_in == "syncd":
            missing = [name for name in ("smtp_host", "mail_from", "public_base_url")
                       if getattr(self, name) is None]
            if missing:
                raise ValueError("signup_double_opt_in = syncd needs " + ", ".join(missing))
            if self.sync_push_unconfirmed_as_pending:
                raise ValueError("signup_double_opt_in = syncd with "
                                 "sync_push_unconfirmed_as_pending would send two "
                                 "confirmation mails for one sign-up (syncd's and "
                                 "Mailchimp's); choose one")
        if self.signup_double_opt_in == "esp" and not self.sync_push_unconfirmed_as_pending:
            raise ValueError("signup_double_opt_in = esp needs "
                             "sync_push_unconfirmed_as_pending = true (Mailchimp sends "
                             "the confirmation for members pushed as pending)")
        return self

    @property
    def double_opt_in(self) -> Literal["syncd", "esp"] | None:
        """Who confirms sign-ups; None: the sign-up endpoints are off."""
        if self.signup_double_opt_in != "auto":
            return self.signup_double_opt_in
        if self.sync_push_unconfirmed_as_pending:
            return "esp"
        if self.smtp_host and self.mail_from and self.public_base_url:
            return "syncd"
        return None

    @field_validator("operator_token")
    @classmethod
    def _token_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 24:
            raise ValueError("the operator token needs at least 24 characters")
        return value

    @field_validator("alert_webhook_url")
    @classmethod
    def _alert_url(cls, value: str | None) -> str | None:
        return _http_url(value) or None

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
        _http_url(value)
        return value.rstrip("/") if value else value

    @model_validator(mode="after")
    def _targets_consistent(self) -> Settings:
        if self.targets and self.mailchimp_audience_id:
            raise ValueError("set either [[targets]] or [mailchimp] audience_id "
                             "(the single-audience settings), not both")
        for key in ("name", "audience_id"):
            seen: set[str] = set()
            for target in self.targets:
                value = getattr(target, key)
                if value in seen:
                    raise ValueError(f"two targets have the {key.replace('_', ' ')} "
                                     f"{value!r}; each target is one audience")
                seen.add(value)
        for target in self.targets:
            unknown = sorted(set(target.interests) - set(self.lists))
            if unknown:
                raise ValueError(f"target {target.name}: interests name unknown lists: "
                                 f"{', '.join(unknown)}")
        return self

    @property
    def sync_targets(self) -> tuple[TargetSettings, ...]:
        """The targets to sync: [[targets]], or the one the single-audience settings
        describe (none when no audience id is set)."""
        if self.targets:
            return tuple(self.targets)
        if not self.mailchimp_audience_id:
            return ()
        return (TargetSettings(
            name=DEFAULT_TARGET, audience_id=self.mailchimp_audience_id,
            purposes=(self.sync_purpose,), merge_fields=dict(self.mailchimp_merge_fields),
            sync_tags=self.mailchimp_sync_tags,
            max_unsubscribe_share=self.sync_max_unsubscribe_share,
            unsubscribe_floor=self.sync_unsubscribe_floor,
            interval_minutes=self.sync_interval_minutes),)

    def target(self, name: str | None = None) -> TargetSettings:
        """The target called `name` (None: the only one); a clear error otherwise."""
        targets = self.sync_targets
        if not targets:
            self.require_audience_id()
        if name is None:
            if len(targets) > 1:
                raise ConfigError("several targets are configured ("
                                  + ", ".join(t.name for t in targets)
                                  + "); name one with --target")
            return targets[0]
        for target in targets:
            if target.name == name:
                return target
        raise ConfigError(f"no target is called {name!r}; configured: "
                          + ", ".join(t.name for t in targets))

    def target_setting(self, target: TargetSettings, name: str) -> str:
        """How a message names one setting of `target`: its key in the [[targets]] table
        when targets are configured, else the single-audience setting it comes from."""
        if self.targets:
            return f'{name} of [[targets]] "{target.name}"'
        return SINGLE_AUDIENCE_NAMES.get(name, name)

    @property
    def default_purpose(self) -> str:
        """The purpose a command judges when none is named: the first target's first
        purpose ([[targets]]), else sync_purpose."""
        return self.targets[0].purposes[0] if self.targets else self.sync_purpose

    def target_of_audience(self, audience_id: str) -> TargetSettings | None:
        """The target that syncs this audience (webhooks are routed by their list_id)."""
        return next((t for t in self.sync_targets if t.audience_id == audience_id), None)

    @property
    def purposes(self) -> frozenset[str]:
        """Known purposes: the newsletter, every purpose a configured list names, and
        every purpose a target sends."""
        return frozenset({NEWSLETTER, self.sync_purpose}
                         | {c.purpose for c in self.lists.values()}
                         | {p for t in self.targets for p in t.purposes})

    def lists_of_purpose(self, purpose: str) -> list[str]:
        return sorted(name for name, cfg in self.lists.items() if cfg.purpose == purpose)

    def require_audience_id(self) -> str:
        """The audience id, for the runs that read or write it."""
        if not self.mailchimp_audience_id:
            raise ConfigError(f"this command talks to Mailchimp; set "
                              f"{ENV_PREFIX}MAILCHIMP_AUDIENCE_ID ([mailchimp] audience_id), "
                              "or one [[targets]] table per audience")
        return self.mailchimp_audience_id

    def require_webhook_secret(self) -> None:
        """The service's webhook endpoint needs a secret, unless it is switched off."""
        if self.webhook_enabled and not self.webhook_secrets:
            raise ConfigError(
                f"the webhook endpoint needs a secret: set {ENV_PREFIX}WEBHOOK_SECRETS "
                f"([webhook] secrets), or {ENV_PREFIX}WEBHOOK_ENABLED=false ([webhook] "
                "enabled = false) to run without webhooks (unsubscribes then arrive only "
                "by reconciliation)")

    def require_mailchimp(self, audience_id: str | None = None) -> tuple[str, str]:
        """API key and audience id (`audience_id`: a target's, else the single-audience
        setting), for the commands that talk to Mailchimp."""
        names = ("mailchimp_api_key",) if audience_id else (
            "mailchimp_api_key", "mailchimp_audience_id")
        missing = [
            f"{ENV_PREFIX}{name.upper()} ([mailchimp] {name.removeprefix('mailchimp_')})"
            for name in names if getattr(self, name) is None
        ]
        if missing:
            raise ConfigError("this command talks to Mailchimp; set " + " and ".join(missing))
        assert self.mailchimp_api_key is not None
        audience = audience_id or self.mailchimp_audience_id
        assert audience is not None
        return self.mailchimp_api_key.get_secret_value(), audience

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
            SecretFileSource(settings_cls),
            env_settings,
            TomlSource(settings_cls),
        )
