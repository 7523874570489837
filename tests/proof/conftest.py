"""Fixtures for the proof tests (issue 7): the whole system on loopback, per database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.proof.world import World


@pytest.fixture
def world(database_url: str, tmp_path: Path) -> Iterator[World]:
    built = World(database_url, tmp_path)
    yield built
    built.close()


@pytest.fixture(autouse=True)
def _quiet_logs() -> None:
    """Warnings and errors only: the model runs thousands of steps."""
    from syncd import logs

    logs.configure(level="warning", fmt="json")
