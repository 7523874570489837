"""Where settings come from besides the environment: `SYNCD_*_FILE` secret files and the
TOML file, with a record of where the file set each value (to name it in errors)."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic_settings import PydanticBaseSettingsSource

from syncd.config.fields import ENV_PREFIX, SECRET_FIELDS
from syncd.errors import ConfigError


@dataclass
class TomlFile:
    """The file of one load: its path (None: no file) and, once read, setting name ->
    where the file set it ("[http] port")."""

    path: Path | None
    origins: dict[str, str] = field(default_factory=dict)


# The file of the load in progress. pydantic-settings builds its sources from the class,
# so the path reaches TomlSource through the context, one load per context at a time.
_LOADING: ContextVar[TomlFile | None] = ContextVar("syncd_config_toml", default=None)


@contextmanager
def reading(toml: TomlFile) -> Iterator[TomlFile]:
    """Settings built inside this block read `toml`; outside, no file is read."""
    token = _LOADING.set(toml)
    try:
        yield toml
    finally:
        _LOADING.reset(token)


class SecretFileSource(PydanticBaseSettingsSource):
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


class TomlSource(PydanticBaseSettingsSource):
    """The TOML file; tables other than [lists] flatten to `<table>_<key>`."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        toml = _LOADING.get()
        if toml is None or toml.path is None:
            return {}
        try:
            raw = tomllib.loads(toml.path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"config file {toml.path}: cannot read: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {toml.path}: not valid TOML: {exc}") from exc
        flat: dict[str, Any] = {}
        for key, value in raw.items():
            if isinstance(value, dict) and key not in ("lists",):
                for sub, subvalue in value.items():
                    flat[f"{key}_{sub}"] = subvalue
                    toml.origins[f"{key}_{sub}"] = f"[{key}] {sub}"
            else:
                flat[key] = value
                toml.origins[key] = key
        return flat
