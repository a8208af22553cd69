"""Irreversible actions ask first (static/js/confirm.js reads `data-confirm`): putting a version in force,
publishing results, blocking a user and giving a new password; rejecting a case has a page of its own."""

from __future__ import annotations

import re

from server.assessment import service as assessment
from server.definitions.models import SchemeVersion
from server.definitions.service import load_scheme
from server.extensions import db
from tests.support.clock import TODAY
from tests.support.factories import demo_files, load_demo, login, make_user


def _confirmed_forms(html: str) -> list[str]:
    return re.findall(r'<form[^>]*action="([^"]+)"[^>]*data-confirm="[^"]+"', html)


def test_irreversible_forms_ask_first(ctx, client):
    version = load_demo()
    admin = make_user("root", admin=True)
    make_user("someone")
    period = assessment.open_period(admin, "lidu", "lidu_monthly", TODAY)
    db.session.commit()
    login(client, "root")
    users = _confirmed_forms(client.get("/admin/users").get_data(as_text=True))
    assert any(a.endswith("/reset-password") for a in users) and any(a.endswith("/active") for a in users)
    files = demo_files()
    key = next(k for k in files if k.endswith("scheme.yaml"))
    files[key] = files[key].replace("followup_days: 15", "followup_days: 14")  # a later version, not in force
    later, _ = load_scheme(files)
    db.session.commit()
    assert later.id != version.id and db.session.get(SchemeVersion, later.id).activated_at is None
    assert any("activate" in a for a in _confirmed_forms(client.get(f"/admin/schemes/versions/{later.id}")
                                                          .get_data(as_text=True)))
    assert any(a.endswith("/publish") for a in _confirmed_forms(client.get(f"/assess/period/{period.id}")
                                                                 .get_data(as_text=True)))
    assert "confirm.js" in client.get("/").get_data(as_text=True)
