"""The stateful model of the whole system (see tests/proof/model.py) with two targets
(the newsletter by consent, offers by soft opt-in, each its own audience), on real SQLite
and real PostgreSQL (a smaller budget there: the same code paths, slower commits)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from tests.proof.model import MODEL_SETTINGS, checked_model
from tests.proof.world import World

# (examples, steps per example). Two targets make a step about twice the work of the
# one-audience model (every sync runs both targets), so fewer examples keep the run
# time near the one-audience model's.
BUDGET = {"sqlite": (16, 30), "postgresql": (5, 25)}


def _budget(world: World) -> settings:
    examples, steps = BUDGET[world.ctx.engine.dialect.name]
    return settings(max_examples=examples, stateful_step_count=steps, deadline=None,
                    print_blob=True, suppress_health_check=list(HealthCheck))


@pytest.fixture
def model_world(database_url: str, tmp_path: Path) -> Iterator[World]:
    built = World(database_url, tmp_path, two_targets=True, **MODEL_SETTINGS)
    yield built
    built.close()


@pytest.mark.slow
def test_no_sequence_of_events_breaks_an_invariant(model_world: World) -> None:
    run_state_machine_as_test(checked_model(model_world), settings=_budget(model_world))
