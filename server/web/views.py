"""What the whole site answers: the language switch, the offline service worker and the health checks."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, redirect, request, session
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


@bp.get("/metrics")
@public
def metrics():
    """Prometheus metrics: requests and latency of every process of this server, and what the database knows.
    Open to this machine and to a scraper with FANGAN_METRICS_TOKEN; through a proxy, only with the token."""
    from .observe import exposition, may_read_metrics

    if not may_read_metrics():
        return Response("metrics: ask from this machine, or with the token (FANGAN_METRICS_TOKEN)\n", 403,
                        mimetype="text/plain")
    body, content_type = exposition()
    return Response(body, headers={"Content-Type": content_type, "Cache-Control": "no-store"})


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
    try:
        head = migrations_head()
    except Exception:  # noqa: BLE001 - a version whose migrations cannot be read is not ready either
        return {"status": "migrations unreadable"}, 503
    if revision != head:
        # During an upgrade: the database not yet migrated, or this host's code older than the database.
        return {"status": "migrations pending" if revision in known_revisions() else "database newer than code"}, 503
    return {"status": "ready"}


def _scripts():  # noqa: ANN202 - alembic's ScriptDirectory
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", current_app.extensions["migrate"].directory)
    return ScriptDirectory.from_config(config)


def migrations_head() -> str | None:
    """The newest migration this version ships (read once: the code does not change under a running process)."""
    if "fangan_migrations_head" not in current_app.extensions:
        current_app.extensions["fangan_migrations_head"] = _scripts().get_current_head()
    return current_app.extensions["fangan_migrations_head"]


def known_revisions() -> frozenset[str]:
    """Every migration this version ships."""
    if "fangan_migrations" not in current_app.extensions:
        current_app.extensions["fangan_migrations"] = frozenset(s.revision for s in _scripts().walk_revisions())
    return current_app.extensions["fangan_migrations"]
