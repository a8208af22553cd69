"""`fangan backup` and `fangan restore`: the database and the uploads in one archive, back into an empty instance,
on SQLite and on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import inspect, text

from server.backup.service import BackupError, backup_instance, restore_instance, upload_root
from server.cli import main
from server.definitions.models import SchemeVersionFile
from server.definitions.service import current_version
from server.extensions import db
from tests.conftest import make_app
from tests.support.factories import load_demo, make_user
from tests.support.postgres import create_database


def _database(backend: str, request: pytest.FixtureRequest, folder: Path, name: str) -> str:
    if backend == "sqlite":
        return f"sqlite:///{folder / f'{name}.sqlite'}"
    return create_database(request.getfixturevalue("postgres_admin_url"), name)


def _counts() -> dict[str, int]:
    return {table: db.session.execute(text(f'SELECT count(*) FROM "{table}"')).scalar()  # noqa: S608
            for table in inspect(db.session.connection()).get_table_names()}


def _close(app) -> None:  # noqa: ANN001
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def test_a_backup_restores_into_an_empty_instance(backend, request, tmp_path):
    source = make_app(_database(backend, request, tmp_path, "backup_source"), tmp_path / "source")
    with source.app_context():
        load_demo()
        make_user("chief", roles=(("lidu", "unit_head", "shilong"),))
        db.session.commit()
        photo = upload_root() / "ab" / "cd" / ("ab" * 32 + ".jpg")
        photo.parent.mkdir(parents=True)
        photo.write_bytes(b"\xff\xd8\xff a photo")
        before = _counts()
        files = {(f.scheme_version_id, f.path): f.content for f in db.session.scalars(db.select(SchemeVersionFile))}
        archive = tmp_path / "fangan.tar.gz"
        made = backup_instance(archive)
        assert made.uploads == 1 and made.database == backend and made.revision
        with pytest.raises(BackupError, match="exists already"):
            backup_instance(archive)
        with pytest.raises(BackupError, match="not empty"):
            restore_instance(archive)  # an instance with data is never overwritten
    _close(source)

    target = make_app(_database(backend, request, tmp_path, "backup_target"), tmp_path / "target")
    with target.app_context():
        restored = restore_instance(archive)
        assert restored.uploads == 1
        db.session.remove()
        assert _counts() == before
        assert {(f.scheme_version_id, f.path): f.content
                for f in db.session.scalars(db.select(SchemeVersionFile))} == files
        assert current_version("lidu") is not None
        assert (upload_root() / "ab" / "cd" / ("ab" * 32 + ".jpg")).read_bytes() == b"\xff\xd8\xff a photo"
    _close(target)


def test_what_is_not_a_backup_is_refused(backend, request, tmp_path):
    app = make_app(_database(backend, request, tmp_path, "backup_refuse"), tmp_path / "refuse")
    with app.app_context():
        junk = tmp_path / "junk.tar.gz"
        junk.write_bytes(b"not a tar file")
        with pytest.raises(BackupError, match="not a Fangan backup"):
            restore_instance(junk)
    _close(app)


def test_the_commands(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("SECRET_KEY", "backup-test")
    monkeypatch.setenv("FANGAN_INSTANCE", str(tmp_path / "instance"))
    app = make_app(url, tmp_path / "instance")
    with app.app_context():
        load_demo()
    _close(app)
    runner = CliRunner()
    done = runner.invoke(main, ["backup", str(tmp_path / "b.tar.gz")])
    assert done.exit_code == 0 and "Backed up the sqlite database" in done.output
    refused = runner.invoke(main, ["restore", str(tmp_path / "b.tar.gz")])
    assert refused.exit_code != 0 and "not empty" in refused.output


def test_readiness_says_when_the_database_is_not_migrated(backend, request, tmp_path):
    app = make_app(_database(backend, request, tmp_path, "readyz"), tmp_path / "readyz")
    client = app.test_client()
    assert client.get("/healthz").get_json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200
    with app.app_context():
        head = db.session.execute(text("SELECT version_num FROM alembic_version")).scalar()
        db.session.execute(text("UPDATE alembic_version SET version_num = '0017_assessment_drafts'"))
        db.session.commit()
    pending = client.get("/readyz")
    assert pending.status_code == 503 and pending.get_json() == {"status": "migrations pending"}
    assert client.get("/healthz").status_code == 200  # alive all the same
    with app.app_context():
        db.session.execute(text("UPDATE alembic_version SET version_num = '0099_future'"))
        db.session.commit()
    assert client.get("/readyz").get_json() == {"status": "database newer than code"}  # an old host, upgraded DB
    with app.app_context():
        db.session.execute(text("UPDATE alembic_version SET version_num = :head"), {"head": head})
        db.session.commit()
    assert client.get("/readyz").status_code == 200
    _close(app)


def test_an_older_backup_restores_into_a_newer_migrated_instance(backend, request, tmp_path):
    from flask_migrate import upgrade

    from server import create_app

    url = _database(backend, request, tmp_path, "backup_old")
    old = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": url, "FANGAN_JOBS_URL": "memory://"})
    old.instance_path = str(tmp_path / "old")
    with old.app_context():
        upgrade(revision="0017_assessment_drafts")  # a database as an older Fangan left it
        db.session.execute(text("INSERT INTO calendar_days (day, working, name) VALUES ('2027-01-01', false, '元旦')"))
        db.session.commit()
        archive = tmp_path / "old.tar.gz"
        assert backup_instance(archive).revision == "0017_assessment_drafts"
        assert oct(archive.stat().st_mode & 0o777) == "0o600"  # readable by its owner only
    _close(old)
    target = make_app(_database(backend, request, tmp_path, "backup_new"), tmp_path / "new")
    with target.app_context():
        restore_instance(archive)
        db.session.remove()
        assert db.session.execute(text("SELECT name FROM calendar_days")).scalar() == "元旦"
        assert "scheme_version_files" in inspect(db.session.connection()).get_table_names()  # migrated on
    _close(target)


def test_a_backup_from_a_newer_version_is_refused_and_changes_nothing(backend, request, tmp_path):
    import io
    import json
    import tarfile

    source = make_app(_database(backend, request, tmp_path, "backup_future"), tmp_path / "future")
    with source.app_context():
        load_demo()
        archive = tmp_path / "made.tar.gz"
        backup_instance(archive)
    _close(source)
    future = tmp_path / "future.tar.gz"
    with tarfile.open(archive) as made, tarfile.open(future, "w:gz") as out:
        for member in made.getmembers():
            data = made.extractfile(member).read()
            if member.name == "manifest.json":
                data = json.dumps({**json.loads(data), "revision": "0099_future"}).encode()
                member.size = len(data)
            out.addfile(member, io.BytesIO(data))
    target = make_app(_database(backend, request, tmp_path, "backup_future_target"), tmp_path / "future_target")
    with target.app_context():
        with pytest.raises(BackupError, match="does not know"):
            restore_instance(future)
        assert all(count == 0 for table, count in _counts().items() if table != "alembic_version")
        restore_instance(archive)  # still empty: the real one restores
        assert current_version("lidu") is not None
    _close(target)
