"""What the runs' reports share: a dict and JSON form for `--json`, and the counts (numbers
only, never an address) that go into sync_runs."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any, cast


class Report:
    """Mixed into the runs' report dataclasses."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(cast(Any, self))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, default=str)

    def run_counts(self) -> dict[str, Any]:
        """The numbers (and tallies by name) for the run's sync_runs row."""
        return {k: v for k, v in self.to_dict().items() if isinstance(v, int | dict)}
