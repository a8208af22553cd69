"""Domain exceptions and how they become HTTP responses."""

from __future__ import annotations

from flask import Flask, render_template, request
from flask_babel import gettext as _
from werkzeug.exceptions import HTTPException


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


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def _domain(error: DomainError):
        return render_template("error.html", code=error.status, message=error.message), error.status

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException):
        if request.path.startswith("/api/") or error.code is None:
            return error
        messages = {
            400: _("The request could not be understood."),
            403: _("You are not allowed to do this."),
            404: _("This page does not exist."),
            405: _("This action is not allowed here."),
            413: _("The upload is too large."),
            429: _("Too many attempts. Please wait a minute and try again."),
        }
        message = messages.get(error.code, error.description)
        return render_template("error.html", code=error.code, message=message), error.code
