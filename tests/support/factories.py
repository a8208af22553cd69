"""Create test data through the same services the app uses."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.datastructures import FileStorage, MultiDict

from server.auth.service import create_user, grant_role
from server.definitions.bundle import read_source
from server.definitions.service import activate_scheme_version, load_scheme
from server.extensions import db
from server.org.models import Unit

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "schemes" / "lidu"
PASSWORD = "correct-horse-battery"


@cache
def _demo_files() -> dict[str, str]:
    return read_source(DEMO)


def demo_files() -> dict[str, str]:
    """The demo scheme's files, read once: a copy each time, so that a test changing one changes no other."""
    return _demo_files().copy()


def activate_demo_with_form(form_id: str, text: str):
    """Load and activate the demo scheme with one more form (its YAML `text`) listed first; returns the version."""
    files = demo_files()
    scheme = next(name for name in files if name.endswith("lidu/scheme.yaml"))
    assert "forms: [patrol_log," in files[scheme]
    files[scheme] = files[scheme].replace("forms: [patrol_log,", f"forms: [{form_id}, patrol_log,", 1)
    files[scheme.replace("scheme.yaml", f"{form_id}.yaml")] = text
    version, _ = load_scheme(files)
    activate_scheme_version(version.id)
    db.session.commit()
    return version


def load_demo(activate: bool = True):
    """Load (and by default activate) the demo scheme; returns the scheme version."""
    version, _ = load_scheme(demo_files())
    if activate:
        activate_scheme_version(version.id)
    db.session.commit()
    return version


@cache
def _scheme_files(name: str) -> dict[str, str]:
    return read_source(ROOT / "schemes" / name)


def scheme_files(name: str) -> dict[str, str]:
    """A shipped scheme's files (schemes/<name>), read once: a copy each time, like `demo_files`."""
    return _scheme_files(name).copy()


def load_shipped(name: str):
    """Load and activate another shipped scheme (schemes/<name>); returns the scheme version."""
    version, _ = load_scheme(scheme_files(name))
    activate_scheme_version(version.id)
    db.session.commit()
    return version


def unit_id(scheme_key: str, key: str) -> int:
    return db.session.scalar(db.select(Unit.id).filter_by(scheme_key=scheme_key, key=key))


def make_user(username: str, *, admin: bool = False, roles: tuple[tuple[str, str, str | None], ...] = ()):
    """A user with the test password and roles given as (scheme, role, unit key or None)."""
    user, _ = create_user(username, username.title(), PASSWORD, is_admin=admin)
    for scheme_key, role, unit_key in roles:
        grant_role(user, scheme_key, role, unit_id(scheme_key, unit_key) if unit_key else None)
    db.session.commit()
    return user


def login(client: FlaskClient, username: str, password: str = PASSWORD):
    from tests.conftest import csrf_token

    token = csrf_token(client, "/login")
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token})


@contextmanager
def rolled_back(app: Flask) -> Iterator[None]:
    """Everything written inside rolled back at the end: one connection, one transaction, services committing
    into SAVEPOINTs inside it (conftest's `app` fixture for one test; the security modules for a whole module)."""
    with app.app_context():
        engines = db.engines
        engine = engines[None]
        connection = engine.connect()
        outer = connection.begin()
        engines[None] = connection
    try:
        yield
    finally:
        with app.app_context():
            db.session.remove()
            engines[None] = engine
        outer.rollback()
        connection.close()


def formdata(**fields: Any) -> MultiDict:
    """A submitted form: a list value gives the field several times."""
    data = MultiDict()
    for key, value in fields.items():
        for item in value if isinstance(value, list) else [value]:
            data.add(key, item)
    return data


def photo(name: str = "p.jpg") -> FileStorage:
    from tests.support.images import jpeg

    return FileStorage(io.BytesIO(jpeg()), filename=name, content_type="image/jpeg")


def give_missing_marks(user, period, value: float = 0) -> None:  # noqa: ANN001
    """Every hand-entered metric no assessor has given yet, given as `value`: a period complete enough to publish
    as final (without this, publication is provisional)."""
    from server.assessment import service

    for unit, metric in service.missing_marks(period):
        service.enter_marks(user, period, unit, f"metric:{metric}", {"value": value})


def add_roads(names: list[str], scheme_key: str = "lidu", like: str = "shilong_old_street") -> None:
    """Roads of these names (keys road_000, road_001…) beside a district's own, of the kind, unit and parent of
    `like`: a district of a city's size for the place pickers."""
    from sqlalchemy import insert

    from server.org.models import Area

    road = db.session.scalar(db.select(Area).filter_by(scheme_key=scheme_key, key=like))
    db.session.execute(insert(Area), [
        {"scheme_key": scheme_key, "key": f"road_{i:03d}", "kind": road.kind, "name": {"zh": name, "en": f"Road {i}"},
         "unit_id": road.unit_id, "parent_id": road.parent_id, "path": road.path, "position": 100 + i,
         "source": "manual", "active": True} for i, name in enumerate(names)])
