"""The session cookie's signature: one signed by a host whose clock is a little ahead is accepted, one signed
far ahead or too long ago is not (server/web/sessions.py)."""

from __future__ import annotations

import time

import pytest
from itsdangerous import SignatureExpired, TimestampSigner

from server.web.sessions import CLOCK_SKEW, SkewTolerantSigner

KEY = "test-key"


def _signed_at(offset: float) -> bytes:
    class Elsewhere(TimestampSigner):  # another host, its clock `offset` seconds from ours
        def get_timestamp(self) -> int:
            return int(time.time() + offset)

    return Elsewhere(KEY).sign(b"session")


def test_a_cookie_from_a_host_slightly_ahead_is_accepted():
    ahead = _signed_at(2)
    with pytest.raises(SignatureExpired):
        TimestampSigner(KEY).unsign(ahead, max_age=3600)  # what itsdangerous alone does: a logout
    assert SkewTolerantSigner(KEY).unsign(ahead, max_age=3600) == b"session"
    value, signed_at = SkewTolerantSigner(KEY).unsign(ahead, max_age=3600, return_timestamp=True)
    assert value == b"session" and signed_at.timestamp() > time.time()


def test_far_ahead_or_too_old_is_refused():
    with pytest.raises(SignatureExpired):
        SkewTolerantSigner(KEY).unsign(_signed_at(CLOCK_SKEW + 5), max_age=3600)
    with pytest.raises(SignatureExpired):
        SkewTolerantSigner(KEY).unsign(_signed_at(-3700), max_age=3600)
    assert SkewTolerantSigner(KEY).unsign(_signed_at(-3500), max_age=3600) == b"session"
    assert SkewTolerantSigner(KEY).unsign(_signed_at(-10**6)) == b"session"  # no age asked, none checked
