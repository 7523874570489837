"""A misspelled SYNCD_* variable is an error that names it, never silently ignored."""

from __future__ import annotations

import pytest

from syncd.config import load_settings
from syncd.errors import ConfigError


def test_misspelled_variable_is_refused_with_a_suggestion(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNCD_MAILCHIMP_APIKEY", "x")
    with pytest.raises(ConfigError, match=r"SYNCD_MAILCHIMP_APIKEY \(did you mean "
                                          r"SYNCD_MAILCHIMP_API_KEY\?\)"):
        load_settings()


def test_secret_file_variables_and_known_extras_are_accepted(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNCD_FAILPOINT", "")
    monkeypatch.setenv("SYNCD_HTTP_PORT", "8090")
    assert load_settings().http_port == 8090


def test_error_never_contains_the_variable_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNCD_WEBHOOK_SECRET", "a-secret-value-that-must-not-show")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "a-secret-value-that-must-not-show" not in str(caught.value)
    assert "SYNCD_WEBHOOK_SECRETS" in str(caught.value)
