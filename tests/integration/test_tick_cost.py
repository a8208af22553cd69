"""`fangan tick` costs what is new: it looks at a deadline when one of its escalations falls due (or when the
deadline was written or moved), never again once nothing is left, and applies each escalation once without
a database error (no unique key refusing repeats as control flow)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import event, insert

from server.extensions import db
from server.workflow import escalation
from server.workflow.models import Case, CaseDeadline, EscalationApplied
from tests.integration.test_cases import _people, fire, report


@pytest.fixture
def people(ctx):
    with ctx.test_request_context():  # forms are request-bound, as in test_cases
        yield _people()


@pytest.fixture
def db_errors():
    """Every error the database raised while the test ran (PostgreSQL would log each one)."""
    seen: list[str] = []

    def record(context) -> None:  # noqa: ANN001
        seen.append(str(context.original_exception))

    engine = db.session.get_bind().engine  # the tests' session may be bound to one connection of it
    event.listen(engine, "handle_error", record)
    yield seen
    event.remove(engine, "handle_error", record)


def test_each_escalation_at_its_moment_and_then_never_looked_at_again(people, db_errors):
    case = fire(people["office"], report(people["reporter"], 1.0), "assign", target_unit="shilong")
    deadline = next(d for d in case.deadlines if d.stopped_at is None)
    due = deadline.due_at
    first = escalation.tick(deadline.started_at)  # new: looked at once, and told when to look again
    db.session.commit()
    warn_at = deadline.check_at
    assert first == {"checked": 1, "applied": 0, "last_id": deadline.id}
    assert deadline.started_at < warn_at < due  # the due-soon warning's moment: 2 working hours before
    assert escalation.tick(warn_at - dt.timedelta(seconds=1))["checked"] == 0  # nothing has come
    warned = escalation.tick(warn_at)
    db.session.commit()
    assert warned["applied"] == 1 and deadline.check_at == due  # next: the overdue escalation
    assert escalation.tick(due)["applied"] == 0  # due, not yet past due
    db.session.commit()
    late = escalation.tick(due + dt.timedelta(minutes=5))
    db.session.commit()
    assert late["applied"] == 1 and deadline.check_at is None  # nothing left: never looked at again
    assert escalation.tick(due + dt.timedelta(days=30)) == {"checked": 0, "applied": 0, "last_id": 0}
    assert db.session.scalar(db.select(db.func.count(EscalationApplied.id))) == 2
    assert db_errors == []


def test_a_warning_whose_moment_passed_unseen_is_dropped_and_a_moved_deadline_is_looked_at(people, db_errors):
    case = fire(people["office"], report(people["reporter"], 1.0), "assign", target_unit="shilong")
    deadline = next(d for d in case.deadlines if d.stopped_at is None)
    after = deadline.due_at + dt.timedelta(hours=1)  # no tick ran before the deadline: only "overdue" applies
    assert escalation.tick(after)["applied"] == 1
    db.session.commit()
    assert deadline.check_at is None
    deadline.due_at = after + dt.timedelta(days=2)  # moved (a calendar change): looked at by the next tick
    db.session.commit()
    assert deadline.check_at == deadline.started_at
    assert escalation.tick(after)["checked"] == 1
    db.session.commit()
    assert deadline.check_at is not None and deadline.check_at > after
    assert db_errors == []


def test_ten_thousand_handled_overdue_deadlines_cost_a_tick_nothing(people, db_errors):
    """10,000 overdue deadlines whose escalations were applied (as before this version: every one is looked
    at once after the upgrade, then never again); a tick then reads no deadline at all."""
    case = fire(people["office"], report(people["reporter"], 1.0), "assign", target_unit="shilong")
    start = next(d for d in case.deadlines if d.stopped_at is None).started_at
    due = start + dt.timedelta(days=1)
    db.session.execute(insert(CaseDeadline), [
        {"case_id": case.id, "key": "rectify", "started_at": start, "due_at": due, "check_at": start,
         "calendar_fallback": False} for _ in range(10_000)])
    ids = db.session.scalars(db.select(CaseDeadline.id).where(CaseDeadline.due_at == due)).all()
    db.session.execute(insert(EscalationApplied), [
        {"deadline_id": i, "escalation": name, "applied_at": due, "host": "before"}
        for i in ids for name in ("rectify_due_soon", "rectify_overdue")])
    db.session.commit()
    now = due + dt.timedelta(days=3)
    checked, applied, last = 0, 0, 0
    while True:  # as the CLI does: batches, committed one by one
        counts = escalation.tick(now, after_id=last)
        db.session.commit()
        checked, applied, last = checked + counts["checked"], applied + counts["applied"], counts["last_id"]
        if counts["checked"] < 200:
            break
    assert checked == 10_001 and applied == 1  # only the case's own deadline was new: it is overdue
    statements: list[str] = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        assert escalation.tick(now + dt.timedelta(hours=1)) == {"checked": 0, "applied": 0, "last_id": 0}
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    statements = [s for s in statements if not s.startswith(("SAVEPOINT", "RELEASE"))]  # the tests' isolation
    assert len(statements) == 1 and "case_deadlines.check_at <=" in statements[0]  # one indexed read, no rows
    assert db.session.scalar(db.select(db.func.count(CaseDeadline.id)).where(CaseDeadline.check_at.is_not(None),
                                                                             CaseDeadline.due_at == due)) == 0
    assert db_errors == []
    assert db.session.get(Case, case.id) is not None


def test_one_deadline_that_cannot_be_handled_stops_no_other(people, db_errors, monkeypatch, caplog):
    first = fire(people["office"], report(people["reporter"], 1.0), "assign", target_unit="shilong")
    second = fire(people["office"], report(people["reporter"], 2.0), "assign", target_unit="shilong")
    late = max(d.due_at for c in (first, second) for d in c.deadlines) + dt.timedelta(hours=1)
    real = escalation.workflow_of

    def broken_for_the_first(case):  # noqa: ANN001
        if case.id == first.id:
            raise ValueError("a definition that cannot be read")
        return real(case)

    monkeypatch.setattr(escalation, "workflow_of", broken_for_the_first)
    counts = escalation.tick(late)
    db.session.commit()
    assert counts["applied"] == 1 and "could not be handled" in caplog.text  # the second case's overdue
    broken = next(d for d in first.deadlines if d.stopped_at is None)
    assert broken.check_at == late + dt.timedelta(hours=1)  # looked at again later, not on every tick
