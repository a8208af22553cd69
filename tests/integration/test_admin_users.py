"""User administration pages: create with a generated password shown once, grant roles, block, reset."""

from __future__ import annotations

import re

import pytest

from server.auth.models import RoleAssignment, User
from server.extensions import db
from tests.conftest import csrf_token
from tests.support.factories import load_demo, login, make_user, unit_id


@pytest.fixture
def admin_client(ctx, client):
    load_demo()
    make_user("root", admin=True)
    login(client, "root")
    return client


def test_create_user_shows_password_once(admin_client, app):
    token = csrf_token(admin_client, "/admin/users")
    response = admin_client.post("/admin/users", data={"csrf_token": token, "username": "chief1",
                                                       "display_name": "张三"})
    page = response.get_data(as_text=True)
    password = re.search(r'data-testid="new-password">([^<]+)<', page).group(1)
    assert password not in admin_client.get("/admin/users").get_data(as_text=True)
    other = app.test_client()
    assert login(other, "chief1", password).status_code == 302


def test_duplicate_username_rerenders_with_error(admin_client):
    make_user("taken")
    token = csrf_token(admin_client, "/admin/users")
    response = admin_client.post("/admin/users", data={"csrf_token": token, "username": "taken",
                                                       "display_name": "X"})
    assert response.status_code == 400
    assert "taken" in response.get_data(as_text=True)


def test_grant_and_revoke_role(admin_client):
    user = make_user("grantee")
    token = csrf_token(admin_client, "/admin/users")
    admin_client.post(f"/admin/users/{user.id}/roles", data={
        "csrf_token": token, "scheme_role": "lidu:unit_head", "unit": str(unit_id("lidu", "shilong"))})
    assignment = db.session.scalar(db.select(RoleAssignment).filter_by(user_id=user.id))
    assert assignment.role_key == "unit_head" and assignment.unit_id == unit_id("lidu", "shilong")
    admin_client.post(f"/admin/roles/{assignment.id}/revoke", data={"csrf_token": token})
    assert db.session.scalar(db.select(RoleAssignment).filter_by(user_id=user.id)) is None


def test_unknown_role_is_refused(admin_client):
    user = make_user("grantee2")
    token = csrf_token(admin_client, "/admin/users")
    admin_client.post(f"/admin/users/{user.id}/roles", data={"csrf_token": token, "scheme_role": "lidu:emperor"})
    assert db.session.scalar(db.select(RoleAssignment).filter_by(user_id=user.id)) is None


def test_blocking_ends_the_session(admin_client, app):
    user = make_user("blocked")
    other = app.test_client()
    login(other, "blocked")
    assert other.get("/account/password").status_code == 200
    token = csrf_token(admin_client, "/admin/users")
    admin_client.post(f"/admin/users/{user.id}/active", data={"csrf_token": token})
    assert other.get("/account/password").status_code == 302
    db.session.expire_all()
    assert db.session.get(User, user.id).active is False


def test_only_system_admins_manage_users(ctx, client):
    load_demo()
    make_user("office", roles=(("lidu", "office_admin", None),))
    login(client, "office")
    assert client.get("/admin/users").status_code == 403
