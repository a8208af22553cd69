"""Personal details kept sealed in the database: a dump shows ciphertext, pages show masks, and only the roles
that need the clear value (a dispatcher calling a reporter back) open it.

Values are sealed with Fernet (AES-128-CBC and HMAC-SHA256) under a key derived from `FANGAN_FIELD_KEY`, or
from the app's secret key when none is set; the key lives outside the database, so a copy of the database
alone reveals nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken
from flask import current_app


def _fernet() -> Fernet:
    secret = current_app.config.get("FANGAN_FIELD_KEY") or current_app.config["SECRET_KEY"]
    key = hashlib.sha256(b"fangan-sealed-field\x00" + str(secret).encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def seal(value: str | None) -> str | None:
    """The ciphertext of a value (None stays None)."""
    if not value:
        return None
    return _fernet().encrypt(value.encode("utf-8")).decode("ascii")


def unseal(token: str | None) -> str | None:
    """The clear value, or None when there is none or the key has changed."""
    if not token:
        return None
    try:
        return _fernet().decrypt(token.encode("ascii")).decode("utf-8")
    except (InvalidToken, ValueError):
        return None


def fingerprint(value: str) -> str:
    """A keyed hash to count or compare a value (an address, a device) without keeping it: HMAC-SHA256 under
    the field key (or the secret key), shortened to 128 bits. Without the key, a fingerprint cannot be
    recomputed from a guessed value."""
    secret = current_app.config.get("FANGAN_FIELD_KEY") or current_app.config["SECRET_KEY"]
    key = secret if isinstance(secret, bytes) else str(secret).encode("utf-8")
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()[:32]
