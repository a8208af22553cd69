"""Default-deny access: every endpoint needs a logged-in user unless its view is marked public.

A blueprint marked `token_authenticated` (the JSON API) never takes the session cookie: its own
`before_request` checks the request's token and calls `act_as` with the user the token acts for.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from flask import Blueprint, Flask, current_app, g, request
from flask_login import current_user

from ..extensions import db, login_manager

if TYPE_CHECKING:
    from .models import AnyUser

F = TypeVar("F", bound=Callable)


def public(view: F) -> F:
    """Mark a view as reachable without logging in."""
    view.is_public = True  # type: ignore[attr-defined]
    return view


def is_public_endpoint(app: Flask, endpoint: str | None) -> bool:
    if endpoint is None:
        return True  # 404s and the like: nothing to protect
    if endpoint == "static" or endpoint.endswith(".static"):
        return True
    view = app.view_functions.get(endpoint)
    return bool(getattr(view, "is_public", False))


def token_authenticated(blueprint: Blueprint) -> Blueprint:
    """Mark a blueprint whose requests authenticate by a token of their own, never by the session cookie."""
    blueprint.token_authenticated = True  # type: ignore[attr-defined]
    return blueprint


def _token_authenticated(app: Flask, blueprint: str | None) -> bool:
    return bool(getattr(app.blueprints.get(blueprint or ""), "token_authenticated", False))


def act_as(user: AnyUser) -> None:
    """Make `current_user` this user for the rest of the request without touching the session (a token's user)."""
    login_manager._update_request_context_with_user(user)
    g.by_token = user is not None


def by_token() -> bool:
    """Whether this request authenticated by a token: no cookie rides along, so no CSRF token is issued or checked."""
    return bool(g.get("by_token"))


def _require_login():
    if _token_authenticated(current_app, request.blueprint):
        # A logged-in browser must not reach these (they take no CSRF token): the session is ignored here.
        act_as(None)
        return None
    if is_public_endpoint(current_app, request.endpoint) or current_user.is_authenticated:
        return None
    return login_manager.unauthorized()


def init_app(app: Flask) -> None:
    from flask_babel import lazy_gettext

    from .models import User

    login_manager.login_view = "account.login"
    login_manager.login_message = lazy_gettext("Please log in to see this page.")
    # "basic", not "strong": phones change IP address whenever the signal comes back.
    login_manager.session_protection = "basic"

    @login_manager.user_loader
    def load_user(user_id: str) -> User | None:
        ident, _, token = user_id.partition(":")
        if not ident.isdigit():
            return None
        user = db.session.get(User, int(ident))
        if user is None or not user.active or not hmac.compare_digest(user.session_token.encode(), token.encode()):
            return None  # logged out, password changed or reset, blocked: the cookie's token is an old one
        return user

    app.before_request(_require_login)
