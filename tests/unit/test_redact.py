"""Tracking codes and api keys stay out of the logs: the access log of `fangan run` and the app's own log."""

from __future__ import annotations

import datetime as dt
import logging
from types import SimpleNamespace

from gunicorn.config import Config

from server.core.redact import RedactingFilter, RedactingLogger, redact


def test_codes_and_keys_are_masked_and_the_rest_is_kept():
    assert redact("GET /p/track/7K3M9QWZ2R HTTP/1.1") == "GET /p/track/*** HTTP/1.1"
    assert redact("/p/track/7K3M9QWZ2R/followup") == "/p/track/***/followup"
    assert redact("/open311/v2/requests.json?api_key=s3cret&jurisdiction_id=lidu") == (
        "/open311/v2/requests.json?api_key=***&jurisdiction_id=lidu")
    assert redact("jurisdiction_id=lidu&API_KEY=s3cret") == "jurisdiction_id=lidu&API_KEY=***"
    assert redact("GET /p/report/12/photo/3 HTTP/1.1") == "GET /p/report/12/photo/3 HTTP/1.1"  # grants nothing


def test_the_access_log_line_names_no_code_or_key(capsys):
    logger = RedactingLogger(Config())
    logger.cfg.set("accesslog", "-")
    logger.setup(logger.cfg)
    environ = {"REQUEST_METHOD": "GET", "RAW_URI": "/p/track/7K3M9QWZ2R?api_key=s3cret",
               "SERVER_PROTOCOL": "HTTP/1.1", "PATH_INFO": "/p/track/7K3M9QWZ2R", "QUERY_STRING": "api_key=s3cret",
               "HTTP_REFERER": "https://fangan.example/p/track/7K3M9QWZ2R", "REMOTE_ADDR": "203.0.113.9"}
    response = SimpleNamespace(status="200 OK", sent=10, headers=[])
    request = SimpleNamespace(headers=[("REFERER", environ["HTTP_REFERER"])])
    logger.access(response, request, environ, dt.timedelta(milliseconds=5))
    line = capsys.readouterr().out
    assert "203.0.113.9" in line and "/p/track/***" in line
    assert "7K3M9QWZ2R" not in line and "s3cret" not in line


def test_the_app_log_names_no_code():
    record = logging.LogRecord("server", logging.ERROR, __file__, 1, "Exception on %s [%s]",
                               ("/p/track/7K3M9QWZ2R", "GET"), None)
    assert RedactingFilter().filter(record)
    assert record.getMessage() == "Exception on /p/track/*** [GET]"


def test_the_client_a_rate_limit_counted_is_masked():
    line = "ratelimit 5 per 1 minute (203.0.113.7) exceeded at endpoint: public.report"
    assert redact(line) == "ratelimit 5 per 1 minute (***) exceeded at endpoint: public.report"
    device = "ratelimit 30 per 1 day (dev:4f1c9a) exceeded at endpoint: open311.create_request"
    assert "4f1c9a" not in redact(device) and "open311.create_request" in redact(device)
    assert redact("a (note) exceeded nothing") == "a (note) exceeded nothing"
