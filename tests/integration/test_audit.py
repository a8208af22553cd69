"""Audit entries go with their transaction: written together at commit, seen by a read of the log before
it, dropped with a rolled-back savepoint or transaction."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.engine import Engine

from server.audit.models import AuditEntry
from server.audit.service import list_audit, record_audit
from server.extensions import db


@pytest.fixture
def inserts(ctx) -> Iterator[list[str]]:
    """The INSERT statements into the audit log, as they are sent."""
    seen: list[str] = []

    def watch(conn, cursor, statement, *args) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO AUDIT_ENTRIES"):
            seen.append(statement)

    event.listen(Engine, "before_cursor_execute", watch)
    yield seen
    event.remove(Engine, "before_cursor_execute", watch)


def _actions() -> list[str]:
    return list(db.session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))


def test_entries_of_a_transaction_are_written_together_at_commit(inserts):
    for action in ("one", "two", "three"):
        record_audit(action, "thing", 1, scheme_key="lidu", after={"n": action})
    assert inserts == []  # nothing sent before the commit
    db.session.commit()
    assert len(inserts) == 1
    assert _actions() == ["one", "two", "three"]
    entry = db.session.scalar(select(AuditEntry).filter_by(action="two"))
    assert (entry.object_type, entry.object_id, entry.scheme_key, entry.after) == ("thing", "1", "lidu", {"n": "two"})


def test_reading_the_log_in_the_transaction_sees_its_entries_once(inserts):
    record_audit("early", "thing", 1)
    assert [e.action for e in list_audit(scheme_keys=None)] == ["early"]
    assert db.session.scalar(select(func.count(AuditEntry.id))) == 1
    record_audit("late", "thing", 2)
    db.session.commit()
    assert _actions() == ["early", "late"]  # the first is not written twice
    assert len(inserts) == 2


def test_a_rolled_back_savepoint_takes_its_entries_with_it(inserts):
    record_audit("before", "thing", 1)
    with pytest.raises(RuntimeError):
        with db.session.begin_nested():
            record_audit("inside", "thing", 2)
            with db.session.begin_nested():
                record_audit("deeper", "thing", 3)
            raise RuntimeError("undone")
    with db.session.begin_nested():
        record_audit("kept", "thing", 4)
    db.session.commit()
    assert _actions() == ["before", "kept"]


def test_a_rolled_back_transaction_writes_nothing(inserts):
    record_audit("gone", "thing", 1)
    db.session.rollback()
    record_audit("after", "thing", 2)
    db.session.commit()
    assert _actions() == ["after"]


def test_reading_the_log_inside_a_savepoint_rolled_back_loses_nothing(inserts):
    record_audit("outer", "thing", 1)
    with pytest.raises(RuntimeError):
        with db.session.begin_nested():
            list_audit(scheme_keys=None)
            raise RuntimeError("undone")
    db.session.commit()
    assert _actions() == ["outer"]
