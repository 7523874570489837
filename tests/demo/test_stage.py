"""The demo's stage: `--dir` refuses an earlier demo's database and keeps a settings
file that reads the kept database afterwards."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncd.config import load_settings
from syncd.demo.stage import DB_NAME, KEPT_CONFIG_NAME, Stage
from syncd.errors import ConfigError


def test_demo_refuses_a_directory_with_an_earlier_demo(tmp_path: Path) -> None:
    (tmp_path / DB_NAME).write_bytes(b"")
    with pytest.raises(ConfigError, match="earlier demo"), Stage(tmp_path):
        pass


def test_demo_dir_keeps_a_settings_file_for_its_database(tmp_path: Path) -> None:
    with Stage(tmp_path) as stage:
        assert stage.kept
    kept = load_settings(tmp_path / KEPT_CONFIG_NAME)
    assert kept.database_url == f"sqlite:///{tmp_path.resolve() / DB_NAME}"
    assert (tmp_path / DB_NAME).exists()
    assert kept.webhook_secrets == []
    assert kept.mailchimp_api_key is None
