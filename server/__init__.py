"""Fangan: definitions in, forms, cases, patrols, scores and boards out."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from flask import Flask


def _secret_key(instance_path: Path) -> str:
    """Read the instance's secret key, creating a random one on first start (never a fixed default)."""
    path = instance_path / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the application; tests pass their own `config`."""
    # FANGAN_INSTANCE moves the instance folder (config.py, secret key, SQLite file, uploads) out of the checkout.
    app = Flask(__name__, instance_path=os.environ.get("FANGAN_INSTANCE") or None, instance_relative_config=True)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)

    from .config import default_config, environment_config

    app.config.from_mapping(default_config(app.instance_path))
    app.config.from_pyfile("config.py", silent=True)
    app.config.update(environment_config())  # the environment wins over instance/config.py
    if config:
        app.config.update(config)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _secret_key(Path(app.instance_path))

    from .core.redact import RedactingFilter

    app.logger.addFilter(RedactingFilter())  # "Exception on /p/track/<code>" names no tracking code

    from .web import observe

    observe.init_app(app)  # first: the request id and the timing start before any other hook may answer

    if app.config.get("FANGAN_PROXIES"):
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = int(app.config["FANGAN_PROXIES"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]

    from . import models  # noqa: F401 - every package's tables, for the metadata and Alembic
    from .core import database

    database.init_app(app)

    from . import builtins  # noqa: F401 - the built-in field types, choice sources and metric sources
    from .extensions import babel, csrf, db, htmx, limiter, login_manager, migrate

    csrf.init_app(app)
    htmx.init_app(app)
    limiter.init_app(app)
    migrate.init_app(app, db, directory=str(Path(__file__).parent / "migrations"), render_as_batch=True)

    from .jobs import queue
    from .jobs.service import run_job

    queue.init_app(app, run_job)

    from .auth import access
    from .web import i18n, maps, security, sessions, theming

    sessions.init_app(app)
    login_manager.init_app(app)
    access.init_app(app)
    babel.init_app(app, locale_selector=i18n.select_locale, default_translation_directories="translations")
    i18n.init_app(app)
    theming.init_app(app)
    security.init_app(app)
    maps.init_app(app)

    from .web.params import IdConverter

    app.url_map.converters["int"] = IdConverter  # ids past a database integer are a 404, not a crash

    from .account.views import bp as account_bp
    from .admin.audit_views import bp as audit_bp
    from .admin.editor_views import bp as editors_bp
    from .admin.views import bp as admin_bp
    from .admin.wizard_views import bp as wizard_bp
    from .api.views import bp as api_bp
    from .assessment.views import bp as assessment_bp
    from .boards.views import bp as boards_bp
    from .events.views import bp as events_bp
    from .forms.views import bp as forms_bp
    from .home.views import bp as home_bp
    from .jobs.views import bp as jobs_bp
    from .org.views import bp as org_bp
    from .patrols.views import bp as patrols_bp
    from .public.open311 import bp as open311_bp
    from .public.views import bp as public_bp
    from .public.views import moderation_bp
    from .web.views import bp as web_bp
    from .workflow.views import bp as workflow_bp

    for blueprint in (web_bp, home_bp, account_bp, admin_bp, org_bp, audit_bp, forms_bp, workflow_bp, boards_bp,
                      patrols_bp, assessment_bp, public_bp, moderation_bp, open311_bp, api_bp, jobs_bp, editors_bp,
                      wizard_bp, events_bp):
        app.register_blueprint(blueprint)

    from .core.errors import register_error_handlers

    register_error_handlers(app)

    from . import cli

    cli.register(app)
    return app
