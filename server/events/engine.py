"""Events out (pure): who receives what, how a body is signed, when a failed delivery is tried again.

A receiver is one of the district's systems that wants to hear of case events: `FANGAN_EVENT_RECEIVERS`,
`{"<name>": {"url": "https://…", "secret": "…", "events": ["case.*"], "schemes": ["lidu"]}}`. The old
notification webhook (`FANGAN_NOTIFY_WEBHOOK_URL`, with `FANGAN_NOTIFY_WEBHOOK_TOKEN`) is the receiver
`webhook` of `notification.created`."""

from __future__ import annotations

import datetime as dt
import fnmatch
import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Any

NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
KNOWN_KEYS = {"url", "secret", "events", "schemes", "token"}
# case.changed: what the system did to a case outside its workflow (moved to a new workflow version, a deadline
# that could not be worked out).
EVENT_KINDS = ("case.opened", "case.transition", "case.escalation", "case.changed", "notification.created")
MAX_ATTEMPTS = 12  # about a day and a half of retries (1, 2, 4 … minutes, then every six hours)
FIRST_DELAY = dt.timedelta(minutes=1)
LONGEST_DELAY = dt.timedelta(hours=6)
SIGNATURE_HEADER = "X-Fangan-Signature"


@dataclass(frozen=True)
class Receiver:
    name: str
    url: str
    secret: str
    events: tuple[str, ...] = ("case.*",)
    schemes: tuple[str, ...] = ()  # none: every district
    token: str | None = None  # sent as a bearer token too (the old webhook's gateways read it)

    def wants(self, kind: str, scheme_key: str | None) -> bool:
        if self.schemes and scheme_key not in self.schemes:
            return False
        return any(fnmatch.fnmatchcase(kind, pattern) for pattern in self.events)


def receivers(config: Any) -> dict[str, Receiver]:
    """The configured receivers; a setting that can never work stops the server at start, with its reason."""
    out: dict[str, Receiver] = {}
    given = config.get("FANGAN_EVENT_RECEIVERS") or {}
    if isinstance(given, str):
        import json

        try:
            given = json.loads(given)
        except ValueError as exc:
            raise ValueError(f"FANGAN_EVENT_RECEIVERS: not JSON ({exc})") from None
    if not isinstance(given, dict):
        raise ValueError("FANGAN_EVENT_RECEIVERS: an object of receivers by name is expected")
    for name, entry in given.items():
        where = f"FANGAN_EVENT_RECEIVERS.{name}"
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise ValueError(f"{where}: a name of lowercase letters, digits, '-' and '_' is expected")
        if not isinstance(entry, dict) or set(entry) - KNOWN_KEYS:
            raise ValueError(f"{where}: only {sorted(KNOWN_KEYS)} are read (found {sorted(set(entry) - KNOWN_KEYS)})"
                             if isinstance(entry, dict) else f"{where}: an object is expected")
        url, secret = entry.get("url"), entry.get("secret")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError(f"{where}.url: an http(s) address is expected")
        if not isinstance(secret, str) or len(secret) < 16:
            raise ValueError(f"{where}.secret: at least 16 characters, to sign what is sent")
        events = entry.get("events", ["case.*"])
        if not isinstance(events, list) or not events or not all(isinstance(e, str) for e in events):
            raise ValueError(f"{where}.events: a list of event kinds is expected ({', '.join(EVENT_KINDS)}, "
                             "or patterns like case.*)")
        unheard = [e for e in events if not any(fnmatch.fnmatchcase(kind, e) for kind in EVENT_KINDS)]
        if unheard:
            raise ValueError(f"{where}.events: {unheard} match no event kind ({', '.join(EVENT_KINDS)})")
        schemes = entry.get("schemes", [])
        if not isinstance(schemes, list) or not all(isinstance(s, str) for s in schemes):
            raise ValueError(f"{where}.schemes: a list of scheme ids is expected")
        out[name] = Receiver(name, url, secret, tuple(events), tuple(schemes), entry.get("token"))
    legacy = config.get("FANGAN_NOTIFY_WEBHOOK_URL")
    if legacy and "webhook" not in out:
        if not str(legacy).startswith(("http://", "https://")):
            raise ValueError("FANGAN_NOTIFY_WEBHOOK_URL: an http(s) address is expected")
        token = config.get("FANGAN_NOTIFY_WEBHOOK_TOKEN") or ""
        out["webhook"] = Receiver("webhook", str(legacy), token or config.get("SECRET_KEY", ""),
                                  ("notification.created",), (), token or None)
    return out


def sign(secret: str, body: bytes) -> str:
    """`sha256=<hex>`: HMAC-SHA256 of the body with the receiver's secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, signature: str) -> bool:
    """What a receiver does with the header (in constant time)."""
    return hmac.compare_digest(sign(secret, body), signature or "")


def next_attempt(attempts: int, now: dt.datetime) -> dt.datetime | None:
    """When to try again after `attempts` failures (1, 2, 4 … minutes, at most six hours apart); None: give up."""
    if attempts >= MAX_ATTEMPTS:
        return None
    delay = min(FIRST_DELAY * (2 ** (attempts - 1)), LONGEST_DELAY)
    return now + delay
