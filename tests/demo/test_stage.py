"""The demo's stage: `--dir` refuses an earlier demo's database and keeps a settings
file that reads the kept database afterwards; its clock dates the sample's purchases."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from syncd.config import load_settings
from syncd.demo.cast import SAMPLE_NAME, sample_text
from syncd.demo.import_sync_steps import import_step
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


def test_the_import_step_dates_the_purchases_by_the_stages_clock(tmp_path: Path) -> None:
    moment = datetime(2031, 3, 1, 9, tzinfo=UTC)
    with Stage(tmp_path, clock=lambda: moment) as stage:
        result = import_step(stage)
        imported = (tmp_path / SAMPLE_NAME).read_text("utf-8")
    assert imported == sample_text(date(2031, 3, 1))
    assert result.ok, [c for c in result.checks if not c.passed]
