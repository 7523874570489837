"""Settings: one immutable object, loaded once from a TOML file, then `SYNCD_*` environment
variables, then `SYNCD_*_FILE` for secrets (Docker/systemd credentials). Validated at start;
every error names the setting to fix.

The fields are in `fields`, the rules in `settings`, the file sources in `sources`, the
loading in `loading`; everything public is importable from here."""

from syncd.config.fields import (
    CONFIG_ENV,
    ENV_PREFIX,
    NEWSLETTER,
    SECRET_FIELDS,
    ListSettings,
    SettingFields,
)
from syncd.config.loading import OTHER_VARIABLES, load_settings, unknown_variables
from syncd.config.settings import Settings
from syncd.config.targets import DEFAULT_TARGET, TargetSettings

__all__ = ["CONFIG_ENV", "DEFAULT_TARGET", "ENV_PREFIX", "NEWSLETTER", "OTHER_VARIABLES",
           "SECRET_FIELDS", "ListSettings", "SettingFields", "Settings", "TargetSettings",
           "load_settings", "unknown_variables"]
