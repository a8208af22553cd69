"""The production shape on one machine: PostgreSQL, Redis, and two `fangan run` servers on two ports standing
for two hosts (each with its own instance folder, sharing the secret key, the upload and jobs folders and Redis),
with `fangan tick` run on both. A journey crosses them: a session made on one is valid on the other, rate limits
are counted once for both, a photo sent through one is served by the other, a job asked for on one is run by a
worker on the other, each escalation happens once.

The servers and ticks run in processes of their own at the suite's instant (tests/support/frozen_cli.py)."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from PIL import Image

from server.core.clock import utcnow
from server.extensions import db
from server.forms.models import Upload
from server.public.models import PublicReport
from server.workflow.models import Case, CaseDeadline, CaseEvent, EscalationApplied
from tests.conftest import make_app
from tests.support import frozen_cli
from tests.support.factories import PASSWORD
from tests.support.postgres import create_database, free_port

ROOT = Path(__file__).resolve().parents[2]
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
LOGIN_LIMIT = 3

# What every host reads from its instance folder: sessions that outlive the gap between the suite's clock and
# the machine's (the servers sign cookies at the suite's instant), a login limit small enough to reach, and no
# wait before a public report may be sent.
INSTANCE_CONFIG = f"""
PERMANENT_SESSION_LIFETIME = 36500 * 86400
REMEMBER_COOKIE_DURATION = __import__("datetime").timedelta(days=36500)
FANGAN_LOGIN_LIMIT = "{LOGIN_LIMIT} per minute"
FANGAN_MIN_FILL_SECONDS = 0
"""


@dataclass
class Host:
    name: str
    url: str
    env: dict[str, str]
    process: subprocess.Popen
    output: str = ""  # what the server wrote, once stopped

    def get(self, http: requests.Session, path: str, **kwargs) -> requests.Response:  # noqa: ANN003
        return http.get(self.url + path, allow_redirects=False, timeout=30, **kwargs)

    def post(self, http: requests.Session, path: str, data: dict, **kwargs) -> requests.Response:  # noqa: ANN003
        page = self.get(http, kwargs.pop("form_page", path))
        found = CSRF.search(page.text)
        assert found, f"no form on {page.url}: {page.status_code} {page.headers.get('Location')} {page.text[:300]}"
        token = found.group(1)
        return http.post(self.url + path, data={**data, "csrf_token": token}, allow_redirects=False, timeout=30,
                         **kwargs)


def _wait_for_port(port: int, process: subprocess.Popen, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} stopped: {process.communicate()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not answer on port {port}")


@contextlib.contextmanager
def _redis(folder: Path) -> Iterator[str]:
    server = shutil.which("redis-server") or "/usr/bin/redis-server"
    assert Path(server).exists(), "redis-server is missing: make test installs it (scripts/system-deps.sh test)"
    port = free_port()
    process = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                                "no", "--dir", str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_port(port, process, "redis-server")
        yield f"redis://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(30)


def _fangan(args: list[str], env: dict[str, str], **kwargs) -> subprocess.Popen:  # noqa: ANN003
    env = {**env, **frozen_cli.environment()}  # the suite's clock, as it has run on
    return subprocess.Popen([sys.executable, "-m", "tests.support.frozen_cli", *args], env=env, cwd=ROOT, **kwargs)


@contextlib.contextmanager
def _hosts(shared: dict[str, str], folder: Path, hosts: list[Host]) -> Iterator[list[Host]]:
    """Host a logs as text, host b as JSON lines; b's clock is two seconds behind a's."""
    try:
        for name in ("a", "b"):
            instance = folder / f"host-{name}"
            instance.mkdir()
            (instance / "config.py").write_text(INSTANCE_CONFIG)
            port = free_port()
            # Host b's clock runs two seconds behind a's: a cookie a signs is "from the future" on b.
            env = {**os.environ, **shared, "FANGAN_INSTANCE": str(instance),
                   "FANGAN_LOG_FORMAT": "json" if name == "b" else "text",
                   "FANGAN_TEST_CLOCK_SKEW": "-2" if name == "b" else "0"}
            process = _fangan(["run", "--port", str(port), "--workers", "2", "--threads", "4", "--no-jobs"], env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            hosts.append(Host(name, f"http://127.0.0.1:{port}", env, process))
        for host in hosts:
            _wait_for_port(int(host.url.rsplit(":", 1)[1]), host.process, f"host {host.name}")
        yield hosts
    finally:
        for host in hosts:
            host.process.terminate()
        for host in hosts:
            try:
                host.output = host.process.communicate(timeout=30)[0]
            except subprocess.TimeoutExpired:
                host.process.kill()
                host.output = host.process.communicate()[0]


def _photo() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (96, 64), "green").save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.mark.postgresql
def test_two_hosts_share_sessions_limits_uploads_jobs_and_apply_escalations_once(backend, postgres_admin_url,
                                                                              tmp_path):
    from tests.integration.test_cases import _people, fire, report

    url = create_database(postgres_admin_url, "fangan_multihost")
    uploads = tmp_path / "shared-uploads"
    app = make_app(url, tmp_path / "setup", FANGAN_UPLOAD_DIR=str(uploads))
    with app.test_request_context():
        people = _people()
        cases = [fire(people["office"], report(people["reporter"], size=float(i % 5)), "assign",
                      target_unit="shilong").id for i in range(12)]
        db.session.execute(db.update(CaseDeadline).values(due_at=utcnow() - dt.timedelta(days=2)))
        db.session.commit()
        db.session.remove()

    with _redis(tmp_path) as redis_url:
        shared = {"DATABASE_URL": url, "SECRET_KEY": "one-secret-for-every-host", "FANGAN_SECURE_COOKIES": "0",
                  "RATELIMIT_STORAGE_URI": f"{redis_url}/0", "FANGAN_JOBS_URL": f"{redis_url}/1",
                  "FANGAN_UPLOAD_DIR": str(uploads), "FANGAN_JOBS_DIR": str(tmp_path / "shared-jobs")}
        hosts: list[Host] = []
        with _hosts(shared, tmp_path, hosts) as (a, b):
            for host in (a, b):
                assert host.get(requests.Session(), "/readyz").json() == {"status": "ready"}

            # A session made on one host is valid on the other, though its clock is a little behind.
            office = requests.Session()
            signed_in = a.post(office, "/login", {"username": "office", "password": PASSWORD})
            assert signed_in.status_code == 302 and "/login" not in signed_in.headers["Location"]
            inbox = b.get(office, "/cases/lidu/")
            assert inbox.status_code == 200 and "Office" in inbox.text
            assert b.get(requests.Session(), "/cases/lidu/").status_code == 302  # and without it, the login page

            # Rate limits are counted once for both hosts (Redis): the login limit is reached across them.
            outcomes = []
            for host in (b, a, b, a):
                stranger = requests.Session()
                outcomes.append(host.post(stranger, "/login", {"username": "office", "password": "wrong"},
                                          form_page="/login").status_code)
            # one good sign-in above and these: the limit of three a minute is reached on whichever host
            assert outcomes[: LOGIN_LIMIT - 1] == [400] * (LOGIN_LIMIT - 1)  # the wrong password said
            assert set(outcomes[LOGIN_LIMIT - 1:]) == {429}, outcomes

            # A photo sent through one host is served by the other (the upload folder is shared).
            public = requests.Session()
            page = a.get(public, "/p/lidu/report?area=shilong_old_street").text
            fields = {name: re.search(rf'name="{name}"[^>]*value="([^"]*)"', page).group(1)
                      for name in ("csrf_token", "_token", "_stamp")}
            sent = public.post(a.url + "/p/lidu/report", allow_redirects=False, timeout=30, data={
                **fields, "_action": "submit", "website": "", "category": "random_piling",
                "location-area": "shilong_old_street", "description": "两台主机之间的照片"},
                files={"photos_before": ("p.jpg", _photo(), "image/jpeg")})
            assert sent.status_code == 303, sent.text[:500]
            with app.app_context():
                sent_report = db.session.scalars(db.select(PublicReport).order_by(PublicReport.id.desc())).first()
                photo_id = sent_report.case.data["photos_before"][0]
                stored = db.session.get(Upload, photo_id)
                # written into the shared folder, where host B reads it
                name = f"{stored.sha256}.{stored.extension}"
                assert (uploads / stored.sha256[:2] / stored.sha256[2:4] / name).is_file()
                db.session.remove()
            path = f"/moderation/report/{sent_report.id}/photo/{photo_id}"  # what the moderator sees, from B
            served = {host.name: host.get(office, path) for host in (a, b)}
            assert served["b"].status_code == 200 and served["b"].headers["Content-Type"] == "image/jpeg"
            assert served["b"].content == served["a"].content and served["b"].content[:3] == b"\xff\xd8\xff"

            # A job asked for on one host is run by a worker on the other (the queue is Redis), its file offered
            # by the first (the jobs folder is shared).
            asked = a.post(office, "/cases/lidu/ledger/export", {"format": "xlsx"}, form_page="/cases/lidu/ledger")
            assert asked.status_code == 303, asked.text[:300]
            job_path = asked.headers["Location"].removeprefix(a.url)
            worker = _fangan(["worker", "--once"], b.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            out, err = worker.communicate(timeout=120)
            assert worker.returncode == 0 and "ran 1 job(s)" in out, (out, err)
            result = a.get(office, job_path + "/result")
            assert result.status_code == 200 and result.content[:2] == b"PK", result.text[:300]

            # `fangan tick` on both hosts at once: each overdue deadline escalated once, by one of them.
            ticks = [_fangan(["tick"], host.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                     for host in (a, b, a, b)]
            outputs = [tick.communicate(timeout=120) for tick in ticks]
            assert all(tick.returncode == 0 for tick in ticks), outputs
            applied = sum(int(out.split("applied ")[1].split()[0]) for out, _err in outputs)
            assert applied == len(cases)

            # Each host's /metrics adds up its own processes; the database's figures are the same on both.
            metrics = {host.name: host.get(requests.Session(), "/metrics").text for host in (a, b)}
            for text in metrics.values():
                assert f"fangan_escalations_applied_total {float(len(cases))}" in text
                assert 'fangan_cases_overdue{scheme="lidu"} 12.0' in text
            assert 'endpoint="account.login",method="POST",status="429"' in metrics["a"] + metrics["b"]

    # Host b's log: JSON lines, gunicorn's and the app's, the request ids of its answers, nothing of the reporter.
    lines = [json.loads(line) for line in hosts[1].output.splitlines() if line.strip()]
    assert any(line["logger"] == "gunicorn.error" for line in lines)
    limited = [line["message"] for line in lines if line["logger"] == "flask-limiter"]
    assert limited and all("(***) exceeded" in message for message in limited)  # not the client's address
    by_id = {line.get("request_id"): line for line in lines if line["logger"] == "fangan.access"}
    assert by_id[inbox.headers["X-Request-ID"]]["user"] == "office"
    assert by_id[inbox.headers["X-Request-ID"]]["endpoint"] == "workflow.inbox"
    assert "两台主机之间的照片" not in hosts[1].output and "两台主机之间的照片" not in hosts[0].output

    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(EscalationApplied.id))) == len(cases)
        for case_id in cases:
            events = db.session.scalars(db.select(CaseEvent).filter_by(case_id=case_id, kind="escalation")).all()
            assert len(events) == 1 and db.session.get(Case, case_id).overdue
        db.session.remove()
        db.engine.dispose()
