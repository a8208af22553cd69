"""Personal details kept sealed in the database: a dump shows ciphertext, pages show masks, and only the roles
that need the clear value (a dispatcher calling a reporter back) open it.

Values are sealed with Fernet (AES-128-CBC and HMAC-SHA256) under a key derived from `FANGAN_FIELD_KEY`, or
from the app's secret key when none is set; the key lives outside the database, so a copy of the database
alone reveals nothing.
"""

from __future__ import annotations

import base64
import hashlib

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
    """A keyed hash to count or compare a value (an address, a device) without keeping it."""
    secret = current_app.config.get("FANGAN_FIELD_KEY") or current_app.config["SECRET_KEY"]
    return hashlib.sha256(f"{secret}\x00{value}".encode()).hexdigest()[:32]
