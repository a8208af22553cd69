"""Pure rules of the public side: tracking codes, masks, Open311 statuses, the anti-bot checks and the
satisfaction follow-up. No database, no Flask."""

from __future__ import annotations

import hashlib
import math
import re
import secrets
from dataclasses import dataclass
from typing import Any

from ..core.registry import registry

# Crockford's base32 without I, L, O and U: easy to read aloud and to type on a phone.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 10  # 9 random symbols (45 bits) and a check symbol


def _check_symbol(body: str) -> str:
    """Luhn mod 32: catches every single mistyped symbol, and every swap of two neighbours but 0 ↔ Z."""
    n, total = len(ALPHABET), 0
    for position, ch in enumerate(reversed(body)):
        value = ALPHABET.index(ch) * (2 if position % 2 == 0 else 1)
        total += value // n + value % n
    return ALPHABET[-total % n]


def _legacy_check_symbol(body: str) -> str:
    """The check symbol of codes issued before 2026-12 (weights 1–9, which miss some typos)."""
    total = sum((i + 1) * ALPHABET.index(ch) for i, ch in enumerate(body))
    return ALPHABET[total % len(ALPHABET)]


def new_code() -> str:
    """A tracking code: random, unguessable, with a check symbol that catches a mistyped character."""
    body = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH - 1))
    return body + _check_symbol(body)


def _canonical(text: str | None) -> str | None:
    if not text:
        return None
    raw = re.sub(r"[\s-]", "", text.upper())[:32].replace("O", "0").replace("I", "1").replace("L", "1")
    if len(raw) != CODE_LENGTH or any(ch not in ALPHABET for ch in raw):
        return None
    return raw


def clean_code(text: str | None) -> str | None:
    """A code as typed (spaces, dashes, lower case, O for 0, I and L for 1) made canonical; None if invalid."""
    raw = _canonical(text)
    return raw if raw is not None and _check_symbol(raw[:-1]) == raw[-1] else None


def code_to_look_up(text: str | None) -> str | None:
    """A code to look for: a valid one, or one issued under the earlier check symbol (still honoured; a typo
    that happens to pass it is simply not found)."""
    raw = _canonical(text)
    if raw is None:
        return None
    return raw if raw[-1] in (_check_symbol(raw[:-1]), _legacy_check_symbol(raw[:-1])) else None


def mask_phone(phone: str | None) -> str | None:
    """138****5678: enough to recognise one's own number, not enough to call it."""
    if not phone:
        return None
    digits = re.sub(r"\D", "", phone)
    if len(digits) < 7:
        return "*" * len(digits)
    shown = 4 if len(digits) >= 11 else 2  # a short number keeps fewer digits at the end, and always hides some
    return digits[:3] + "*" * (len(digits) - 3 - shown) + digits[-shown:]


def mask_name(name: str | None) -> str | None:
    """The first character (the family name) and stars."""
    if not name:
        return None
    name = name.strip()
    return name[:1] + "*" * min(max(len(name) - 1, 1), 3)


PHONE = re.compile(r"^\+?[\d\s-]{5,20}$")


def phone_digits(phone: str) -> str:
    """A phone number's digits, as two writings of one number compare (138-1234 5678 is 13812345678); a
    leading +86 or 0086 is the same number."""
    digits = re.sub(r"\D", "", phone or "")
    for prefix in ("0086", "86"):
        if digits.startswith(prefix) and len(digits) - len(prefix) == 11:
            return digits[len(prefix):]
    return digits


def valid_phone(phone: str) -> bool:
    return bool(PHONE.match(phone)) and 5 <= len(re.sub(r"\D", "", phone)) <= 15


EMAIL = re.compile(r"[^@\s<>\"']+@[^@\s<>\"'.]+(\.[^@\s<>\"'.]+)+")


def valid_email(email: str) -> bool:
    """An address of the form name@host.domain (no delivery is tried: it is kept for the district to answer)."""
    email = email.strip()
    return len(email) <= 200 and bool(EMAIL.fullmatch(email))


def mask_email(email: str | None) -> str | None:
    """z***@example.com."""
    if not email or "@" not in email:
        return None
    name, host = email.rsplit("@", 1)
    return f"{name[:1]}***@{host}"


def valid_media_url(url: str) -> bool:
    """An http(s) address of a photo on another server, kept as a link (never fetched from here)."""
    from urllib.parse import urlsplit

    url = url.strip()
    if len(url) > 2000 or any(c.isspace() or ord(c) < 32 for c in url):
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


# -- anti-bot checks instead of a captcha ---------------------------------------------------------------------

@dataclass(frozen=True)
class BotCheck:
    ok: bool
    reason: str | None = None  # "honeypot" | "too_fast" | "stale"


def bot_check(honeypot: str | None, rendered_at: float | None, now: float, min_seconds: float,
              max_seconds: float = 24 * 3600) -> BotCheck:
    """A person leaves the hidden field empty and takes a few seconds to fill the form; a script does neither."""
    if honeypot:
        return BotCheck(False, "honeypot")
    if rendered_at is None:
        return BotCheck(False, "stale")
    elapsed = now - rendered_at
    if elapsed < min_seconds:
        return BotCheck(False, "too_fast")
    if elapsed > max_seconds:
        return BotCheck(False, "stale")
    return BotCheck(True)


