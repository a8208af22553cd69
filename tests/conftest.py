"""Fixtures: every database test runs on SQLite and on a throwaway PostgreSQL cluster.

Tests that use `app`, `client` or `db_session` are parametrized over both backends; tests marked
`postgresql` run only there. Each test runs inside a transaction that is rolled back at the end
(services commit into SAVEPOINTs). Set FANGAN_TEST_BACKENDS=sqlite for a quick local run.
"""

from __future__ import annotations

import contextvars
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import time_machine
from flask import Flask
from flask.testing import FlaskClient

from server import builtins, create_app  # noqa: F401 - builtins: the registries the definition checks read
from server.extensions import db
from tests.support.clock import NOW
from tests.support.factories import rolled_back
from tests.support.postgres import create_database, temporary_cluster

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = [b for b in os.environ.get("FANGAN_TEST_BACKENDS", "sqlite,postgresql").split(",") if b]


_TRAVEL = time_machine.travel(NOW, tick=True)


def pytest_configure(config: pytest.Config) -> None:
    """Run the whole session, collection included, at the suite's instant (tests/support/clock.py)."""
    _TRAVEL.start()


def pytest_unconfigure(config: pytest.Config) -> None:
    _TRAVEL.stop()


def pytest_report_header(config: pytest.Config) -> str:
    return f"fangan test clock: {NOW.isoformat()} (FANGAN_TEST_NOW)"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        wanted = ["postgresql"] if metafunc.definition.get_closest_marker("postgresql") else BACKENDS
        metafunc.parametrize("backend", [b for b in wanted if b in BACKENDS], indirect=True, scope="session")


@pytest.fixture(scope="session")
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    url = os.environ.get("FANGAN_TEST_PG_URL")
    if url:
        yield url
        return
    with temporary_cluster() as url:
        yield url


@pytest.fixture(scope="session")
def instance_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="fangan-test-") as folder:
        yield Path(folder)


class IsolatedClient(FlaskClient):
    """A test client whose requests never share the test's app context (nor its `g`), like real requests."""

    def open(self, *args, **kwargs):
        return contextvars.Context().run(super().open, *args, **kwargs)


def make_app(database_url: str, instance: Path, **extra) -> Flask:
    """An app for tests: its own instance folder, migrations applied, cookies allowed over http."""
    config = {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key-not-for-production",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SESSION_COOKIE_SECURE": False,
        "REMEMBER_COOKIE_SECURE": False,
        "RATELIMIT_ENABLED": False,
        "FANGAN_JOBS_URL": "memory://",  # jobs run when a test says so (server.jobs.queue.run_queued)
        **extra,
    }
    instance.mkdir(parents=True, exist_ok=True)
    app = create_app(config)
    app.instance_path = str(instance)
    app.test_client_class = IsolatedClient
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
    return app


@pytest.fixture(scope="session")
def _apps(request: pytest.FixtureRequest, instance_dir: Path) -> Iterator[dict[str, Flask]]:
    apps: dict[str, Flask] = {}
    yield apps
    for app in apps.values():  # close every pooled connection before the cluster stops
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture(scope="session")
def base_app(backend: str, _apps: dict[str, Flask], instance_dir: Path,
             request: pytest.FixtureRequest) -> Flask:
    """One migrated app per backend for the whole session."""
    if backend not in _apps:
        if backend == "sqlite":
            url = f"sqlite:///{instance_dir / 'test.sqlite'}"
        else:
            url = create_database(request.getfixturevalue("postgres_admin_url"), "fangan_test")
        _apps[backend] = make_app(url, instance_dir / backend)
        with _apps[backend].app_context():
            # Services commit; in tests those commits release SAVEPOINTs inside the test's transaction.
            db.session.configure(join_transaction_mode="create_savepoint")
    return _apps[backend]


@pytest.fixture(autouse=True)
def _limiter_left_as_found() -> Iterator[None]:
    """The rate limiter is one object shared by every app: a test that builds a limited app of its own must
    not leave the session's apps limited (their tests would hit 429s depending on the order they run in)."""
    from server.extensions import limiter

    enabled = limiter.enabled
    yield
    limiter.enabled = enabled


@pytest.fixture
def app(base_app: Flask) -> Iterator[Flask]:
    """The app with every database change of this test rolled back afterwards (and what was kept from that
    data forgotten: SQLite hands the same ids out again)."""
    from server.org.service import forget_names
    from server.patrols.service import forget_reminders
    from server.public.views import KEPT_PAGES

    with rolled_back(base_app):
        yield base_app
    forget_reminders()
    forget_names()
    KEPT_PAGES.clear()


@pytest.fixture
def ctx(app: Flask) -> Iterator[Flask]:
    """An application context for calling services directly."""
    with app.app_context():
        yield app
        db.session.remove()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csrf_token(client: FlaskClient, path: str = "/login") -> str:
    """Fetch a page and return the CSRF token in its first form."""
    page = client.get(path)
    match = CSRF_RE.search(page.get_data(as_text=True))
    assert match, f"no csrf token on {path}"
    return match.group(1)
