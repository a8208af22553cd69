"""What the whole site answers: the language switch, the offline service worker and the health checks."""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, request, session
from sqlalchemy.exc import SQLAlchemyError

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
    """Alive: the process answers and reaches its database (a load balancer's liveness check)."""
    db.session.execute(db.text("SELECT 1"))
    return {"status": "ok"}


@bp.get("/readyz")
@public
def readyz():
    """Ready for traffic: the database answers and its schema is this version's (after an upgrade, a host whose
    database is not migrated yet says so, and the load balancer keeps requests away from it)."""
    try:
        revision = db.session.execute(db.text("SELECT version_num FROM alembic_version")).scalar()
    except SQLAlchemyError:
        db.session.rollback()
        return {"status": "database unavailable"}, 503
    if revision != migrations_head():
        return {"status": "migrations pending"}, 503
    return {"status": "ready"}


def migrations_head() -> str | None:
    """The newest migration this version ships (read once: the code does not change under a running process)."""
    head = current_app.extensions.get("fangan_migrations_head")
    if head is None:
        from alembic.config import Config
        from alembic.script import ScriptDirectory

        config = Config()
        config.set_main_option("script_location", current_app.extensions["migrate"].directory)
        head = current_app.extensions["fangan_migrations_head"] = ScriptDirectory.from_config(config).get_current_head()
    return head
