"""The stateful model of the whole system (see tests/proof/model.py), on real SQLite and
real PostgreSQL (a smaller budget there: the same code paths, slower commits)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from tests.proof.model import checked_model
from tests.proof.world import World

BUDGET = {"sqlite": (25, 30), "postgresql": (8, 25)}  # (examples, steps per example)


def _budget(world: World) -> settings:
    examples, steps = BUDGET[world.ctx.engine.dialect.name]
    return settings(max_examples=examples, stateful_step_count=steps, deadline=None,
                    print_blob=True, suppress_health_check=list(HealthCheck))


@pytest.mark.slow
def test_no_sequence_of_events_breaks_an_invariant(world: World) -> None:
    run_state_machine_as_test(checked_model(world), settings=_budget(world))
