"""Configuration: defaults, then `instance/config.py`, then FANGAN_* environment variables, then test overrides."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() in ("1", "true", "yes", "on")


def environment_config() -> dict:
    """Settings given by environment variables; they override the defaults and instance/config.py."""
    out: dict = {}
    for variable, key in (("DATABASE_URL", "SQLALCHEMY_DATABASE_URI"), ("SECRET_KEY", "SECRET_KEY"),
                          ("FANGAN_THEME", "FANGAN_THEME"), ("RATELIMIT_STORAGE_URI", "RATELIMIT_STORAGE_URI"),
                          ("FANGAN_NOTIFY_WEBHOOK_URL", "FANGAN_NOTIFY_WEBHOOK_URL"),
                          ("FANGAN_NOTIFY_WEBHOOK_TOKEN", "FANGAN_NOTIFY_WEBHOOK_TOKEN"),
                          ("FANGAN_JOBS_URL", "FANGAN_JOBS_URL"), ("FANGAN_JOBS_DIR", "FANGAN_JOBS_DIR"),
                          ("FANGAN_MAP_TILES", "FANGAN_MAP_TILES"), ("FANGAN_TIANDITU_KEY", "FANGAN_TIANDITU_KEY"),
                          ("FANGAN_UPLOAD_DIR", "FANGAN_UPLOAD_DIR"), ("FANGAN_LOG_FORMAT", "FANGAN_LOG_FORMAT"),
                          ("FANGAN_METRICS_TOKEN", "FANGAN_METRICS_TOKEN"), ("FANGAN_FIELD_KEY", "FANGAN_FIELD_KEY"),
                          ("FANGAN_EVENT_RECEIVERS", "FANGAN_EVENT_RECEIVERS")):
        if os.environ.get(variable):
            out[key] = os.environ[variable]
    if os.environ.get("FANGAN_PROXIES", "").isdigit():
        out["FANGAN_PROXIES"] = int(os.environ["FANGAN_PROXIES"])
    if os.environ.get("FANGAN_SECURE_COOKIES") is not None:
        secure = _bool("FANGAN_SECURE_COOKIES", True)
        out["SESSION_COOKIE_SECURE"] = out["REMEMBER_COOKIE_SECURE"] = secure
    return out


def default_config(instance_path: str) -> dict:
    return {
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{Path(instance_path) / 'fangan.sqlite'}",
        # An error's log line shows its SQL, never the values (a reporter's contacts, a tracking code).
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True, "hide_parameters": True},
        "FANGAN_ROOT": str(PROJECT_ROOT),
        "FANGAN_THEME": "default",
        "FANGAN_DEMO_SCHEME": str(PROJECT_ROOT / "schemes" / "lidu"),
        "BABEL_DEFAULT_LOCALE": "zh_CN",
        "BABEL_DEFAULT_TIMEZONE": "Asia/Shanghai",
        "FANGAN_LANGUAGES": {"zh_CN": "中文", "en": "English"},
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": True,
        "REMEMBER_COOKIE_SECURE": True,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "PERMANENT_SESSION_LIFETIME": 12 * 3600,
        "WTF_CSRF_TIME_LIMIT": 8 * 3600,
        "WTF_I18N_ENABLED": False,  # WTForms' own zh/en catalogues are used instead (server.web.forms)
        "RATELIMIT_STORAGE_URI": "memory://",
        "RATELIMIT_HEADERS_ENABLED": True,
        "MAX_CONTENT_LENGTH": 32 * 1024 * 1024,
        "FANGAN_LOGIN_LIMIT": "10 per minute",
        "FANGAN_API_LIMIT": "300 per minute",  # per JSON API client, across the whole API
        # Reverse proxies in front of the app: their X-Forwarded-For/-Proto are trusted (rate limits per client).
        "FANGAN_PROXIES": 0,
        "FANGAN_LOG_FORMAT": "text",  # or "json": one JSON object a line, with the request id and the user
        "FANGAN_METRICS_TOKEN": "",  # /metrics answers localhost, and anyone sending this bearer token
    }
