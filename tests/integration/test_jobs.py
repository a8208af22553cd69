"""Jobs: long work off the request. Queued once its row is committed, claimed by one worker, its progress on its
page as it goes, its result kept for whoever asked; a queue kept in SQLite outlives a restart, and a job left
running by a stopped worker runs again."""

from __future__ import annotations

import datetime as dt
import io
import logging

import pytest
from pypdf import PdfReader
from sqlalchemy import insert

from server.boards import printing
from server.core.database import utcnow
from server.extensions import db
from server.jobs import queue, service
from server.jobs.models import Job
from server.jobs.service import JOB_KINDS, JobError, JobKind, JobResult
from server.org.models import Area
from tests.integration.test_boards import appoint_lidu_chiefs
from tests.support.factories import load_demo, login, make_user

HTMX = {"HX-Request": "true", "HX-Target": "job-status"}


@pytest.fixture
def owner(ctx):
    load_demo()
    return make_user("office", roles=(("lidu", "office_admin", None),))


def _anyone(_user, _scheme_key, _params) -> bool:  # noqa: ANN001
    return True


def _start(kind: str, user, **params) -> Job:  # noqa: ANN001
    from flask import current_app

    with current_app.test_request_context():
        job = service.start_job(user, kind, "lidu", params)
        db.session.commit()
    return job


def test_a_job_runs_once_with_its_progress_on_its_page(owner, app):
    client = app.test_client()
    login(client, "office")
    seen: list[str] = []

    def work(job, user, progress) -> JobResult:  # noqa: ANN001
        assert user.username == "office" and job.params["n"] == 2
        progress(1, 2)  # what the page shows meanwhile
        seen.append(client.get(f"/jobs/{job.id}", headers=HTMX).get_data(as_text=True))
        progress(2, 2)
        return JobResult("一,二\n".encode(), "名单.csv", "text/csv")

    with JOB_KINDS.registered("test.toy", JobKind(lambda: "Toy", _anyone, work)):
        job = _start("test.toy", owner, n=2)
        waiting = client.get(f"/jobs/{job.id}").get_data(as_text=True)
        assert "hx-trigger=\"every 1s\"" in waiting and 'http-equiv="refresh"' in waiting
        queue.enqueue(job.id)  # a second message for the same job (a retry, a second host)
        assert queue.run_queued(app) == 2
    assert "正在处理：1 / 2" in seen[0] and 'value="50"' in seen[0] and "every 1s" in seen[0]
    db.session.refresh(job)
    assert (job.state, job.attempts, job.done, job.total) == ("done", 1, 2, 2)  # run once, not twice
    part = client.get(f"/jobs/{job.id}", headers=HTMX).get_data(as_text=True)
    assert "every 1s" not in part and f'href="/jobs/{job.id}/result"' in part  # finished: no more polling
    with client.get(f"/jobs/{job.id}/result") as result:
        assert result.data == "一,二\n".encode() and "attachment" in result.headers["Content-Disposition"]
        assert "no-store" in result.headers["Cache-Control"]  # names and phones: kept by no browser or proxy
    assert f'href="/jobs/{job.id}"' in client.get("/jobs/").get_data(as_text=True)


def test_a_job_is_queued_only_when_its_row_is_committed(owner, app):
    with JOB_KINDS.registered("test.toy", JobKind(lambda: "Toy", _anyone, lambda *a: JobResult(b"", "x", "x"))):
        from flask import current_app

        with current_app.test_request_context():
            service.start_job(owner, "test.toy", "lidu", {})
            db.session.rollback()  # the request failed after asking
        assert queue.run_queued(app) == 0


def test_a_run_handed_to_another_worker_writes_nothing_more(owner, app):
    """A run silent past STALE is handed to another worker by `fangan tick`; if it was only slow, its end, its
    failure and its work are dropped: the job is the other run's to finish (once)."""
    from sqlalchemy import update

    area_id = db.session.scalar(db.select(Area.id).filter_by(scheme_key="lidu").limit(1))

    def taken_over(job, _user, _progress):  # noqa: ANN001
        db.session.execute(update(Job).where(Job.id == job.id).values(attempts=Job.attempts + 1))
        db.session.commit()  # meanwhile: requeued as silent, and claimed by another worker
        db.session.get(Area, area_id).name = "改了"  # the work's writes
        return JobResult(b"x", "x.csv", "text/csv")

    def fails_late(job, _user, progress):  # noqa: ANN001
        db.session.execute(update(Job).where(Job.id == job.id).values(attempts=Job.attempts + 1))
        db.session.commit()
        progress(1, 2)  # stops this run: its progress is not its own to say any more
        raise AssertionError("not reached")

    with JOB_KINDS.registered("test.slow", JobKind(lambda: "S", _anyone, taken_over)), \
            JOB_KINDS.registered("test.late", JobKind(lambda: "L", _anyone, fails_late)):
        slow, late = _start("test.slow", owner), _start("test.late", owner)
        assert queue.run_queued(app) == 2
    for job in (slow, late):
        db.session.refresh(job)
        assert (job.state, job.attempts, job.result_file, job.done) == ("running", 2, None, 0)
    db.session.expire_all()
    assert db.session.get(Area, area_id).name != "改了"


