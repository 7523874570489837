"""Settings: the example file documents every setting; precedence, secret files and errors
that name the setting to fix."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from syncd.config import Settings, load_settings
from syncd.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "syncd.example.toml"
TABLE = re.compile(r"^\[([A-Za-z0-9_.-]+)\]\s*$")
TARGETS = re.compile(r"^#?\s*\[\[targets\]\]\s*$")
KEY = re.compile(r"^#?\s*([a-z_]+)\s*=")


def _documented_names() -> set[str]:
    """Setting names the example file shows, set or commented out."""
    names: set[str] = set()
    table = ""
    for line in EXAMPLE.read_text(encoding="utf-8").splitlines():
        if TARGETS.match(line.strip()):
            table = "targets."
            continue
        if found := TABLE.match(line.strip()):
            table = found.group(1)
            continue
        if (found := KEY.match(line.strip())) is None:
            continue
        if table.startswith(("lists.", "targets.")):
            names.add(table.split(".")[0])
        else:
            names.add(f"{table}_{found.group(1)}" if table else found.group(1))
    return names


def test_example_file_names_every_setting() -> None:
    missing = set(Settings.model_fields) - _documented_names()
    assert not missing, f"config/syncd.example.toml lacks: {sorted(missing)}"


def test_example_file_names_no_setting_that_does_not_exist() -> None:
    unknown = _documented_names() - set(Settings.model_fields)
    assert not unknown


def test_example_file_values_are_the_defaults() -> None:
    loaded = load_settings(EXAMPLE)
    defaults = Settings()
    raw = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    set_in_file = [f"{table}_{key}" for table, values in raw.items()
                   if isinstance(values, dict) and table != "lists" for key in values]
    set_in_file += [key for key, value in raw.items() if not isinstance(value, dict)]
    assert set_in_file
    for name in set_in_file:
        assert getattr(loaded, name) == getattr(defaults, name), name


def test_example_file_defines_lists_with_their_purpose() -> None:
    loaded = load_settings(EXAMPLE)
    assert loaded.lists_of_purpose("newsletter") == ["newsletter-nl"]
    assert loaded.lists["ebook-leads"].marketing is False


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "syncd.toml"
    path.write_text("[http]\nport = 9000\nhost = \"0.0.0.0\"\n", encoding="utf-8")
    monkeypatch.setenv("SYNCD_HTTP_PORT", "9100")
    loaded = load_settings(path)
    assert (loaded.http_port, loaded.http_host) == (9100, "0.0.0.0")


def test_secret_comes_from_the_file_named_by_the_file_variable(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "api_key"
    secret.write_text("0123456789abcdef0123456789abcdef-us21\n", encoding="utf-8")
    monkeypatch.setenv("SYNCD_MAILCHIMP_API_KEY_FILE", str(secret))
    monkeypatch.setenv("SYNCD_MAILCHIMP_API_KEY", "ignored-when-a-file-is-named-us1")
    loaded = load_settings()
    assert loaded.mailchimp_api_key is not None
    assert loaded.mailchimp_api_key.get_secret_value() == "0123456789abcdef0123456789abcdef-us21"


def test_unreadable_secret_file_names_the_variable(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNCD_PSEUDONYM_KEY_FILE", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="SYNCD_PSEUDONYM_KEY_FILE"):
        load_settings()


def test_webhook_secrets_from_a_comma_separated_variable(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNCD_WEBHOOK_SECRETS", "first-secret-0123456789, second-secret-0123456789")
    secrets = [s.get_secret_value() for s in load_settings().webhook_secrets]
    assert secrets == ["first-secret-0123456789", "second-secret-0123456789"]


def test_webhook_secrets_from_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "webhook"
    secret.write_text("file-secret-0123456789,older-secret-0123456789\n", encoding="utf-8")
    monkeypatch.setenv("SYNCD_WEBHOOK_SECRETS_FILE", str(secret))
    assert len(load_settings().webhook_secrets) == 2


def test_short_webhook_secret_is_refused_naming_the_setting(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNCD_WEBHOOK_SECRETS", "short")
    with pytest.raises(ConfigError, match=r"webhook_secrets.*SYNCD_WEBHOOK_SECRETS.*16"):
        load_settings()


def test_bad_value_error_names_the_setting_and_its_variable(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNCD_HTTP_PORT", "70000")
    with pytest.raises(ConfigError, match=r"'http_port' \(SYNCD_HTTP_PORT\)"):
        load_settings()


def test_bad_value_error_never_shows_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNCD_WEBHOOK_SECRETS", "tiny")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "tiny" not in str(caught.value)


def test_unknown_key_in_the_file_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "syncd.toml"
    path.write_text("[mailchimp]\napikey = \"x\"\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="mailchimp_apikey"):
        load_settings(path)


def test_unknown_key_in_a_list_table_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "syncd.toml"
    path.write_text("[lists.news]\npurpose = \"newsletter\"\nmarketting = true\n",
                    encoding="utf-8")
    with pytest.raises(ConfigError, match=r"lists\.news\.marketting"):
        load_settings(path)


def test_file_that_is_not_toml_is_named(tmp_path: Path) -> None:
    path = tmp_path / "syncd.toml"
    path.write_text("database_url = \n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(path)


def test_require_mailchimp_names_both_missing_variables() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings().require_mailchimp()
    assert "SYNCD_MAILCHIMP_API_KEY" in str(caught.value)
    assert "SYNCD_MAILCHIMP_AUDIENCE_ID" in str(caught.value)


def test_require_mailchimp_names_only_what_is_missing() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(mailchimp_audience_id="a1b2c3d4e5").require_mailchimp()
    assert "SYNCD_MAILCHIMP_API_KEY" in str(caught.value)
    assert "AUDIENCE_ID" not in str(caught.value)


def test_require_mailchimp_returns_key_and_audience() -> None:
    loaded = load_settings(mailchimp_api_key="0123456789abcdef0123456789abcdef-us21",
                           mailchimp_audience_id="a1b2c3d4e5")
    assert loaded.require_mailchimp() == ("0123456789abcdef0123456789abcdef-us21", "a1b2c3d4e5")


def test_purposes_include_every_list_purpose_and_the_newsletter(tmp_path: Path) -> None:
    path = tmp_path / "syncd.toml"
    path.write_text("[lists.events]\npurpose = \"events\"\n", encoding="utf-8")
    assert load_settings(path).purposes == {"newsletter", "events"}
