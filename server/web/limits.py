"""Rate limits of the public endpoints, per address and per device, in one place."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from flask import Response, current_app, request
from flask_limiter.util import get_remote_address

from ..extensions import limiter

DEVICE_COOKIE = "fangan_device"


def read_limit() -> str:
    return current_app.config.get("FANGAN_PUBLIC_LIMIT", "120 per minute")


def report_limit() -> str:
    return current_app.config.get("FANGAN_REPORT_LIMIT", "5 per minute; 30 per day")


def device_key() -> str:
    """The device a public visitor uses (its cookie, or an Open311 client's `device_id`), else its address:
    two phones behind one address (a shop's Wi-Fi) count apart, one phone changing address counts once."""
    device = request.cookies.get(DEVICE_COOKIE, "")
    if device.isalnum() and len(device) == 32:
        return f"device:{device}"
    given = (request.values.get("device_id") or "").strip()[:100] if request.blueprint == "open311" else ""
    return f"device:{given}" if given else f"address:{get_remote_address()}"


def public_limits(view: Callable[..., Any], methods: list[str] | None = None,
                  exempt_when: Callable[[], bool] | None = None) -> Callable[..., Any]:
    """Read limits per address and per device on a public page (on `methods`, default all; none when
    `exempt_when` says so)."""
    view = limiter.limit(read_limit, key_func=device_key, methods=methods, exempt_when=exempt_when)(view)
    return limiter.limit(read_limit, methods=methods, exempt_when=exempt_when)(view)


def anonymous_limits(view: Callable[..., Any]) -> Callable[..., Any]:
    """Read limits for visitors who are not logged in (a page that is public and also the staff's)."""
    from flask_login import current_user

    return public_limits(view, exempt_when=lambda: current_user.is_authenticated)


def public_read_limits(*methods: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Read limits on these methods only, for a page whose other methods have stricter limits of their own
    (a report form: showing it counts as a read, sending it as a report)."""
    return lambda view: public_limits(view, list(methods))


def with_device(response: Response) -> Response:
    """Give a visitor without one a random device cookie (nothing else is in it)."""
    if not request.cookies.get(DEVICE_COOKIE):
        response.set_cookie(DEVICE_COOKIE, secrets.token_hex(16), max_age=365 * 86400, httponly=True,
                            samesite="Lax", secure=current_app.config.get("SESSION_COOKIE_SECURE", True))
    return response
