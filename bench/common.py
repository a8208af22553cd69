"""Timing helpers shared by the benchmarks."""

from __future__ import annotations

import contextvars
import math
import statistics
import time
from collections.abc import Callable
from typing import Any

from flask.testing import FlaskClient


def median_seconds(fn: Callable[[], object], repeat: int = 15, warm_up: bool = True) -> float:
    """Median wall time of `fn` over `repeat` runs (after one untimed warm-up run)."""
    return statistics.median(timings(fn, repeat, warm_up))


def timings(fn: Callable[[], object], repeat: int = 15, warm_up: bool = True) -> list[float]:
    """Wall time of each of `repeat` runs of `fn` (after one untimed warm-up run), in seconds."""
    if warm_up:
        fn()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def p50_p95(samples: list[float]) -> tuple[float, float]:
    """The median and the 95th percentile (nearest rank: the largest of fewer than 20 samples)."""
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[max(0, math.ceil(len(ordered) * 0.95) - 1)]


class IsolatedClient(FlaskClient):
    """A test client whose requests never share the bench's app context (nor its database session), as served:
    Flask reuses an app context already pushed, and every request would then run in one long session."""

    def open(self, *args: Any, **kwargs: Any) -> Any:
        return contextvars.Context().run(super().open, *args, **kwargs)
