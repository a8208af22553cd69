"""What the whole site answers: the language switch, the offline service worker and the health check."""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, request, session

from ..auth.access import public
from ..extensions import db
from .params import safe_next

bp = Blueprint("web", __name__, template_folder="templates")


@bp.route("/lang/<code>", methods=["POST"])
@public
def set_language(code: str):
    if code in current_app.config["FANGAN_LANGUAGES"]:
        session["lang"] = code
    return redirect(safe_next(request.form.get("next")))


@bp.get("/sw.js")
@public
def service_worker():
    """The offline service worker, served from the root so that it may control the form pages."""
    from flask import send_from_directory

    response = send_from_directory(current_app.static_folder, "sw.js", mimetype="text/javascript", max_age=0)
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Service-Worker-Allowed"] = "/"
    return response


@bp.get("/healthz")
@public
def healthz():
    db.session.execute(db.text("SELECT 1"))
    return {"status": "ok"}
