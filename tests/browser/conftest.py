"""A live server per backend and Debian's chromium driven by Playwright (never `playwright install`)."""

from __future__ import annotations

import datetime as dt
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from server.extensions import db
from tests.conftest import make_app
from tests.support.factories import PASSWORD, load_demo, make_user
from tests.support.postgres import create_database, free_port

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync", "--disable-quic"]


@dataclass
class Live:
    url: str
    admin: str
    password: str
    app: object = None

    def count(self, model) -> int:  # noqa: ANN001
        """Rows of a model in the live server's database."""
        with self.app.app_context():
            try:
                return db.session.scalar(db.select(db.func.count()).select_from(model))
            finally:
                db.session.remove()


@pytest.fixture(scope="session")
def live_server(backend: str, request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[Live]:
    folder: Path = tmp_path_factory.mktemp(f"live-{backend}")
    if backend == "sqlite":
        url = f"sqlite:///{folder / 'live.sqlite'}"
    else:
        url = create_database(request.getfixturevalue("postgres_admin_url"), "fangan_live")
    # The server runs on the suite's frozen clock, Chromium on the machine's: a session cookie's Expires,
    # reckoned by the server, must not look past to the browser, or it drops the log-in.
    app = make_app(url, folder, PERMANENT_SESSION_LIFETIME=dt.timedelta(days=36500),
                   REMEMBER_COOKIE_DURATION=dt.timedelta(days=36500))
    with app.app_context():
        load_demo()
        make_user("admin", admin=True)
        make_user("chief", roles=(("lidu", "unit_head", "shilong"),))
        make_user("office", roles=(("lidu", "office_admin", None),))
        make_user("reporter", roles=(("lidu", "staff", "shilong"),))
        make_user("assessor", roles=(("lidu", "assessor", None),))
        from server.org.posts import appoint

        appoint("lidu", "segment_keeper", "张三", area_key="shilong_old_street", phone="13900000002",
                duties=["<img src=x onerror=alert(1)>每天巡查"])
        db.session.commit()
        db.session.remove()
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stop = threading.Event()
    worker = threading.Thread(target=_job_worker, args=(app, stop), daemon=True)
    worker.start()
    yield Live(f"http://127.0.0.1:{port}", "admin", PASSWORD, app)
    stop.set()
    worker.join(30)
    server.shutdown()
    thread.join(5)
    with app.app_context():
        db.engine.dispose()


def _job_worker(app, stop: threading.Event) -> None:  # noqa: ANN001
    """The live server's job worker: what `fangan worker` does, on the server's in-process queue."""
    from server.jobs.queue import run_queued

    while not stop.is_set():
        if not run_queued(app):
            stop.wait(0.1)


@pytest.fixture(scope="session")
def browser() -> Iterator:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"chromium not found at {CHROMIUM}: run `make test`, which installs it")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


def phone_context(browser, **options):  # noqa: ANN001, ANN201
    """A phone-sized browser context in Chinese."""
    return browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN", **options)


def logged_in(browser, live: Live, username: str, timeout_ms: int = 20_000):  # noqa: ANN001, ANN201
    """A phone context and page logged in as `username` (service workers off, so pages are the server's).

    The timeout is generous: on a busy two-core CI machine a page that takes a few seconds is not a failure.
    """
    context = phone_context(browser, service_workers="block")
    page = context.new_page()
    page.set_default_timeout(timeout_ms)
    page.goto(live.url + "/login")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(live.password)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(live.url + "/")
    return context, page


@pytest.fixture
def page(browser) -> Iterator:
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")  # a phone
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()
