"""Form submissions and the files uploaded with them."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..core.database import JsonType, UtcDateTime, utcnow
from ..extensions import db


class Submission(db.Model):
    """One filled form, with the exact definition version it was made under."""

    __tablename__ = "submissions"
    # Rules count records of a form by time; on PostgreSQL the counts come from the index alone.
    __table_args__ = (Index("ix_submissions_counting", "scheme_key", "form_key", "occurred_at",
                            postgresql_include=["id", "user_id", "unit_id", "area_id"]),)

    id: Mapped[int] = mapped_column(primary_key=True)
    scheme_key: Mapped[str] = mapped_column(String(64), index=True)
    form_key: Mapped[str] = mapped_column(String(64), index=True)
    definition_version_id: Mapped[int] = mapped_column(ForeignKey("definition_versions.id"), index=True)
    # One token per rendered form: a double tap or a resend after a timeout finds the first record.
    token: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    post_id: Mapped[int | None] = mapped_column(ForeignKey("posts.id"))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    area_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"), index=True)
    data: Mapped[dict] = mapped_column(JsonType)
    location: Mapped[dict | None] = mapped_column(JsonType)
    submitted_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow, index=True)
    # When the recorded thing happened (the form's `record_time` field), which is what rules count by:
    # a patrol filed offline on Sunday and sent on Monday belongs to Sunday's week.
    occurred_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    # Checks that flag a record without refusing it, e.g. {"far_from_area": {"distance_m": 812}}.
    flags: Mapped[dict | None] = mapped_column(JsonType)
    # A record made from another one (a case report opened from a patrol's finding).
    source_id: Mapped[int | None] = mapped_column(ForeignKey("submissions.id"), index=True)

    # Not stored: set on a record handed back because the same rendered form was sent again, so that what a
    # new record starts (a case, a report) is not looked for, or started twice.
    resent = False

    user = relationship("User")
    unit = relationship("Unit")
    area = relationship("Area")
    post = relationship("Post")
    definition_version = relationship("DefinitionVersion")
    uploads: Mapped[list[Upload]] = relationship(back_populates="submission", order_by="Upload.id")


class Upload(db.Model):
    """A checked, re-encoded file stored under its content hash; evidence read from its EXIF before stripping."""

    __tablename__ = "uploads"

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    extension: Mapped[str] = mapped_column(String(8))
    mime: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    original_name: Mapped[str] = mapped_column(String(200))
    evidence: Mapped[dict | None] = mapped_column(JsonType)
    # Which rendered form (token) and field it was sent with, so a re-shown form keeps it.
    token: Mapped[str] = mapped_column(String(64), index=True)
    field_path: Mapped[str] = mapped_column(String(200))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    submission_id: Mapped[int | None] = mapped_column(ForeignKey("submissions.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)

    submission: Mapped[Submission | None] = relationship(back_populates="uploads")