def test_failures_are_said_and_nothing_is_kept(owner, app, caplog):
    def refuses(*_args) -> JobResult:
        raise JobError("没有可打印的公示牌")

    def breaks(*_args) -> JobResult:
        raise RuntimeError("secret path /srv/x")

    with JOB_KINDS.registered("test.refuses", JobKind(lambda: "R", _anyone, refuses)), \
            JOB_KINDS.registered("test.breaks", JobKind(lambda: "B", _anyone, breaks)):
        said, broke = _start("test.refuses", owner), _start("test.breaks", owner)
        with caplog.at_level(logging.ERROR, logger="server.jobs.service"):
            assert queue.run_queued(app) == 2
    client = app.test_client()
    login(client, "office")
    assert "没有可打印的公示牌" in client.get(f"/jobs/{said.id}").get_data(as_text=True)
    page = client.get(f"/jobs/{broke.id}").get_data(as_text=True)
    assert "secret path" not in page and "secret path" in caplog.text  # the reason in the log, not on the page
    with client.get(f"/jobs/{broke.id}/result") as missing:
        assert missing.status_code == 404


def test_the_queue_outlives_a_restart_and_an_interrupted_job_runs_again(owner, app, tmp_path):
    extension = app.extensions[queue.EXTENSION]
    app.config["FANGAN_JOBS_URL"] = f"sqlite:///{tmp_path / 'jobs.sqlite3'}"
    try:
        queue.init_app(app, service.run_job)  # the queue kept in a file, as on the embedded default
        runs: list[int] = []

        def work(job, _user, _progress) -> JobResult:  # noqa: ANN001
            runs.append(job.id)
            return JobResult(b"ok", "ok.txt", "text/plain")

        with JOB_KINDS.registered("test.toy", JobKind(lambda: "Toy", _anyone, work)):
            job = _start("test.toy", owner)
            queue.init_app(app, service.run_job)  # a restart: a new process reads the same queue
            assert queue.run_queued(app) == 1 and runs == [job.id]
            stuck = _start("test.toy", owner)
            queue.run_queued(app)
            stuck.state, stuck.beat_at = "running", utcnow() - dt.timedelta(minutes=30)  # its worker stopped
            db.session.commit()
            assert service.requeue_interrupted() == 1
            assert queue.run_queued(app) == 1 and runs == [job.id, stuck.id, stuck.id]
            db.session.refresh(stuck)
            assert stuck.state == "done" and stuck.attempts == 2
    finally:
        app.extensions[queue.EXTENSION] = extension
        app.config["FANGAN_JOBS_URL"] = "memory://"


