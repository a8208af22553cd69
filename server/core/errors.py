"""Domain exceptions and how they become HTTP responses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, Response, jsonify, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

UNKEPT_FIELDS = frozenset({"csrf_token", "website", "password", "new_password", "confirm"})


class DomainError(Exception):
    """Base of errors a service raises for the caller to show; `message` is safe to display."""

    status = 400

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class PermissionDenied(DomainError):
    status = 403


class NotFound(DomainError):
    status = 404


class Conflict(DomainError):
    """A concurrent change or a rule that forbids the action now."""

    status = 409


ERROR_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
               409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type", 422: "validation_failed",
               429: "rate_limited"}


def json_error(status: int, message: str, fields: dict[str, list[str]] | None = None) -> Response:
    """The JSON API's error: `{"error": {"code", "message", "fields"?}}` with its HTTP status."""
    body: dict[str, Any] = {"code": ERROR_CODES.get(status, "server_error" if status >= 500 else "error"),
                            "message": message}
    if fields is not None:
        body["fields"] = fields
    response = jsonify(error=body)
    response.status_code = status
    return response


# Machine interfaces that answer errors in their own format, by the path they live under (Open311: JSON or XML as
# the address asks), even for what fails before a view is found: a wrong method, an unknown address.
MACHINE_ERRORS: dict[str, Callable[[HTTPException], Response]] = {}


def machine_errors(prefix: str, render: Callable[[HTTPException], Response]) -> None:
    """Answer the HTTP errors of every address under `prefix` with `render` (their Allow and Retry-After kept)."""
    MACHINE_ERRORS[prefix] = render


def _kept_headers(error: HTTPException, response: Response) -> Response:
    response.headers.update({k: v for k, v in error.get_headers() if k.lower() in ("allow", "retry-after")})
    return response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def _domain(error: DomainError):
        return render_template("error.html", code=error.status, message=error.message), error.status

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException):
        if error.code is None:
            return error
        if request.path.startswith("/api/"):  # no page for machines: the JSON API's error body
            return _kept_headers(error, json_error(error.code, error.description or error.name))
        for prefix, render in MACHINE_ERRORS.items():
            if request.path.startswith(prefix):
                return _kept_headers(error, render(error))
        messages = {
            400: _("The request could not be understood."),
            403: _("You are not allowed to do this."),
            404: _("This page does not exist."),
            405: _("This action is not allowed here."),
            413: _("The upload is too large."),
            429: _("Too many attempts. Please wait a minute and try again."),
        }
        message = messages.get(error.code, error.description)
        limit = getattr(error, "limit", None)
        if error.code == 429 and limit is not None and getattr(limit, "error_message", None):
            message = error.description  # the endpoint's own words (a public report form says more)
        kept, note = [], None
        if isinstance(error, CSRFError) and request.method == "POST":
            # A page left open too long: nothing was stored, but what was typed is shown to copy, never lost.
            note = _("This page was open too long (or came from elsewhere), so nothing was saved. What you "
                     "typed is below: copy it, open the page again and send it.")
            kept = [(name, value) for name, value in request.form.items(multi=True)
                    if name not in UNKEPT_FIELDS and not name.startswith("_") and value.strip()][:50]
        return render_template("error.html", code=error.code, message=message, note=note, kept=kept), error.code
