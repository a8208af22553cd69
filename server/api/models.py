"""API clients: the systems a district already runs (a digital city-management platform, a dashboard)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..core.database import UtcDateTime, utcnow
from ..extensions import db


class ApiClient(db.Model):
    """A client system with its own bearer token, acting as one user: its reach is exactly that user's roles
    and posts. Only the token's SHA-256 is kept; the token itself is shown once, when the client is created."""

    __tablename__ = "api_clients"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())

    user = relationship("User")

    @property
    def active(self) -> bool:
        return self.revoked_at is None and self.user is not None and self.user.active
