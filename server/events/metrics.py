"""What /metrics reads about events out: deliveries waiting or given up, by receiver."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily

from ..web.observe import register_family
from .service import waiting_counts


@register_family("events")
def event_families() -> Iterator[Any]:
    waiting = GaugeMetricFamily("fangan_event_deliveries", "Event deliveries not yet taken by their receiver, by "
                                "receiver and state (pending: to be tried; failed: given up)",
                                labels=["receiver", "state"])
    for receiver, state, count in waiting_counts():
        waiting.add_metric([receiver, state], count)
    yield waiting
