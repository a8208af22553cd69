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


def _own_database(backend: str, request: pytest.FixtureRequest, tmp_path, name: str) -> str:  # noqa: ANN001
    """A database of the test's own (threads need real commits, not the shared app's SAVEPOINTs)."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / (name + '.sqlite')}"
    return create_database(request.getfixturevalue("postgres_admin_url"), f"fangan_{name}")


def test_two_people_acting_on_one_case_at_once_one_wins_the_other_is_told(backend, request, tmp_path, monkeypatch):
    """Two dispatchers press a step on the same case at the same moment, on the same page version: one step is
    taken, the other is told the case changed (the stale-page message), never a server error."""
    import re

    from server.workflow import service as workflow
    from server.workflow.models import Case, CaseEvent
    from tests.integration.test_cases import report
    from tests.support.factories import load_demo, login, make_user

    app = make_app(_own_database(backend, request, tmp_path, "race"), tmp_path)
    with app.app_context():
        load_demo()
        reporter = make_user("reporter", roles=(("lidu", "staff", "shilong"),))
        for name in ("office_a", "office_b"):
            make_user(name, roles=(("lidu", "office_admin", None),))
        with app.test_request_context():
            case_id = report(reporter).id
        db.session.remove()
    clients = {}
    for name in ("office_a", "office_b"):
        clients[name] = app.test_client()
        login(clients[name], name)
    # Both open the step's page (不予交办 asks why) before either sends it.
    step = f"/cases/case/{case_id}/do/reject"
    page = clients["office_a"].get(step).get_data(as_text=True)
    version = re.search(r'name="case_version" value="(\d+)"', page).group(1)
    tokens = {name: re.search(r'name="csrf_token"[^>]*value="([^"]+)"', c.get(step)
                              .get_data(as_text=True)).group(1) for name, c in clients.items()}
    # Both requests pass their first look at the case before either acts (where the database lets them).
    meet, real = threading.Barrier(2), workflow.workflow_of
    met = threading.local()

    def workflow_of(case):  # noqa: ANN001, ANN202
        if not getattr(met, "done", False):
            met.done = True
            try:
                meet.wait(3)
            except threading.BrokenBarrierError:
                pass  # SQLite: the other request waits for the write lock, so there is nothing to meet
        return real(case)

    monkeypatch.setattr(workflow, "workflow_of", workflow_of)
    answers: dict[str, object] = {}

    def press(name: str) -> None:
        try:
            answers[name] = clients[name].post(f"/cases/case/{case_id}/do/reject",
                                               data={"csrf_token": tokens[name], "case_version": version,
                                                     "reason": "重复上报"})
        except BaseException as exc:  # noqa: BLE001 - reported below
            answers[name] = exc

    threads = [threading.Thread(target=press, args=(name,)) for name in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(getattr(a, "status_code", None) == 303 for a in answers.values()), answers
    monkeypatch.setattr(workflow, "workflow_of", real)
    messages = [clients[name].get(f"/cases/case/{case_id}").get_data(as_text=True) for name in clients]
    assert sum("This case changed while you were looking at it" in m or "您查看期间案件已有变化" in m
               for m in messages) == 1, "exactly one of the two is told the case changed"
    with app.app_context():
        assert db.session.get(Case, case_id).state == "rejected"
        assert db.session.scalar(db.select(db.func.count(CaseEvent.id))
                                 .where(CaseEvent.case_id == case_id, CaseEvent.transition == "reject")) == 1
        db.session.remove()
        db.engine.dispose()


@pytest.mark.postgresql
def test_tick_passes_over_a_case_someone_is_acting_on(backend, postgres_admin_url, tmp_path):
    """A step holds its case; a tick meanwhile skips that case's deadlines instead of waiting (the two would
    otherwise lock case and deadline in opposite orders), and the next tick takes it."""
    import datetime as dt

    from server.core.clock import utcnow
    from server.workflow import escalation
    from server.workflow import service as workflow
    from server.workflow.models import Case, CaseDeadline, EscalationApplied
    from tests.integration.test_cases import _people, fire, report

    url = create_database(postgres_admin_url, "fangan_tick_skip")
    app = make_app(url, tmp_path)
    with app.test_request_context():
        people = _people()
        case_id = fire(people["office"], report(people["reporter"]), "assign", target_unit="shilong").id
        db.session.execute(db.update(CaseDeadline).values(due_at=utcnow() - dt.timedelta(days=2)))
        db.session.commit()
        db.session.remove()
    holding, ticked = threading.Event(), threading.Event()
    results: dict[str, object] = {}

    def act() -> None:
        with app.app_context():
            workflow.lock_case(db.session.get(Case, case_id))  # a step in progress
            holding.set()
            ticked.wait(30)
            db.session.rollback()
            db.session.remove()

    def tick() -> None:
        holding.wait(30)
        with app.app_context():
            try:
                results["first"] = escalation.tick()
                db.session.commit()
            except BaseException as exc:  # noqa: BLE001 - reported below
                results["first"] = exc
            finally:
                ticked.set()
                db.session.remove()

    threads = [threading.Thread(target=act), threading.Thread(target=tick)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert isinstance(results["first"], dict) and results["first"]["checked"] == 0, results
    with app.app_context():
        assert escalation.tick()["applied"] >= 1  # released: the next tick applies it
        db.session.commit()
        assert db.session.scalar(db.select(db.func.count(EscalationApplied.id))) >= 1
        db.session.remove()
        db.engine.dispose()
