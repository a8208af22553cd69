"""The outbox: each case event (and notification) a receiver wants, stored in the transaction that made it, and
its delivery to each receiver: tried until it is taken, once."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..core.database import JsonType, UtcDateTime, utcnow
from ..extensions import db


class OutboxEvent(db.Model):
    __tablename__ = "outbox_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))  # case.opened, case.transition, …, notification.created
    scheme_key: Mapped[str | None] = mapped_column(String(64), index=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    payload: Mapped[dict] = mapped_column(JsonType)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow, index=True)

    deliveries: Mapped[list[OutboxDelivery]] = relationship(back_populates="event")


class OutboxDelivery(db.Model):
    __tablename__ = "outbox_deliveries"
    __table_args__ = (UniqueConstraint("event_id", "receiver"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("outbox_events.id"), index=True)
    receiver: Mapped[str] = mapped_column(String(64), index=True)
    state: Mapped[str] = mapped_column(String(16), default="pending", index=True)  # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow, index=True)
    # A host sending it holds it until then: another host's tick leaves it alone meanwhile.
    claimed_until: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())

    event: Mapped[OutboxEvent] = relationship(back_populates="deliveries")
