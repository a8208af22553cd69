"""The administrator-edited calendar: holidays and makeup workdays that override and extend chinesecalendar."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, Date, Integer, String, false
from sqlalchemy.orm import Mapped, mapped_column

from ..core.database import UtcDateTime, utcnow
from ..extensions import db


class CalendarDay(db.Model):
    __tablename__ = "calendar_days"

    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    working: Mapped[bool] = mapped_column(Boolean)
    name: Mapped[str] = mapped_column(String(100), default="")


class CalendarYear(db.Model):
    """A year of the administrator's table marked complete (the State Council's notice entered in full): only
    then does the "year not known" warning go for that year."""

    __tablename__ = "calendar_years"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    complete: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    source: Mapped[str | None] = mapped_column(String(200))  # the file it came from, for the record
    updated_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), default=utcnow, onupdate=utcnow)
