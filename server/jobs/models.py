"""A job: long work asked for on a page and done by a worker, with its progress and its result."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..core.database import JsonType, UtcDateTime, utcnow
from ..extensions import db

STATES = ("queued", "running", "done", "failed")


class Job(db.Model):
    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))              # a registered job kind
    scheme_key: Mapped[str | None] = mapped_column(String(64), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    params: Mapped[dict] = mapped_column(JsonType, default=dict)
    state: Mapped[str] = mapped_column(String(16), index=True, default="queued")
    done: Mapped[int] = mapped_column(Integer, default=0)     # progress: steps done of `total`
    total: Mapped[int] = mapped_column(Integer, default=0)
    note: Mapped[str | None] = mapped_column(Text)            # what went wrong, in words for the person
    result_file: Mapped[str | None] = mapped_column(String(200))  # under the jobs folder
    result_name: Mapped[str | None] = mapped_column(String(200))  # the name it downloads as
    result_type: Mapped[str | None] = mapped_column(String(100))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    beat_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())  # the worker's last sign of life
    finished_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed")

    @property
    def percent(self) -> int:
        return 100 if self.state == "done" else int(100 * self.done / self.total) if self.total else 0
