"""Concurrent loads of the same scheme on PostgreSQL: unique keys keep one copy and nobody gets an error."""

from __future__ import annotations

import threading

import pytest

from server.definitions.models import DefinitionVersion, SchemeRecord, SchemeVersion
from server.definitions.service import load_scheme
from server.extensions import db
from tests.conftest import make_app
from tests.support.factories import demo_files
from tests.support.postgres import create_database


@pytest.mark.postgresql
def test_parallel_loads_store_one_version(backend, postgres_admin_url, tmp_path):
    url = create_database(postgres_admin_url, "fangan_concurrency")
    app = make_app(url, tmp_path)
    files = demo_files()
    workers = 6
    barrier = threading.Barrier(workers)
    results: list[tuple[int, bool]] = []
    failures: list[BaseException] = []

    def load() -> None:
        with app.app_context():
            try:
                barrier.wait(10)
                version, created = load_scheme(files)
                db.session.commit()
                results.append((version.id, created))
            except BaseException as exc:  # noqa: BLE001 - reported below
                failures.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=load) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not failures, failures
    assert len({vid for vid, _ in results}) == 1 and len(results) == workers
    assert sum(created for _, created in results) == 1
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(SchemeVersion.id))) == 1
        assert db.session.scalar(db.select(db.func.count(SchemeRecord.key))) == 1
        version = db.session.scalar(db.select(SchemeVersion))
        assert db.session.scalar(db.select(db.func.count(DefinitionVersion.id))) == len(version.members)
        db.session.remove()
        db.engine.dispose()


@pytest.mark.postgresql
def test_three_tick_processes_apply_each_escalation_once(backend, postgres_admin_url, tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    from server.workflow.models import Case, CaseDeadline, CaseEvent, EscalationApplied
    from tests.integration.test_cases import _people, fire, report

    url = create_database(postgres_admin_url, "fangan_tick")
    app = make_app(url, tmp_path)
    with app.test_request_context():
        people = _people()
        cases = [fire(people["office"], report(people["reporter"], size=float(i % 5)), "assign",
                      target_unit="shilong").id for i in range(24)]
        db.session.execute(db.update(CaseDeadline).values(due_at=db.func.now() - db.text("interval '2 days'")))
        db.session.commit()
        db.session.remove()
    fangan = Path(sys.executable).with_name("fangan")
    env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": "tick-test"}
    processes = [subprocess.Popen([str(fangan), "tick"], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outputs = [p.communicate(timeout=120) for p in processes]
    assert all(p.returncode == 0 for p in processes), outputs
    applied = sum(int(out.split("applied ")[1].split()[0]) for out, _err in outputs)
    with app.app_context():
        assert applied == len(cases)  # each overdue deadline escalated once, whichever process got it
        assert db.session.scalar(db.select(db.func.count(EscalationApplied.id))) == len(cases)
        for case_id in cases:
            events = db.session.scalars(db.select(CaseEvent).filter_by(case_id=case_id, kind="escalation")).all()
            assert len(events) == 1
            assert db.session.get(Case, case_id).overdue
        db.session.remove()
        db.engine.dispose()