def test_two_thousand_boards_print_as_one_job_with_progress(owner, app, backend):
    """The batch that ran out of time and memory in one request: 2,004 boards, as a job, batch by batch."""
    if backend != "sqlite":
        pytest.skip("drawing posters is the same on every database: once is enough")
    appoint_lidu_chiefs()
    road = db.session.scalar(db.select(Area).filter_by(scheme_key="lidu", key="shilong_old_street"))
    db.session.execute(insert(Area), [
        {"scheme_key": "lidu", "key": f"road_{i:04d}", "kind": road.kind, "name": {"zh": f"第{i}路", "en": f"Road {i}"},
         "unit_id": road.unit_id, "parent_id": road.parent_id, "path": road.path, "position": i, "source": "manual",
         "active": True} for i in range(2000)])
    db.session.commit()
    steps: list[tuple[int, int]] = []

    def recorded(job, user, progress) -> JobResult:  # noqa: ANN001
        def note(done: int, total: int) -> None:
            steps.append((done, total))
            progress(done, total)

        return printing.print_boards(job, user, note)

    with JOB_KINDS.registered("test.boards", JobKind(lambda: "Boards", _anyone, recorded)):
        job = _start("test.boards", owner, size="a3")
        assert queue.run_queued(app) == 1
    db.session.refresh(job)
    assert job.state == "done", job.note
    assert steps[0] == (0, 2004) and steps[-1] == (2004, 2004) and job.done == job.total == 2004
    done = [d for d, _total in steps]
    assert done == sorted(done) and len(set(done)) == 1 + -(-2004 // printing.BATCH)  # a step a batch
    pdf = PdfReader(io.BytesIO(service.result_path(job).read_bytes()))
    keys = sorted(db.session.scalars(db.select(Area.key).filter_by(scheme_key="lidu", kind=road.kind, active=True)))
    assert len(pdf.pages) == len(keys) == 2004  # a poster a road, in the order of their keys
    assert "第1999路" in pdf.pages[keys.index("road_1999")].extract_text()


def test_a_real_worker_process_prints_the_boards(tmp_path):
    """The embedded default as `make run` has it: jobs queued in a SQLite file, run by `fangan worker` in a
    process of its own, against a database file; stopped by a signal, a worker leaves nothing half done."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    from tests.conftest import make_app

    database, jobs_queue, results = tmp_path / "fangan.sqlite", tmp_path / "jobs.sqlite3", tmp_path / "results"
    app = make_app(f"sqlite:///{database}", tmp_path / "instance", FANGAN_JOBS_URL=f"sqlite:///{jobs_queue}",
                   FANGAN_JOBS_DIR=str(results))
    with app.app_context():
        load_demo()
        appoint_lidu_chiefs()
        office = make_user("office", roles=(("lidu", "office_admin", None),))
        job_id = _start(printing.KIND, office, unit="shilong", size="a3").id
        db.session.remove()
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{database}", "SECRET_KEY": "worker-test",
           "FANGAN_JOBS_URL": f"sqlite:///{jobs_queue}", "FANGAN_JOBS_DIR": str(results),
           "FANGAN_INSTANCE": str(tmp_path / "instance")}
    worker = subprocess.Popen([str(Path(sys.executable).with_name("fangan")), "worker"], env=env, cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 90
        with app.app_context():
            while time.monotonic() < deadline:
                state = db.session.scalar(db.select(Job.state).where(Job.id == job_id))
                db.session.remove()
                if state in ("done", "failed"):
                    break
                time.sleep(0.2)
            job = db.session.get(Job, job_id)
            assert job.state == "done", (job.state, job.note)
            pdf = PdfReader(io.BytesIO((results / job.result_file).read_bytes()))
            assert len(pdf.pages) == 1 and "石龙老街" in pdf.pages[0].extract_text()
            db.session.remove()
    finally:
        worker.send_signal(signal.SIGINT)
        output = worker.communicate(timeout=60)[0]
    assert worker.returncode == 0, output
    with app.app_context():
        db.engine.dispose()


def test_a_job_that_breaks_the_database_still_says_it_failed(owner, app):
    """A database error after a progress commit leaves the session needing a rollback: the job is still marked
    failed, never left "running"."""
    from sqlalchemy import text

    def breaks(_job, _user, progress) -> JobResult:  # noqa: ANN001
        progress(1, 2)
        db.session.execute(text("SELECT * FROM no_such_table"))
        return JobResult(b"", "x", "x")

    with JOB_KINDS.registered("test.breaks_db", JobKind(lambda: "B", _anyone, breaks)):
        job = _start("test.breaks_db", owner)
        assert queue.run_queued(app) == 1
    db.session.expire_all()
    job = db.session.get(Job, job.id)
    assert job.state == "failed" and job.finished_at is not None and "日志" in job.note


def test_the_tick_hands_over_what_waits_and_stops_what_keeps_failing(owner, app, tmp_path):
    work = JobKind(lambda: "Toy", _anyone, lambda *a: JobResult(b"ok", "ok.txt", "text/plain"))
    with JOB_KINDS.registered("test.toy", work):
        waiting = _start("test.toy", owner)
        queue.run_queued(app)  # the first hand-over ran: make it as if it had been lost
        waiting.state, waiting.created_at = "queued", utcnow() - dt.timedelta(hours=1)
        broken = _start("test.toy", owner)
        queue.run_queued(app)
        broken.state, broken.attempts = "running", service.MAX_ATTEMPTS
        broken.beat_at = utcnow() - dt.timedelta(hours=1)
        alive = _start("test.toy", owner)
        queue.run_queued(app)
        alive.state, alive.beat_at = "running", utcnow()  # its worker spoke a moment ago
        db.session.commit()
        service.requeue_interrupted()
        assert queue.run_queued(app) == 1  # the waiting one, handed over again
    db.session.expire_all()
    assert db.session.get(Job, waiting.id).state == "done"
    assert db.session.get(Job, broken.id).state == "failed"  # stopped its worker three times: not again
    assert db.session.get(Job, alive.id).state == "running"
    done = db.session.get(Job, waiting.id)
    done.finished_at = utcnow() - dt.timedelta(days=8)
    db.session.commit()
    path = service.result_path(done)
    assert path.is_file() and service.forget_old_results() == 1 and not path.exists()
    assert service.result_path(db.session.get(Job, waiting.id)) is None
