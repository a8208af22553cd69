"""What the people running a site watch: request ids, /metrics (who may read it, request counts, figures the
database knows) and JSON log lines that carry the request id and the user but nothing of a public reporter."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging

from prometheus_client.parser import text_string_to_metric_families

from server.core.clock import utcnow
from server.extensions import db
from server.web import observe
from server.workflow.escalation import tick
from server.workflow.models import Case, CaseDeadline
from tests.integration.test_cases import _people, fire, report
from tests.integration.test_public import _report
from tests.support.factories import login


def _samples(client, **kwargs) -> dict[tuple[str, tuple], float]:  # noqa: ANN001, ANN003
    response = client.get("/metrics", **kwargs)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.content_type.startswith("text/plain; version=")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.get_data(as_text=True)) for s in family.samples}


def test_every_answer_carries_a_request_id_and_a_proxys_id_is_kept(client):
    first, second = client.get("/healthz"), client.get("/healthz")
    assert len(first.headers["X-Request-ID"]) == 32 and first.headers["X-Request-ID"] != second.headers["X-Request-ID"]
    assert client.get("/healthz", headers={"X-Request-ID": "nginx-3f2a9c0d11"}).headers["X-Request-ID"] == \
        "nginx-3f2a9c0d11"
    for hostile in ("x", "a" * 65, "abc\tdefghij", "<script>alert(1)</script>", "12345678;rm"):
        answered = client.get("/healthz", headers={"X-Request-ID": hostile}).headers["X-Request-ID"]
        assert answered != hostile and len(answered) == 32


def test_metrics_are_open_to_this_machine_and_to_the_token_only(app, client):
    assert client.get("/metrics").status_code == 200  # the test client comes from 127.0.0.1
    outside = {"environ_base": {"REMOTE_ADDR": "203.0.113.9"}}
    assert client.get("/metrics", **outside).status_code == 403
    # Through a proxy on this machine: the socket is local, the caller is not.
    assert client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 403
    assert client.get("/metrics", headers={"Authorization": "Bearer anything"}, **outside).status_code == 403
    app.config["FANGAN_METRICS_TOKEN"] = "s3cret-scraper-token"
    try:
        assert client.get("/metrics", headers={"Authorization": "Bearer s3cret-scraper-token"},
                          **outside).status_code == 200
        assert client.get("/metrics", headers={"Authorization": "Bearer s3cret-scraper-tokex"},
                          **outside).status_code == 403
        assert client.get("/metrics", headers={"Authorization": "s3cret-scraper-token"}, **outside).status_code == 403
    finally:
        app.config["FANGAN_METRICS_TOKEN"] = ""
    refused = client.get("/metrics", **outside).get_data(as_text=True)
    assert "fangan_" not in refused


def test_requests_are_counted_by_endpoint_and_status_with_their_latency(client):
    before = _samples(client)
    key = ("fangan_http_requests_total", (("endpoint", "web.healthz"), ("method", "GET"), ("status", "200")))
    missing = ("fangan_http_requests_total", (("endpoint", "unmatched"), ("method", "GET"), ("status", "404")))
    for _ in range(3):
        client.get("/healthz")
    client.get("/no/such/page")
    after = _samples(client)
    assert after[key] - before.get(key, 0) == 3
    assert after[missing] - before.get(missing, 0) == 1
    count = ("fangan_http_request_duration_seconds_count", (("endpoint", "web.healthz"),))
    assert after[count] - before.get(count, 0) == 3
    inf = ("fangan_http_request_duration_seconds_bucket", (("endpoint", "web.healthz"), ("le", "+Inf")))
    assert after[inf] == after[count]


def test_metrics_say_open_and_overdue_cases_escalations_and_how_late_tick_is(app, client):
    with app.test_request_context():
        people = _people()
        cases = [report(people["reporter"], size=float(i)).id for i in range(3)]
        state = db.session.get(Case, cases[1]).state
        assigned = fire(people["office"], db.session.get(Case, cases[0]), "assign", target_unit="shilong").state
        closed = db.session.get(Case, cases[2])
        closed.state_kind = "final"  # a closed case is not open (what a final step sets)
        db.session.commit()
    samples = _samples(client)
    assert samples[("fangan_cases_open", (("scheme", "lidu"), ("state", state)))] == 1
    assert samples[("fangan_cases_open", (("scheme", "lidu"), ("state", assigned)))] == 1
    assert ("fangan_cases_overdue", (("scheme", "lidu"),)) not in samples
    assert samples[("fangan_tick_lag_seconds", ())] < 5  # written just now: looked at by the next tick
    assert samples[("fangan_escalations_applied_total", ())] == 0
    assert samples[("fangan_metrics_source_failed", (("family", "cases"),))] == 0

    with app.app_context():
        now = utcnow()
        late = db.session.scalars(db.select(CaseDeadline).where(CaseDeadline.case_id == cases[0])).all()
        assert late
        for deadline in late:  # overdue for two days, and waiting ten minutes for a tick that has not run
            deadline.due_at = now - dt.timedelta(days=2)
        db.session.flush()
        for deadline in late:
            deadline.check_at = now - dt.timedelta(minutes=10)
        db.session.commit()
    lag = _samples(client)[("fangan_tick_lag_seconds", ())]
    assert 600 <= lag < 700
    with app.test_request_context():
        applied = tick()["applied"]
        db.session.commit()
    assert applied >= 1
    samples = _samples(client)
    assert samples[("fangan_escalations_applied_total", ())] == applied
    assert samples[("fangan_cases_overdue", (("scheme", "lidu"),))] == 1
    assert samples[("fangan_tick_lag_seconds", ())] < 5


def test_a_family_that_cannot_be_read_is_said_and_hides_no_other(client):
    def broken():  # noqa: ANN202
        raise RuntimeError("no such table")
        yield

    with observe.metric_families.registered("broken", broken):
        samples = _samples(client)
    assert samples[("fangan_metrics_source_failed", (("family", "broken"),))] == 1
    assert samples[("fangan_metrics_source_failed", (("family", "cases"),))] == 0
    assert ("fangan_tick_lag_seconds", ()) in samples


class _Lines(logging.Handler):
    """The JSON lines the site would write, kept for the test."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.stream = io.StringIO()
        self.setFormatter(observe.json_formatter())
        self.addFilter(observe.RequestFields())
        from server.core.redact import RedactingFilter

        self.addFilter(RedactingFilter())

    def emit(self, record: logging.LogRecord) -> None:
        self.stream.write(self.format(record) + "\n")

    def lines(self) -> list[dict]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines()]


