"""Units as a tree, areas (roads, segments, grids of any depth) and posts (who holds which tier over what)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, Date, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..core.database import JsonType, UtcDateTime, utcnow
from ..extensions import db


class Unit(db.Model):
    __tablename__ = "units"
    __table_args__ = (UniqueConstraint("scheme_key", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    scheme_key: Mapped[str] = mapped_column(String(64), index=True)
    key: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(64))
    name: Mapped[dict | str] = mapped_column(JsonType)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    path: Mapped[str] = mapped_column(String(1000), index=True, default="")  # "/1/4/9/": subtree by prefix
    position: Mapped[int] = mapped_column(default=0)
    difficulty: Mapped[int | None] = mapped_column()
    public: Mapped[bool] = mapped_column(Boolean, default=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    source: Mapped[str] = mapped_column(String(16), default="scheme")  # scheme | import | manual

    parent: Mapped[Unit | None] = relationship(remote_side=[id], back_populates="children")
    children: Mapped[list[Unit]] = relationship(back_populates="parent", order_by="Unit.position")


class Area(db.Model):
    __tablename__ = "areas"
    __table_args__ = (UniqueConstraint("scheme_key", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    scheme_key: Mapped[str] = mapped_column(String(64), index=True)
    key: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(64))
    name: Mapped[dict | str] = mapped_column(JsonType)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"), index=True)
    path: Mapped[str] = mapped_column(String(1000), index=True, default="")  # "/3/8/": descendants by prefix
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    range_from: Mapped[dict | str | None] = mapped_column(JsonType)
    range_to: Mapped[dict | str | None] = mapped_column(JsonType)
    length_m: Mapped[float | None] = mapped_column()
    description: Mapped[dict | str | None] = mapped_column(JsonType)
    geometry: Mapped[dict | None] = mapped_column(JsonType)
    position: Mapped[int] = mapped_column(default=0)
    source: Mapped[str] = mapped_column(String(16), default="scheme")  # scheme | import | manual
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    parent: Mapped[Area | None] = relationship(remote_side=[id], back_populates="children")
    children: Mapped[list[Area]] = relationship(back_populates="parent", order_by="Area.position")
    unit: Mapped[Unit | None] = relationship()


class Post(db.Model):
    """A person holding a tier of the chief ladder over an area or unit for a span of dates."""

    __tablename__ = "posts"

    id: Mapped[int] = mapped_column(primary_key=True)
    scheme_key: Mapped[str] = mapped_column(String(64), index=True)
    key: Mapped[str | None] = mapped_column(String(64))
    tier_key: Mapped[str] = mapped_column(String(64), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    holder_name: Mapped[str] = mapped_column(String(100))
    title: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(40))
    duties: Mapped[list | None] = mapped_column(JsonType)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    area_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"), index=True)
    started_on: Mapped[dt.date] = mapped_column(Date)
    ended_on: Mapped[dt.date | None] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)

    user = relationship("User", back_populates="posts")
    unit: Mapped[Unit | None] = relationship()
    area: Mapped[Area | None] = relationship()

    def holds_on(self, day: dt.date) -> bool:
        return self.started_on <= day and (self.ended_on is None or day <= self.ended_on)
