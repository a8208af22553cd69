"""`fangan db copy --to postgresql://…`: a district that outgrew the embedded SQLite moves every row to PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, inspect, select, text

from server.backup.service import BackupError, copy_database
from server.cli import main
from server.extensions import db
from server.workflow.models import Case
from tests.conftest import make_app
from tests.integration.test_cases import report
from tests.support.factories import load_demo, make_user
from tests.support.postgres import create_database

pytestmark = pytest.mark.postgresql


def _plain(value: object) -> str:
    # (PostgreSQL's JSONB keeps an object's keys in an order of its own)
    return json.dumps(value, sort_keys=True, ensure_ascii=False) if isinstance(value, dict | list) else str(value)


def _rows(connection) -> dict[str, list[tuple]]:  # noqa: ANN001
    """Every table's rows, as comparable tuples in key order."""
    out = {}
    for table in db.metadata.sorted_tables:
        order = list(table.primary_key.columns) or list(table.columns)
        out[table.name] = [tuple(_plain(v) for v in row) for row in connection.execute(select(table).order_by(*order))]
    return out


def test_every_row_moves_to_postgresql(backend, postgres_admin_url, tmp_path: Path, monkeypatch):
    source = make_app(f"sqlite:///{tmp_path / 'district.sqlite'}", tmp_path / "instance")
    target = create_database(postgres_admin_url, "copy_target")
    with source.test_request_context():
        load_demo()
        reporter = make_user("reporter", roles=(("lidu", "staff", "shilong"),))
        case = report(reporter, 2.5)
        # What a district's history holds: a unit moved under one made after it, a place without a shape.
        from server.org.models import Area, Unit

        first = db.session.scalar(db.select(Unit).order_by(Unit.id))
        later = Unit(scheme_key="lidu", key="newer_office", kind="office", name={"zh": "新办公室"}, path="",
                     source="manual")
        db.session.add(later)
        db.session.flush()
        first.parent_id = later.id
        first_area = db.session.scalar(db.select(Area.id).order_by(Area.id))
        db.session.execute(db.update(Area).where(Area.id == first_area).values(geometry=db.null()))
        db.session.commit()
        nulls = db.session.scalar(db.select(db.func.count(Area.id)).where(Area.geometry.is_(None)))
        before = _rows(db.session.connection())
        done = copy_database(target)
        assert done.rows == sum(len(rows) for rows in before.values()) and before["cases"]
        # Every table of the database is one the copy knows (nothing left behind).
        assert set(inspect(db.session.connection()).get_table_names()) - set(before) == {"alembic_version"}
        with pytest.raises(BackupError, match="not empty"):
            copy_database(target)  # never into a database that holds rows
        case_id = case.id
        db.session.remove()
        db.engine.dispose()

    from server.org.models import Area

    moved = make_app(target, tmp_path / "moved")
    with moved.test_request_context():
        assert _rows(db.session.connection()) == before
        assert db.session.get(Case, case_id).data["size_m3"] == 2.5
        assert db.session.scalar(db.select(db.func.count(Area.id)).where(Area.geometry.is_(None))) == nulls == 1
        # The sequences go on after the rows copied: new rows get new ids.
        newcomer = make_user("newcomer")
        assert newcomer.id > max(int(row[0]) for row in before["users"])
        again = report(db.session.scalar(select(type(newcomer)).filter_by(username="reporter")), 1.0)
        assert again.id > case_id
        db.session.remove()
        db.engine.dispose()


def test_the_command(backend, postgres_admin_url, tmp_path: Path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("SECRET_KEY", "copy-test")
    monkeypatch.setenv("FANGAN_INSTANCE", str(tmp_path / "instance"))
    app = make_app(url, tmp_path / "instance")
    with app.app_context():
        load_demo()
        db.session.remove()
        db.engine.dispose()
    target = create_database(postgres_admin_url, "copy_cli")
    done = CliRunner().invoke(main, ["db", "copy", "--to", target])
    assert done.exit_code == 0, done.output
    assert "Copied" in done.output and "scheme_versions: 1 rows" in done.output
    engine = create_engine(target)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM scheme_versions")).scalar() == 1
        assert "alembic_version" in inspect(connection).get_table_names()
    engine.dispose()
