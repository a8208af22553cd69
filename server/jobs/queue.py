"""The job queue: Huey, on SQLite in the instance folder by default (the embedded default) or on Redis
(`FANGAN_JOBS_URL=redis://…`, which a deployment of several hosts shares). A message says only "run job n";
the job itself, its progress and its result live in the database and the jobs folder."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask, current_app
from huey import Huey, MemoryHuey, RedisHuey, SqliteHuey
from huey.consumer import Consumer

log = logging.getLogger(__name__)

EXTENSION = "fangan.jobs"


def _huey(app: Flask) -> Huey:
    url = app.config.get("FANGAN_JOBS_URL") or f"sqlite:///{Path(app.instance_path) / 'jobs.sqlite3'}"
    if url.startswith("sqlite:///"):
        return SqliteHuey("fangan", filename=url.removeprefix("sqlite:///"), results=False)
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisHuey("fangan", url=url, results=False)  # needs the redis package (the production extra)
    if url == "memory://":  # tests: a queue in this process, drained by `run_queued`
        return MemoryHuey("fangan", results=False)
    raise ValueError(f"FANGAN_JOBS_URL: unknown job queue {url!r} (sqlite:///path, redis://host:port/db)")


def init_app(app: Flask, run: Callable[[int], None]) -> None:
    """The app's job queue, and the one task it carries: `run` a job (inside this app)."""
    huey = _huey(app)

    @huey.task(name="fangan.run_job")
    def run_job(job_id: int) -> None:
        with app.app_context():
            run(job_id)

    app.extensions[EXTENSION] = {"huey": huey, "run_job": run_job}


def huey_of(app: Any = None) -> Huey:
    return (app or current_app).extensions[EXTENSION]["huey"]


def enqueue(job_id: int) -> None:
    """Ask a worker to run the job (once it is committed: a worker reads it from the database)."""
    current_app.extensions[EXTENSION]["run_job"](job_id)


def run_queued(app: Any = None) -> int:
    """Run what is queued here and now, in this process (tests, and `fangan worker --once`)."""
    huey = huey_of(app)
    count = 0
    while (task := huey.dequeue()) is not None:
        huey.execute(task)
        count += 1
    return count


def consumer(app: Flask, workers: int = 1) -> Consumer:
    """A Huey consumer of threads for this app's queue (`fangan worker`)."""
    return huey_of(app).create_consumer(workers=workers, worker_type="thread", periodic=False)
