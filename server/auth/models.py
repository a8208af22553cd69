"""Accounts and role assignments."""

from __future__ import annotations

import datetime as dt
import functools
import secrets

from flask_login import AnonymousUserMixin, UserMixin
from sqlalchemy import Boolean, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from ..core.database import UtcDateTime, utcnow
from ..extensions import db


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(256))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)  # system administrator: every scheme
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    locale: Mapped[str | None] = mapped_column(String(16))
    phone: Mapped[str | None] = mapped_column(String(40))
    # Part of every session cookie's user id: changed on logout, password change or reset and blocking, so
    # that every cookie issued before (copies included) is refused from then on.
    session_token: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow)
    last_login_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime())

    roles: Mapped[list[RoleAssignment]] = relationship(back_populates="user", cascade="all, delete-orphan")
    posts = relationship("Post", back_populates="user")

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive users
        return self.active

    def get_id(self) -> str:
        return f"{self.id}:{self.session_token}"

    def end_sessions(self) -> None:
        """End every session of this user: cookies carry the old token, which no longer matches."""
        self.session_token = secrets.token_hex(16)

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)
        self.end_sessions()

    def check_password(self, password: str) -> bool:
        return password_matches(self, password)


def password_matches(user: User | None, password: str) -> bool:
    """Whether the password is the user's. Without a user the same hash is computed against a stand-in, so an
    unknown username takes as long to refuse as a wrong password (nothing tells which usernames exist)."""
    matches = check_password_hash(user.password_hash if user is not None else _stand_in_hash(), password)
    return matches and user is not None


def hash_is_current(password_hash: str) -> bool:
    """Whether a stored hash uses today's algorithm and parameters (those of new passwords)."""
    return password_hash.split("$", 1)[0] == _stand_in_hash().split("$", 1)[0]


@functools.cache
def _stand_in_hash() -> str:
    # Made like every new password's hash (same algorithm and parameters), from a password nobody knows; once
    # per process, at the first login that needs it.
    return generate_password_hash(secrets.token_urlsafe(32))


class RoleAssignment(db.Model):
    """A user holds a scheme role from a unit (the unit decides the scope for `subtree` and `posted` roles)."""

    __tablename__ = "role_assignments"
    __table_args__ = (UniqueConstraint("user_id", "scheme_key", "role_key", "unit_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    scheme_key: Mapped[str] = mapped_column(String(64), index=True)
    role_key: Mapped[str] = mapped_column(String(64))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))

    user: Mapped[User] = relationship(back_populates="roles")
    unit = relationship("Unit")


# Whoever a service acts for: a signed-in user, Flask-Login's anonymous visitor, or nobody (a public reporter,
# `fangan tick`). Permission functions answer for all three.
AnyUser = User | AnonymousUserMixin | None
