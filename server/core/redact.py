"""Secrets kept out of logs: a public report's tracking code in a path, an api_key in a query string, the
client a rate limit was counted for.

A tracking code lets its holder answer the follow-up, which feeds a unit's score; anyone reading the access
log must not be able to do that. Used by the access log of `fangan run` and by the application's own log."""

from __future__ import annotations

import logging
import re
from typing import Any

from gunicorn.glogging import Logger

_PATTERNS = (
    (re.compile(r"(/track/)[^/?#\s\"]+"), r"\1***"),
    (re.compile(r"((?:^|[?&;\s])(?:api_key|token)=)[^&;#\s\"]*", re.IGNORECASE), r"\1***"),
    # Flask-Limiter's "ratelimit 5 per 1 minute (<key>) exceeded": the key is a client's address or device.
    (re.compile(r"(ratelimit .{0,200}? )\([^()\n]*\)( exceeded)"), r"\1(***)\2"),
)


def redact(text: str) -> str:
    """The text with tracking codes and api keys masked."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """Mask secrets in a log record's message (with its arguments merged in)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = redact(message)
        if masked != message:
            record.msg, record.args = masked, ()
        return True


# Access-log atoms that carry the request's address or the page it came from.
ACCESS_ATOMS = ("r", "U", "q", "f", "{raw_uri}e", "{path_info}e", "{query_string}e", "{referer}i")


def redact_atoms(atoms: dict[str, Any]) -> dict[str, Any]:
    """gunicorn's access-log atoms with the request line, path, query and referer masked."""
    for key in ACCESS_ATOMS:
        if isinstance(atoms.get(key), str):
            atoms[key] = redact(atoms[key])
    return atoms


class RedactingLogger(Logger):
    """gunicorn's logger (`fangan run`) with the access log's request line, path, query and referer masked, and
    the error log filtered the same way."""

    def atoms(self, resp, req, environ, request_time):  # noqa: ANN001, ANN201 - gunicorn's signature
        return redact_atoms(super().atoms(resp, req, environ, request_time))

    def setup(self, cfg) -> None:  # noqa: ANN001
        super().setup(cfg)
        self.error_log.addFilter(RedactingFilter())
