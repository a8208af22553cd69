"""Accounts: create users, check passwords, reset them, grant roles. Shared by pages and the CLI."""

from __future__ import annotations

import secrets

from flask_babel import gettext as _
from werkzeug.security import generate_password_hash

from ..audit.service import record_audit
from ..core.database import utcnow
from ..core.errors import Conflict, NotFound
from ..definitions.service import scheme_in_force
from ..extensions import db
from .models import AnyUser, RoleAssignment, User, hash_is_current, password_matches

MIN_PASSWORD_LENGTH = 10


def generate_password() -> str:
    """A random password that is easy to type on a phone (no look-alike characters)."""
    alphabet = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "".join(secrets.choice(alphabet) for _ in range(14))


def get_user_by_username(username: str) -> User | None:
    return db.session.scalar(db.select(User).filter_by(username=username.strip()))


def create_user(username: str, display_name: str, password: str | None = None, *, is_admin: bool = False,
                actor: AnyUser = None) -> tuple[User, str]:
    """Create a user; return it with its password (generated when none is given)."""
    username = username.strip()
    if not username:
        raise Conflict(_("A username is needed."))
    if get_user_by_username(username) is not None:
        raise Conflict(_("The username %(name)s is taken.", name=username))
    password = password or generate_password()
    check_password_strength(password)
    user = User(username=username, display_name=display_name.strip() or username, is_admin=is_admin)
    user.set_password(password)
    db.session.add(user)
    db.session.flush()
    record_audit("user.create", "user", user.id, user=actor, after={"username": username, "is_admin": is_admin})
    return user, password


def check_password_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Conflict(_("A password needs at least %(num)d characters.", num=MIN_PASSWORD_LENGTH))


def authenticate(username: str, password: str) -> User | None:
    """The active user with this username and password, or None.

    Every attempt computes one password hash — for an unknown username too, against a stand-in — so a wrong
    password, an unknown user and a blocked one are refused alike and in the same time.
    """
    user = get_user_by_username(username)
    matches = password_matches(user, password)
    if user is None or not matches or not user.active:
        return None
    if not hash_is_current(user.password_hash):
        # Hashed with older parameters: brought up to today's, so every account takes the same time to check.
        user.password_hash = generate_password_hash(password)
    user.last_login_at = utcnow()
    record_audit("user.login", "user", user.id, user=user)
    return user


def log_out(user: User) -> None:
    """End the user's sessions on the server: this one (copies of its cookie included) and those on other
    devices. A session is only a signed cookie; what the server keeps is the token it must carry."""
    user.end_sessions()
    record_audit("user.logout", "user", user.id, user=user)


def reset_password(username: str, actor: AnyUser = None) -> str:
    """Give a user a new generated password; every session of theirs ends."""
    user = get_user_by_username(username)
    if user is None:
        raise NotFound(_("No user %(name)s.", name=username))
    password = generate_password()
    user.set_password(password)
    record_audit("user.reset_password", "user", user.id, user=actor)
    return password


def change_password(user: User, current: str, new: str) -> None:
    """Change one's own password; every session ends (the page that changed it starts a new one)."""
    if not user.check_password(current):
        raise Conflict(_("The current password is wrong."))
    check_password_strength(new)
    user.set_password(new)
    record_audit("user.change_password", "user", user.id, user=user)


def grant_role(user: User, scheme_key: str, role_key: str, unit_id: int | None,
               actor: AnyUser = None) -> RoleAssignment:
    """Give a user a scheme role from a unit; the role must exist in the scheme in force."""
    scheme = scheme_in_force(scheme_key)
    if scheme is None:
        raise NotFound(_("No active scheme %(key)s.", key=scheme_key))
    if role_key not in scheme.roles:
        raise NotFound(_("The scheme %(key)s has no role %(role)s.", key=scheme_key, role=role_key))
    if scheme.roles[role_key].scope in ("subtree", "posted") and unit_id is None:
        # Such a role reaches only its unit (and below): without one it would silently reach nothing.
        raise Conflict(_("The role %(role)s needs a unit.", role=role_key))
    assignment = RoleAssignment(user=user, scheme_key=scheme_key, role_key=role_key, unit_id=unit_id)
    db.session.add(assignment)
    db.session.flush()
    record_audit("user.grant_role", "user", user.id, user=actor, scheme_key=scheme_key,
                 after={"role": role_key, "unit_id": unit_id})
    return assignment


def list_users() -> list[User]:
    return list(db.session.scalars(db.select(User).order_by(User.username)))


def get_user(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound(_("No such user."))
    return user


def set_user_active(user: User, active: bool, actor: AnyUser = None) -> None:
    """Block or unblock a user; a blocked user's sessions stop working at once."""
    if actor is not None and user.id == getattr(actor, "id", None) and not active:
        raise Conflict(_("You cannot block yourself."))
    user.active = active
    user.end_sessions()
    record_audit("user.block" if not active else "user.unblock", "user", user.id, user=actor)


def revoke_role(assignment_id: int, actor: AnyUser = None) -> None:
    assignment = db.session.get(RoleAssignment, assignment_id)
    if assignment is None:
        raise NotFound(_("No such role assignment."))
    record_audit("user.revoke_role", "user", assignment.user_id, user=actor, scheme_key=assignment.scheme_key,
                 before={"role": assignment.role_key, "unit_id": assignment.unit_id})
    db.session.delete(assignment)
