"""Write audit entries; services call this inside their own transaction so both commit together.

An entry is written when its transaction commits, all of a transaction's entries in one statement (a report
or a case step writes several), or sooner when an ORM query of `AuditEntry` in the transaction reads the log
(outside any savepoint: a savepoint rolled back would take entries made before it). An entry made inside a
savepoint that is rolled back goes with it, as a row would. Counting rows without naming the model, or raw
SQL, sees the log as of the last write.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, func, select
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction

from ..core.database import utcnow
from ..core.transactions import within_transaction
from ..extensions import db
from .models import AuditEntry

if TYPE_CHECKING:
    from ..auth.models import AnyUser

_PENDING = "fangan_audit_pending"  # in Session.info: [(transaction the entry was made in, row)]
_INSERT = AuditEntry.__table__.insert()


def record_audit(action: str, obj_type: str, obj_id: Any, *, user: AnyUser = None, scheme_key: str | None = None,
                 before: dict | None = None, after: dict | None = None) -> None:
    """Add an audit entry to the current transaction."""
    session = db.session()
    transaction = session.get_nested_transaction() or session.get_transaction() or session.begin()
    row = {"at": utcnow(), "action": action, "object_type": obj_type,
           "object_id": None if obj_id is None else str(obj_id), "user_id": getattr(user, "id", None),
           "scheme_key": scheme_key, "before": before, "after": after}
    session.info.setdefault(_PENDING, []).append((transaction, row))


def list_audit(*, scheme_keys: set[str] | None, limit: int = 200) -> list[AuditEntry]:
    """Latest entries; `scheme_keys=None` means all schemes."""
    query = db.select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if scheme_keys is not None:
        query = query.where(AuditEntry.scheme_key.in_(scheme_keys))
    return list(db.session.scalars(query))


KEEP_MINUTES = 10  # how long an answer kept by `change_stamp` is kept at most


def change_stamp(actions: Iterable[str], *also: Any) -> tuple[Any, ...]:
    """What an answer kept between requests depends on: the newest audit entry of one of `actions` (the changes
    that can move it, each written with its entry), the values of `also` (scalar subqueries, read in the same
    statement: the newest record of a form, say) and the ten minutes now falls in. PostgreSQL numbers rows as
    they are written, not as they are committed, so a row committed after a later one leaves the newest id
    unchanged: no answer is kept longer than that."""
    newest = select(func.max(AuditEntry.id)).where(AuditEntry.action.in_(tuple(actions))).scalar_subquery()
    row = db.session.execute(select(newest, *also)).one()
    return (*row, kept_slot())


def kept_slot(now: dt.datetime | None = None) -> dt.datetime:
    """The start of the `KEEP_MINUTES` now falls in."""
    now = now or utcnow()
    return now.replace(minute=now.minute - now.minute % KEEP_MINUTES, second=0, microsecond=0)


def _write_pending(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    if pending:
        session.connection().execute(_INSERT, [row for _transaction, row in pending])


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    if not session.in_nested_transaction():  # a savepoint released: its entries wait for the real commit
        _write_pending(session)


@event.listens_for(Session, "do_orm_execute")
def _before_reading_the_log(state: ORMExecuteState) -> None:
    if state.is_select and state.session.info.get(_PENDING) and not state.session.in_nested_transaction() and any(
            mapper.class_ is AuditEntry for mapper in state.all_mappers):
        _write_pending(state.session)


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, previous_transaction: SessionTransaction) -> None:
    pending = session.info.get(_PENDING)
    if pending:
        session.info[_PENDING] = [(t, row) for t, row in pending if not within_transaction(t, previous_transaction)]


@event.listens_for(Session, "after_transaction_end")
def _after_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the whole transaction is over: nothing it made is still to write
        session.info.pop(_PENDING, None)


