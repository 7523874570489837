"""Loading the settings: the TOML file, then `SYNCD_*` variables, then `SYNCD_*_FILE`
secrets, validated at once; every error names the setting to fix and where it was set."""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from syncd.config.fields import CONFIG_ENV, ENV_PREFIX, SECRET_FIELDS
from syncd.config.settings import Settings
from syncd.config.sources import TomlFile, reading
from syncd.errors import ConfigError

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


def _origin(name: str, path: str | Path | None, toml: TomlFile) -> str:
    """Where a wrong value came from, as its owner wrote it: the environment variable
    when set (it wins), else the TOML key in the file, else the variable to set."""
    variable = f"{ENV_PREFIX}{name.upper()}"
    if variable in os.environ or f"{variable}_FILE" in os.environ:
        return variable
    if name in toml.origins:
        return f"{path}: {toml.origins[name]}"
    return variable


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
    with reading(TomlFile(Path(chosen) if chosen else None)) as toml:
        try:
            return Settings(**overrides)
        except ValidationError as exc:
            problems = []
            for error in exc.errors():
                name = ".".join(str(part) for part in error["loc"])
                if not name:  # a rule across settings: its message names them
                    problems.append(str(error["msg"]).removeprefix("Value error, "))
                    continue
                problems.append(f"setting {name!r} "
                                f"({_origin(name.split('.')[0], chosen, toml)}): "
                                f"{error['msg']}")
            raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems)) from None
