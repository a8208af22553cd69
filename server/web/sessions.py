"""The session cookie, read by any host of a deployment even when their clocks differ a little.

Flask signs the session cookie with a timestamp (itsdangerous) and refuses a cookie signed "in the future".
Behind a load balancer one request is answered by host A and the next, a moment later, by host B: if B's clock
is a few milliseconds behind A's across a second's boundary, B would take the cookie A just signed for a
forgery and the person would find themselves logged out. A cookie signed up to `CLOCK_SKEW` seconds ahead is
accepted; the expiry check is unchanged."""

from __future__ import annotations

import time
from typing import Any

from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import SignatureExpired, TimestampSigner, URLSafeTimedSerializer

CLOCK_SKEW = 30  # seconds; NTP keeps hosts within milliseconds, a host without it is another matter


class SkewTolerantSigner(TimestampSigner):
    """A timestamp signer that accepts a signature made a little ahead of this host's clock."""

    def unsign(self, signed_value: Any, max_age: int | None = None, return_timestamp: bool = False) -> Any:
        value, signed_at = super().unsign(signed_value, max_age=None, return_timestamp=True)
        if max_age is not None:
            age = time.time() - signed_at.timestamp()
            if age > max_age or age < -CLOCK_SKEW:
                raise SignatureExpired(f"Signature age {age:.0f} outside 0..{max_age} seconds", payload=value,
                                       date_signed=signed_at)
        return (value, signed_at) if return_timestamp else value


class SessionInterface(SecureCookieSessionInterface):
    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        serializer = super().get_signing_serializer(app)
        if serializer is not None:
            serializer.signer = SkewTolerantSigner
        return serializer


def init_app(app: Flask) -> None:
    app.session_interface = SessionInterface()
