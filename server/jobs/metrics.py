"""What /metrics reads about the job queue from the database: jobs queued and running, by kind."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily

from ..extensions import db
from ..web.observe import register_family
from .models import Job

WAITING = ("queued", "running")


@register_family("jobs")
def job_families() -> Iterator[Any]:
    jobs = GaugeMetricFamily("fangan_jobs", "Jobs waiting or running (batch boards, exports, imports, publishing)",
                             labels=["kind", "state"])
    rows = db.session.execute(db.select(Job.kind, Job.state, db.func.count()).where(Job.state.in_(WAITING))
                              .group_by(Job.kind, Job.state).order_by(Job.kind, Job.state))
    for kind, state, count in rows:
        jobs.add_metric([kind, state], count)
    yield jobs
