"""The scheme in force is compiled once per stored content and follows activation at once."""

from __future__ import annotations

import pytest

from server.core.errors import NotFound
from server.definitions.service import activate_scheme_version, load_scheme, scheme_in_force, scheme_or_404
from server.extensions import db
from tests.support.factories import demo_files, load_demo


def test_compiled_once_and_shared_between_requests(app, ctx):
    version = load_demo()
    with app.test_request_context("/"):
        first = scheme_in_force(version.scheme_key)
    with app.test_request_context("/"):
        second = scheme_in_force(version.scheme_key)
    assert first is second and first.content_hash == version.scheme_definition.content_hash
    assert first.key == version.scheme_key and first.calendar.timezone == "Asia/Shanghai"


def test_a_new_version_is_read_at_once_within_the_request(app, ctx):
    version = load_demo()
    files = demo_files()
    name = next(n for n in files if n.endswith("scheme.yaml"))
    files[name] = files[name].replace("patrol_distance_m: 500", "").rstrip() + "\npatrol_distance_m: 120\n"
    with app.test_request_context("/"):
        before = scheme_in_force(version.scheme_key)
        newer, created = load_scheme(files)
        assert created
        activate_scheme_version(newer.id)
        after = scheme_in_force(version.scheme_key)
        db.session.rollback()
    assert after is not before and after.patrol_distance_m == 120 and before.patrol_distance_m != 120


def test_no_such_district(ctx):
    assert scheme_in_force("nowhere") is None
    with pytest.raises(NotFound):
        scheme_or_404("nowhere")
