"""Migrations that change data: a database at an older revision upgrades with its rows made right."""

from __future__ import annotations

import sqlalchemy as sa
from flask_migrate import upgrade

from server import create_app


def test_0004_fills_in_area_paths(tmp_path):
    app = create_app({"TESTING": True, "SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/old.db"})
    with app.app_context():
        from server.extensions import db

        upgrade(revision="0003_cases")
        with db.engine.begin() as conn:
            for area_id, parent in ((1, None), (2, 1), (3, 2), (4, None)):
                conn.execute(sa.text("INSERT INTO areas (id, scheme_key, key, kind, name, parent_id, position, source, "
                                     "active) VALUES (:id, 'd', :key, 'road', '\"x\"', :parent, 0, 'scheme', 1)"),
                             {"id": area_id, "key": f"a{area_id}", "parent": parent})
        upgrade()
        with db.engine.connect() as conn:
            paths = dict(conn.execute(sa.text("SELECT id, path FROM areas")).all())
        db.engine.dispose()
    assert paths == {1: "/1/", 2: "/1/2/", 3: "/1/2/3/", 4: "/4/"}
