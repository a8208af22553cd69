"""What the people who run a site watch: a request id on every request and answer, one access line a request,
logs as JSON lines on request (FANGAN_LOG_FORMAT=json), and Prometheus metrics (/metrics).

Nothing a public reporter gives is logged: no bodies, no query strings (a tracking code in a path is masked,
core/redact.py), no client address. A line names the signed-in user (staff and API clients), never a reporter.

Metrics are counted in each process; under `fangan run` the processes share them through files in
PROMETHEUS_MULTIPROC_DIR (prometheus_client's multiprocess mode), so any process answers for all. What the
database knows (open cases, how late `fangan tick` is, jobs waiting) is read when /metrics is asked, from the
families the packages register in `metric_families`, so every host reports the same figures.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, Response, current_app, g, has_request_context, request

from ..core.redact import RedactingFilter, RedactingLogger, redact
from ..core.registry import registry

log = logging.getLogger("fangan.access")

# A request id a proxy sends (nginx: `proxy_set_header X-Request-ID $request_id`) is kept when it looks like one.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{8,64}")
HEADER = "X-Request-ID"

# Families of metrics read from the database at each scrape: name → a function yielding prometheus_client
# metric families (GaugeMetricFamily, CounterMetricFamily). Registered by the packages that own the data.
metric_families = registry("metric family")

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def request_id() -> str | None:
    """This request's id (None outside a request)."""
    return g.get("request_id") if has_request_context() else None


def _user() -> dict[str, Any]:
    """The signed-in user, when this request has loaded one (a log line never loads it: no query, no failure)."""
    user = g.get("_login_user")  # where Flask-Login keeps the user it loaded for this request
    if user is not None and getattr(user, "is_authenticated", False):
        return {"user_id": user.get_id(), "user": getattr(user, "username", None)}
    return {}


class RequestFields(logging.Filter):
    """Add the request's id, method, path (masked) and user to every record logged while it is served."""

    def filter(self, record: logging.LogRecord) -> bool:
        if has_request_context():
            record.request_id = g.get("request_id")
            record.method = request.method
            record.path = redact(request.path)
            for key, value in _user().items():
                setattr(record, key, value)
        return True


def json_formatter() -> logging.Formatter:
    """One JSON object a line: time, level, logger, message, and the fields a record carries."""
    from pythonjsonlogger.json import JsonFormatter

    return JsonFormatter("%(levelname)s %(name)s %(message)s", rename_fields={"levelname": "level", "name": "logger"},
                         timestamp="time")  # ISO 8601 in UTC


_configured = threading.Lock()


def configure_logging(app: Flask) -> None:
    """JSON lines on standard error for the whole process when FANGAN_LOG_FORMAT=json (once a process)."""
    fmt = str(app.config.get("FANGAN_LOG_FORMAT") or "text").lower()
    if fmt not in ("text", "json"):
        raise ValueError(f"FANGAN_LOG_FORMAT: {fmt!r} is neither text nor json")
    if fmt != "json":
        return
    with _configured:
        root = logging.getLogger()
        if any(getattr(h, "_fangan", False) for h in root.handlers):
            return
        handler = logging.StreamHandler(sys.stderr)
        handler._fangan = True  # type: ignore[attr-defined]
        handler.setFormatter(json_formatter())
        handler.addFilter(RequestFields())
        handler.addFilter(RedactingFilter())
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        app.logger.propagate = True
        app.logger.handlers.clear()  # Flask's own handler would write the same record again, as text


class JsonGunicornLogger(RedactingLogger):
    """gunicorn's error log as JSON lines (FANGAN_LOG_FORMAT=json; the app writes the access lines)."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for handler in self.error_log.handlers:
            handler.setFormatter(json_formatter())


class _Metrics:
    """The request metrics of this process, made once (after gunicorn forks, so each process has its files)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, values

        disable_created_metrics()  # no `_created` series beside each count: a scraper knows when a count restarts
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            values.ValueClass = values.get_value_class()  # the files, even if imported before the variable was set
        self.registry = CollectorRegistry()
        self.requests = Counter("fangan_http_requests", "Requests answered, by endpoint, method and status",
                                ["endpoint", "method", "status"], registry=self.registry)
        self.latency = Histogram("fangan_http_request_duration_seconds", "Time to answer a request, by endpoint",
                                 ["endpoint"], buckets=LATENCY_BUCKETS, registry=self.registry)


_metrics: _Metrics | None = None
_metrics_lock = threading.Lock()


def process_metrics() -> _Metrics:
    global _metrics
    if _metrics is None:
        with _metrics_lock:
            if _metrics is None:
                _metrics = _Metrics()
    return _metrics


class DatabaseCollector:
    """What the database knows, read at each scrape from the registered families."""

    def collect(self) -> Iterable[Any]:
        from prometheus_client.core import GaugeMetricFamily

        from ..extensions import db

        failed = GaugeMetricFamily("fangan_metrics_source_failed", "1 when a family could not be read",
                                   labels=["family"])
        for name, families in metric_families.items():
            try:
                yield from list(families())
                failed.add_metric([name], 0)
            except Exception:  # noqa: BLE001 - one unreadable family must not hide the others
                db.session.rollback()
                logging.getLogger(__name__).exception("metric family %s could not be read", name)
                failed.add_metric([name], 1)
        yield failed


def exposition() -> tuple[bytes, str]:
    """The metrics of every process of this server and the database's, in Prometheus' text format."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        target = CollectorRegistry()
        multiprocess.MultiProcessCollector(target)
    else:
        target = process_metrics().registry
    body = generate_latest(target) + generate_latest(DatabaseCollector())  # type: ignore[arg-type]
    return body, CONTENT_TYPE_LATEST


def may_read_metrics() -> bool:
    """This machine (no proxy in between), or a caller with the configured bearer token."""
    token = str(current_app.config.get("FANGAN_METRICS_TOKEN") or "")
    given = request.headers.get("Authorization", "")
    if token and given.startswith("Bearer ") and hmac.compare_digest(given[7:].strip().encode(), token.encode()):
        return True
    if request.headers.get("X-Forwarded-For"):  # came through a proxy: not this machine, whatever the socket says
        return False
    try:
        return ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        return False


def init_app(app: Flask) -> None:
    configure_logging(app)

    @app.before_request
    def _start() -> None:
        g.request_started = time.perf_counter()
        given = request.headers.get(HEADER, "")
        g.request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex

    @app.after_request
    def _finish(response: Response) -> Response:
        started = g.get("request_started")
        if started is None:  # a request that failed before its first hook (none known; counted anyway)
            return response
        elapsed = time.perf_counter() - started
        endpoint = request.endpoint or "unmatched"
        metrics = process_metrics()
        metrics.requests.labels(endpoint, request.method, str(response.status_code)).inc()
        metrics.latency.labels(endpoint).observe(elapsed)
        response.headers[HEADER] = g.request_id
        log.info("%s %s %s", request.method, redact(request.path), response.status_code,
                 extra={"status": response.status_code, "endpoint": endpoint,
                        "duration_ms": round(elapsed * 1000, 1)})
        return response


def register_family(name: str) -> Callable[[Callable[[], Iterable[Any]]], Callable[[], Iterable[Any]]]:
    """Decorator: a function yielding metric families read from the database at each scrape."""
    return metric_families.register(name)
