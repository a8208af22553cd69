"""Cases, their timeline, deadlines, escalations applied, and in-app notifications."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, UniqueConstraint, event, inspect
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..core.database import JsonType, UtcDateTime, utcnow
from ..extensions import db


class Case(db.Model):
    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(primary_key=True)
    scheme_key: Mapped[str] = mapped_column(String(64), index=True)
    workflow_key: Mapped[str] = mapped_column(String(64))
    # The workflow version the case was opened under: it keeps it until an administrator migrates it.
    definition_version_id: Mapped[int] = mapped_column(ForeignKey("definition_versions.id"))
    state: Mapped[str] = mapped_column(String(64), index=True)
    state_kind: Mapped[str] = mapped_column(String(16), index=True)
    outcome: Mapped[str | None] = mapped_column(String(16))  # of the final state: resolved, rejected, …
    data: Mapped[dict] = mapped_column(JsonType)
    category: Mapped[str | None] = mapped_column(String(64), index=True)
    area_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"), index=True)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)  # the assigned unit
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    reporter_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    # The reporter's own unit when they reported it (their post's, or the one unit of their roles): the unit a
    # report counts for with `counts_for: reporter` (上报 credit), wherever the case's place or holder is.
    reporter_unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    submission_id: Mapped[int | None] = mapped_column(ForeignKey("submissions.id"))
    # Where it came from: staff (the report page, the API), patrol (a patrol record's finding) or public.
    source: Mapped[str] = mapped_column(String(16), default="staff", server_default="staff")
    overdue: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    rework_count: Mapped[int] = mapped_column(Integer, default=0)
    extension_count: Mapped[int] = mapped_column(Integer, default=0)
    reopen_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow, index=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    closed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)

    # Optimistic locking: an UPDATE that finds another version changes nothing and fails.
    __mapper_args__ = {"version_id_col": version}
    # Inboxes read a unit's open cases newest first: a partial index keeps that fast at millions of cases.
    __table_args__ = (db.Index("ix_cases_open_by_unit", "unit_id", "id",
                               postgresql_where=db.text("state_kind <> 'final'"),
                               sqlite_where=db.text("state_kind <> 'final'")),)

    definition_version = relationship("DefinitionVersion")
    area = relationship("Area")
    unit = relationship("Unit", foreign_keys=[unit_id])
    assignee = relationship("User", foreign_keys=[assignee_id])
    reporter = relationship("User", foreign_keys=[reporter_id])
    updated_by = relationship("User", foreign_keys=[updated_by_id])
    submission = relationship("Submission")
    events: Mapped[list[CaseEvent]] = relationship(back_populates="case", order_by="CaseEvent.id")
    deadlines: Mapped[list[CaseDeadline]] = relationship(back_populates="case", order_by="CaseDeadline.id")


class CaseEvent(db.Model):
    """One step of a case's timeline."""

    __tablename__ = "case_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(32))  # opened | transition | escalation
    transition: Mapped[str | None] = mapped_column(String(64))
    from_state: Mapped[str | None] = mapped_column(String(64))
    to_state: Mapped[str | None] = mapped_column(String(64))
    submission_id: Mapped[int | None] = mapped_column(ForeignKey("submissions.id"))
    changes: Mapped[dict | None] = mapped_column(JsonType)
    note: Mapped[str | None] = mapped_column(Text)
    # The case moved from one unit to another in this step (None: it stayed where it was). A move to a unit
    # above is an escalation (上报): the unit it left keeps the credit (`counts_for: escalator`).
    from_unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    to_unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))

    case: Mapped[Case] = relationship(back_populates="events")
    user = relationship("User")
    submission = relationship("Submission")


class CaseDeadline(db.Model):
    __tablename__ = "case_deadlines"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    key: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[dt.datetime] = mapped_column(UtcDateTime())
    due_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), index=True)
    stopped_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), index=True)
    met: Mapped[bool | None] = mapped_column(Boolean)
    calendar_fallback: Mapped[bool] = mapped_column(Boolean, default=False)  # an unknown year: Mon–Fri used
    paused_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())  # while the case waits (e.g. on the reporter)
    # When `fangan tick` next looks at it: the earliest moment an escalation not yet applied may fall due;
    # none once nothing is left to apply. A deadline written or moved is looked at by the next tick.
    check_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), index=True)

    case: Mapped[Case] = relationship(back_populates="deadlines")


@event.listens_for(CaseDeadline, "before_insert")
@event.listens_for(CaseDeadline, "before_update")
def _look_again(_mapper: Any, _connection: Any, deadline: CaseDeadline) -> None:
    """A new deadline, or one whose due time moved or that runs again after a wait, is looked at by the next
    tick, which works out when to look next (the tick's own writes to `check_at` change neither)."""
    state = inspect(deadline)
    if deadline.stopped_at is not None:
        deadline.check_at = None  # a stopped deadline escalates no more
    elif (state.transient or state.pending or any(state.attrs[name].history.has_changes()
                                                   for name in ("due_at", "paused_at"))) \
            and not state.attrs.check_at.history.has_changes():
        deadline.check_at = deadline.started_at


class EscalationApplied(db.Model):
    """One escalation applied to one deadline: the unique key makes `fangan tick` apply it exactly once."""

    __tablename__ = "escalations_applied"
    __table_args__ = (UniqueConstraint("deadline_id", "escalation"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    deadline_id: Mapped[int] = mapped_column(ForeignKey("case_deadlines.id"), index=True)
    escalation: Mapped[str] = mapped_column(String(64))
    applied_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    host: Mapped[str | None] = mapped_column(String(100))


class Notification(db.Model):
    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    message: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    read_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    # No longer written: deliveries to gateways are the outbox's (server/events); kept for the rows of before.
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)


def unit_move(before: Any, after: Any) -> dict[str, int | None]:
    """A step's `from_unit_id` and `to_unit_id` when it moved the case between units (units, not ids: the ids
    of a case's relationship are set only when the session flushes)."""
    if before is None or after is None or before is after:
        return {}
    return {"from_unit_id": before.id, "to_unit_id": after.id}
