"""The embedded default under concurrent writers: SQLite with WAL, write transactions opened with
BEGIN IMMEDIATE and a busy timeout, so simultaneous writers queue instead of failing with "database is locked".

Each writer is a thread with its own connection, as under `fangan run` (gunicorn threads): cases opened through
the JSON API, reports through the pages, log-ins, and `fangan tick` runs, all at the same moment."""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask

from server.api import service as api
from server.extensions import db
from server.workflow.models import Case
from tests.conftest import make_app
from tests.support.factories import PASSWORD, load_demo, make_user
from tests.support.images import jpeg

WRITERS = 32


@pytest.fixture
def sqlite_app(tmp_path: Path) -> Flask:
    app = make_app(f"sqlite:///{tmp_path / 'writers.sqlite'}", tmp_path)
    with app.app_context():
        load_demo()
        make_user("reporter", roles=(("lidu", "staff", "shilong"),))
        db.session.commit()
        db.session.remove()
    yield app
    with app.app_context():
        db.engine.dispose()


def _at_once(count: int, work: Callable[[int], int]) -> list[int]:
    """Run `work(i)` in `count` threads released together; their results (status codes)."""
    barrier, results = threading.Barrier(count), [0] * count

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as exc:  # noqa: BLE001 - a failure is a result to report, not to hide
            results[i] = repr(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return results


def test_simultaneous_api_reports_all_open_a_case(sqlite_app):
    with sqlite_app.app_context():
        _client, token = api.create_client("writers", "reporter")
        db.session.commit()
        db.session.remove()
    photo = {"name": "p.jpg", "content": base64.b64encode(jpeg()).decode()}
    body = {"values": {"category": "piled_rubbish", "area": "shilong_old_street", "description": "垃圾堆积",
                       "size_m3": 1.0, "photos_before": [photo]}}

    def report(_i: int) -> int:
        return sqlite_app.test_client().post("/api/v1/schemes/lidu/cases", json=body,
                                             headers={"Authorization": f"Bearer {token}"}).status_code

    assert _at_once(WRITERS, report) == [201] * WRITERS
    with sqlite_app.app_context():
        assert db.session.scalar(db.select(db.func.count(Case.id))) == WRITERS
        db.session.remove()


def test_simultaneous_log_ins_and_ticks_do_not_fail(sqlite_app):
    import re

    def log_in(_i: int) -> int:
        client = sqlite_app.test_client()
        page = client.get("/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
        return client.post("/login", data={"csrf_token": token, "username": "reporter",
                                           "password": PASSWORD}).status_code

    assert _at_once(8, log_in) == [302] * 8
    runner = sqlite_app.test_cli_runner()
    assert _at_once(4, lambda _i: runner.invoke(args=["tick"]).exit_code) == [0] * 4
