"""API clients (create, revoke, list, authenticate by token) and the case listing the JSON API offers.

Shared by the CLI and the API views; everything else the API does goes through the services the pages call.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from typing import TYPE_CHECKING, Any

from flask_babel import gettext as _

from ..audit.service import record_audit
from ..auth import permissions
from ..auth.service import get_user_by_username
from ..core.database import utcnow
from ..core.errors import Conflict, NotFound, PermissionDenied
from ..definitions.service import scheme_in_force
from ..extensions import db
from ..workflow.models import Case, CaseEvent
from .models import ApiClient

if TYPE_CHECKING:
    from ..auth.models import AnyUser

TOKEN_PREFIX = "fg_"  # noqa: S105 - not a secret: says what a leaked string is, so that secret scanners and people recognise it
# `last_used_at` is written at most this often, so that a dashboard polling every few seconds reads, not writes.
TOUCH_EVERY = dt.timedelta(minutes=1)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_client(name: str, username: str, *, actor: AnyUser = None) -> tuple[ApiClient, str]:
    """Create a client acting as `username`; return it with its token (shown once, only its hash is kept)."""
    name = name.strip()
    if not name or len(name) > 100:
        raise Conflict(_("A client needs a name of at most 100 characters."))
    if db.session.scalar(db.select(ApiClient.id).filter_by(name=name)) is not None:
        raise Conflict(_("There is already a client named %(name)s.", name=name))
    user = get_user_by_username(username)
    if user is None:
        raise NotFound(_("No user %(name)s.", name=username))
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    client = ApiClient(name=name, token_hash=hash_token(token), user_id=user.id)
    db.session.add(client)
    db.session.flush()
    record_audit("api.create_client", "api_client", client.id, user=actor,
                 after={"name": name, "acts_as": user.username})
    return client, token


def revoke_client(name: str, *, actor: AnyUser = None) -> ApiClient:
    """Refuse the client's token from now on (the row stays, for the audit trail)."""
    client = db.session.scalar(db.select(ApiClient).filter_by(name=name.strip()))
    if client is None:
        raise NotFound(_("No client %(name)s.", name=name))
    if client.revoked_at is None:
        client.revoked_at = utcnow()
        record_audit("api.revoke_client", "api_client", client.id, user=actor, after={"name": client.name})
    return client


def list_clients() -> list[ApiClient]:
    return list(db.session.scalars(db.select(ApiClient).order_by(ApiClient.name)))


def authenticate(token: str) -> ApiClient | None:
    """The active client holding this token (not revoked, its user active), or None."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    client = db.session.scalar(db.select(ApiClient).filter_by(token_hash=hash_token(token)))
    if client is None or not client.active:
        return None
    now = utcnow()
    if client.last_used_at is None or now - client.last_used_at >= TOUCH_EVERY:
        client.last_used_at = now
    return client


# -- cases --------------------------------------------------------------------------------------------------

def _reachable(user: AnyUser, scheme_key: str) -> Any:
    """SQL condition for the cases `permissions.can_view_case` lets this user see in a scheme."""
    mine = (Case.reporter_id == user.id) | (Case.assignee_id == user.id)
    reach = permissions.case_view_reach(user, scheme_key)
    if reach.district_wide:
        return db.true()
    return mine | Case.unit_id.in_(reach.unit_ids or [-1]) | Case.area_id.in_(reach.area_ids or [-1])


def list_cases(user: AnyUser, scheme_key: str, *, state: str | None = None, kind: str | None = None,
               since: dt.datetime | None = None, page: int = 1, per_page: int = 50) -> tuple[list[Case], int]:
    """The cases of a scheme this user may see, newest first, one page of them, and how many there are in all.

    `state` keeps one state, `kind` one kind of state (open, waiting, final), `since` the cases changed since
    (opened, moved by a step or escalated).
    """
    if scheme_in_force(scheme_key) is None:
        raise NotFound(_("No such district."))
    if not permissions.can_view_scheme(user, scheme_key):
        raise PermissionDenied(_("You have no role in this district."))
    query = db.select(Case).where(Case.scheme_key == scheme_key, _reachable(user, scheme_key))
    if state:
        query = query.where(Case.state == state)
    if kind:
        query = query.where(Case.state_kind == kind)
    if since:  # a step sets updated_at; an escalation only adds to the timeline
        query = query.where((Case.updated_at >= since)
                            | Case.id.in_(db.select(CaseEvent.case_id).where(CaseEvent.at >= since)))
    total = db.session.scalar(db.select(db.func.count()).select_from(query.subquery()))
    rows = db.session.scalars(query.order_by(Case.id.desc()).limit(per_page).offset((page - 1) * per_page))
    return list(rows), total or 0


def district_forms(scheme_key: str) -> tuple[str, list[tuple[str, Any]]]:
    """A district's name and its forms in force with their specs, for its API document; NotFound when no
    version of it is in force."""
    from ..definitions.service import compiled_scheme, current_version
    from ..forms.engine import form_spec_of
    from ..web.i18n import tr

    version = current_version(scheme_key) if isinstance(scheme_key, str) and len(scheme_key) <= 64 else None
    if version is None:
        raise NotFound(_("No such district."))
    rows = [(key, version.member("form", key)) for key in compiled_scheme(version.scheme_definition).forms]
    return tr(version.name) or scheme_key, [(key, form_spec_of(row)) for key, row in rows if row is not None]
