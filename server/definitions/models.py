"""Stored definition versions: immutable rows keyed by content hash, and which scheme version is current."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..core.database import JsonType, UtcDateTime, utcnow
from ..extensions import db

scheme_version_members = db.Table(
    "scheme_version_members",
    db.Column("scheme_version_id", db.ForeignKey("scheme_versions.id"), primary_key=True),
    db.Column("definition_version_id", db.ForeignKey("definition_versions.id"), primary_key=True),
)


class DefinitionVersion(db.Model):
    """One definition's content, never changed once written; records point here."""

    __tablename__ = "definition_versions"
    __table_args__ = (UniqueConstraint("kind", "key", "content_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    key: Mapped[str] = mapped_column(String(64), index=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict] = mapped_column(JsonType)
    file: Mapped[str] = mapped_column(String(500))
    source: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)

    @property
    def short_hash(self) -> str:
        return self.content_hash[:10]


class SchemeVersion(db.Model):
    """A scheme and the exact versions of everything it uses, loaded together."""

    __tablename__ = "scheme_versions"
    # The same definitions written differently (a comment, a file's layout) are a version of their own: the
    # files are what an administrator edits and gets back. Versions stored before files were kept have none.
    __table_args__ = (UniqueConstraint("scheme_key", "content_hash", "files_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    scheme_key: Mapped[str] = mapped_column(String(64), index=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    name: Mapped[dict | str] = mapped_column(JsonType)
    loaded_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    loaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    activated_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    note: Mapped[str | None] = mapped_column(String(500))
    files_hash: Mapped[str | None] = mapped_column(String(64))
    based_on_id: Mapped[int | None] = mapped_column(ForeignKey("scheme_versions.id"))

    members: Mapped[list[DefinitionVersion]] = relationship(
        secondary=scheme_version_members, order_by="(DefinitionVersion.kind, DefinitionVersion.key)"
    )
    loaded_by = relationship("User")
    files: Mapped[list[SchemeVersionFile]] = relationship(order_by="SchemeVersionFile.path",
                                                          cascade="all, delete-orphan")

    @property
    def short_hash(self) -> str:
        return self.content_hash[:10]

    def member(self, kind: str, key: str) -> DefinitionVersion | None:
        return next((m for m in self.members if m.kind == kind and m.key == key), None)

    @property
    def scheme_definition(self) -> DefinitionVersion:
        return next(m for m in self.members if m.kind == "scheme")


class SchemeVersionFile(db.Model):
    """One file of a scheme version exactly as it was loaded (bytes, byte-order mark and line ends included)."""

    __tablename__ = "scheme_version_files"

    scheme_version_id: Mapped[int] = mapped_column(ForeignKey("scheme_versions.id"), primary_key=True)
    path: Mapped[str] = mapped_column(String(500), primary_key=True)  # relative to the folder or zip loaded
    content: Mapped[bytes] = mapped_column(LargeBinary)


class SchemeRecord(db.Model):
    """One district's scheme and the version in force."""

    __tablename__ = "schemes"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    current_version_id: Mapped[int | None] = mapped_column(ForeignKey("scheme_versions.id"))
    current_version: Mapped[SchemeVersion | None] = relationship()
