"""Reports from the public: the case they opened, the tracking code, the reporter's sealed contact, the
moderation of what they wrote, and their answer to the follow-up."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..core.database import UtcDateTime, utcnow
from ..extensions import db


class PublicReport(db.Model):
    __tablename__ = "public_reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    scheme_key: Mapped[str] = mapped_column(String(64), index=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)  # the tracking code the reporter keeps
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), unique=True)
    channel: Mapped[str] = mapped_column(String(16), default="web")  # web | open311 | api
    client: Mapped[str | None] = mapped_column(String(64))  # the Open311 or API client that sent it
    # Keyed hashes, to find a flood of reports from one place without keeping addresses.
    address_hash: Mapped[str | None] = mapped_column(String(32), index=True)
    device_hash: Mapped[str | None] = mapped_column(String(32), index=True)
    # Sealed (server.core.secrets): a database dump does not show who reported.
    name_sealed: Mapped[str | None] = mapped_column(Text)
    phone_sealed: Mapped[str | None] = mapped_column(Text)
    phone_masked: Mapped[str | None] = mapped_column(String(24))
    email_sealed: Mapped[str | None] = mapped_column(Text)  # an Open311 client's `email`
    # An Open311 client's `media_url`: a photo kept on the client's own server, linked, never fetched.
    media_url: Mapped[str | None] = mapped_column(String(2000))
    # What the reporter wrote and photographed is shown publicly only once a moderator has approved it.
    moderation: Mapped[str] = mapped_column(String(16), default="pending", index=True)  # pending|approved|rejected
    moderated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    moderated_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    moderation_note: Mapped[str | None] = mapped_column(Text)
    exposed: Mapped[bool] = mapped_column(Boolean, default=False, index=True)  # on the exposure list
    # The follow-up: solved or not, and how satisfied, once.
    confirmed: Mapped[str | None] = mapped_column(String(16))  # solved | reopened
    satisfaction: Mapped[str | None] = mapped_column(String(32))
    followup_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime(), index=True)
    followup_note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow, index=True)

    case = relationship("Case")
    moderated_by = relationship("User")