def test_json_log_lines_carry_the_request_id_and_the_user_and_nothing_of_a_reporter(app):
    app.config["FANGAN_MIN_FILL_SECONDS"] = 0
    with app.app_context():
        _people()
    handler, root = _Lines(), logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        public = app.test_client()
        sent = _report(public, reporter_name="赵六", reporter_phone="139 1234 5678")
        assert sent.status_code == 303, sent.get_data(as_text=True)[:500]
        code = sent.headers["Location"].rsplit("/", 1)[1]
        tracked = public.get(f"/p/track/{code}")
        staff = app.test_client()
        login(staff, "office")
        inbox = staff.get("/cases/lidu/")
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        app.config.pop("FANGAN_MIN_FILL_SECONDS", None)
    lines = handler.lines()
    access = [line for line in lines if line["logger"] == "fangan.access"]
    assert access and all({"time", "level", "request_id", "method", "path", "status", "duration_ms"} <= line.keys()
                          for line in access)
    by_id = {line["request_id"]: line for line in access}
    assert by_id[tracked.headers["X-Request-ID"]]["path"] == "/p/track/***"
    seen = by_id[inbox.headers["X-Request-ID"]]
    assert seen["user"] == "office" and seen["status"] == inbox.status_code == 200
    assert seen["endpoint"] == "workflow.inbox"
    assert "user" not in by_id[sent.headers["X-Request-ID"]]  # the public reporter is nobody in the logs
    text = handler.stream.getvalue()
    for secret in ("赵六", "13912345678", "139 1234 5678", "139****5678", code):
        assert secret not in text
