"""One summary line per run, the same for the one-shot commands and the service's jobs
(`run finished`: kind, outcome, counts, duration). The run functions themselves log no
summary, so a run under `syncd serve` is summarised once, not twice."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from typing import Any

from syncd.logs import get_logger

log = get_logger("syncd.runs")


def summarise(result: Any) -> tuple[str, dict[str, Any]]:
    """(outcome, counts) from whatever a job returned: a report dataclass or a dict."""
    if result is None:
        return "succeeded", {}
    fields: Mapping[str, Any]
    counts_of = getattr(result, "counts", None)
    if callable(counts_of):  # a report that knows its loggable numbers (no addresses)
        fields = {"outcome": getattr(result, "outcome", "succeeded"), **counts_of()}
    elif dataclasses.is_dataclass(result) and not isinstance(result, type):
        fields = {f.name: getattr(result, f.name) for f in dataclasses.fields(result)}
    elif isinstance(result, Mapping):
        fields = result
    else:
        fields = {k: v for k, v in vars(result).items() if not k.startswith("_")}
    outcome = fields.get("outcome", "succeeded")
    if isinstance(outcome, enum.Enum):
        outcome = outcome.value
    counts: dict[str, Any] = {}
    for name, raw in fields.items():
        if name == "outcome":
            continue
        value = raw.value if isinstance(raw, enum.Enum) else raw
        if isinstance(value, bool | int | float | str) or value is None:
            counts[name] = value
        elif isinstance(value, Mapping) and all(
                isinstance(v, bool | int | float | str) for v in value.values()):
            counts[name] = dict(value)
    return str(outcome), counts


def log_summary(kind: str, result: Any, duration_s: float) -> str:
    """Log the run's summary line; returns its outcome."""
    outcome, counts = summarise(result)
    log.info("run finished", kind=kind, outcome=outcome, counts=counts,
             duration_s=round(duration_s, 3))
    return outcome
