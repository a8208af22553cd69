"""Concurrent loads of the same scheme on PostgreSQL: unique keys keep one copy and nobody gets an error."""

from __future__ import annotations

import threading

import pytest

from server.definitions.models import DefinitionVersion, SchemeRecord, SchemeVersion
from server.definitions.service import load_scheme
from server.extensions import db
from tests.conftest import make_app
from tests.support.factories import demo_files
from tests.support.postgres import create_database


@pytest.mark.postgresql
def test_parallel_loads_store_one_version(backend, postgres_admin_url, tmp_path):
    url = create_database(postgres_admin_url, "fangan_concurrency")
    app = make_app(url, tmp_path)
    files = demo_files()
    workers = 6
    barrier = threading.Barrier(workers)
    results: list[tuple[int, bool]] = []
    failures: list[BaseException] = []

    def load() -> None:
        with app.app_context():
            try:
                barrier.wait(10)
                version, created = load_scheme(files)
                db.session.commit()
                results.append((version.id, created))
            except BaseException as exc:  # noqa: BLE001 - reported below
                failures.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=load) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not failures, failures
    assert len({vid for vid, _ in results}) == 1 and len(results) == workers
    assert sum(created for _, created in results) == 1
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(SchemeVersion.id))) == 1
        assert db.session.scalar(db.select(db.func.count(SchemeRecord.key))) == 1
        version = db.session.scalar(db.select(SchemeVersion))
        assert db.session.scalar(db.select(db.func.count(DefinitionVersion.id))) == len(version.members)
        db.session.remove()
        db.engine.dispose()