# -- Open311 GeoReport v2 ----------------------------------------------------------------------------------------

# Field type → GeoReport v2 attribute datatype, as each registered field type declares it (`open311_datatype` in
# server/forms/fields.py); types with no counterpart (photos, places, repeats) are not offered to Open311 clients.
OPEN311_DATATYPES = registry("field type").where("open311_datatype")


def open311_attributes(fields: list[Any], text: Any) -> list[dict[str, Any]]:
    """A form's non-standard fields as a service definition's attributes (`text` renders a label)."""
    out = []
    for order, f in enumerate((f for f in fields if f.type in OPEN311_DATATYPES), start=1):
        datatype = OPEN311_DATATYPES[f.type]
        values = [{"key": str(value), "name": text(label) or str(value)} for value, label in f.choices]
        out.append({"variable": True, "code": f.id, "datatype": datatype, "required": bool(f.required),
                    "datatype_description": text(f.hint) or None, "order": order,
                    "description": text(f.label) or f.id, "values": values if datatype.endswith("list") else []})
    return out


def open311_status(state_kind: str) -> str:
    """GeoReport v2 knows two statuses: a case in a final state is closed, every other one open."""
    return "closed" if state_kind == "final" else "open"


# -- the satisfaction follow-up ------------------------------------------------------------------------------

def satisfaction_rate(answers: list[str], satisfied: set[str]) -> float | None:
    """The share of answers that count as satisfied (None without answers)."""
    if not answers:
        return None
    return sum(1 for a in answers if a in satisfied) / len(answers)


def followup_open(state_kind: str, outcome: str | None, days_since_closed: float | None, window_days: int,
                  answered: bool) -> bool:
    """Whether the reporter may answer the follow-up now: once, after the case is solved, within the window."""
    return (not answered and state_kind == "final" and outcome == "resolved" and days_since_closed is not None
            and days_since_closed <= window_days)


def public_text(value: Any, limit: int = 2000) -> str:
    """Text typed by the public as stored: trimmed, bounded, control characters removed (escaping is the
    templates' job)."""
    text = "" if value is None else str(value)
    # C0 controls, DEL and the C1 controls (U+0080–U+009F, e.g. a terminal's CSI) are all removed.
    text = "".join(ch for ch in text if ch in "\n\t" or not (ord(ch) < 32 or 0x7F <= ord(ch) <= 0x9F))
    return text.strip()[:limit]


# -- Open311 clients: the district's api_keys, each with its own rate limit -----------------------------------------

DEFAULT_CLIENT_LIMIT = "60 per minute; 5000 per day"


@dataclass(frozen=True)
class Open311Client:
    name: str
    limit: str
    counter: str  # what its budget is counted under: a digest of its key, so two clients never share one


def open311_clients(keys: Any, default_limit: str | None = None) -> dict[str, Open311Client]:
    """FANGAN_OPEN311_KEYS as clients: `{"<key>": "<name>"}` or `{"<key>": {"name": …, "limit": "600 per
    minute"}}`; a client without a limit of its own has `default_limit` (FANGAN_OPEN311_CLIENT_LIMIT).
    A limit that cannot be read is an error at once, not a client that is never limited."""
    from limits import parse_many

    out: dict[str, Open311Client] = {}
    for key, value in (keys or {}).items():
        entry = value if isinstance(value, dict) else {"name": value}
        unknown = set(entry) - {"name", "limit"}
        if not isinstance(key, str) or not key.strip() or unknown:
            raise ValueError(f"FANGAN_OPEN311_KEYS: each key is a non-empty string and each client has only "
                             f"'name' and 'limit' (found {sorted(unknown) or repr(key)})")
        limit = str(entry.get("limit") or default_limit or DEFAULT_CLIENT_LIMIT)
        try:
            parse_many(limit)
        except ValueError:
            raise ValueError(f"FANGAN_OPEN311_KEYS: client {entry.get('name')!r} has a limit that cannot be "
                             f"read: {limit!r} (write it like '600 per minute; 10000 per day')") from None
        digest = hashlib.sha256(key.strip().encode()).hexdigest()[:16]
        out[key.strip()] = Open311Client(str(entry.get("name") or "client"), limit, digest)
    return out


def client_of(clients: dict[str, Open311Client], given: str | None) -> Open311Client | None:
    """The client an api_key names, comparing every key in constant time (no timing tells a key's prefix)."""
    import hmac

    given_bytes = (given or "").strip().encode()
    found = None
    for key, client in clients.items():
        if hmac.compare_digest(key.encode(), given_bytes) and given_bytes:
            found = client
    return found


METRES_A_DEGREE = 111_320  # of latitude; of longitude, times the cosine of the latitude


def approximate(lat: float, lng: float, metres: float) -> tuple[float, float]:
    """The centre of the square about `metres` wide the position lies in: what the public map shows, so that
    nobody's door is pointed at. Squares are whole rows of latitude; each row's width in longitude is worked
    out at its middle, so every position in a square gives the same centre."""
    step_lat = metres / METRES_A_DEGREE
    row = math.floor(lat / step_lat)
    middle = (row + 0.5) * step_lat
    step_lng = metres / (METRES_A_DEGREE * max(math.cos(math.radians(middle)), 0.01))
    return round(middle, 6), round((math.floor(lng / step_lng) + 0.5) * step_lng, 6)
