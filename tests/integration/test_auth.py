"""Login, logout, passwords, CSRF and cookie flags."""

from __future__ import annotations

import re

import pytest

from server.extensions import db
from tests.conftest import csrf_token, make_app
from tests.support.factories import PASSWORD, login, make_user


def test_login_and_logout(ctx, client):
    make_user("zhang")
    response = login(client, "zhang")
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert client.get("/account/password").status_code == 200
    token = csrf_token(client, "/")
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/account/password").status_code == 302


def test_wrong_password_rerenders_with_username_kept(ctx, client):
    make_user("li")
    response = login(client, "li", "not-the-password")
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert 'value="li"' in page
    assert "field-error" in page
    assert client.get("/account/password").status_code == 302


def test_login_without_csrf_token_is_refused(ctx, client):
    make_user("wang")
    response = client.post("/login", data={"username": "wang", "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/account/password").status_code == 302


def test_logout_needs_csrf_too(ctx, client):
    make_user("zhao")
    login(client, "zhao")
    assert client.post("/logout").status_code == 400
    assert client.get("/account/password").status_code == 200


def test_open_redirect_is_refused(ctx, client):
    make_user("qian")
    token = csrf_token(client)
    response = client.post("/login?next=//evil.example/x",
                           data={"username": "qian", "password": PASSWORD, "csrf_token": token})
    assert response.headers["Location"] == "/"


def test_password_change_ends_other_sessions(ctx, app):
    make_user("sun")
    first, second = app.test_client(), app.test_client()
    login(first, "sun")
    login(second, "sun")
    token = csrf_token(first, "/account/password")
    response = first.post("/account/password", data={
        "csrf_token": token, "current": PASSWORD, "new": "a-brand-new-passphrase", "confirm": "a-brand-new-passphrase"})
    assert response.status_code == 302
    assert first.get("/account/password").status_code == 200  # the session that changed it stays in
    assert second.get("/account/password").status_code == 302  # the other one is logged out


def _copy_of_session(client) -> str:
    return client.get_cookie("session").value


def _with_cookie(app, value: str):
    """Another browser holding a copy of a session cookie."""
    other = app.test_client()
    other.set_cookie("session", value)
    return other


def test_a_cookie_copied_before_logout_is_refused_after_it(ctx, app):
    make_user("he")
    browser = app.test_client()
    login(browser, "he")
    copied = _copy_of_session(browser)
    assert _with_cookie(app, copied).get("/account/password").status_code == 200  # a copy works meanwhile
    assert browser.post("/logout", data={"csrf_token": csrf_token(browser, "/")}).status_code == 302
    refused = _with_cookie(app, copied).get("/account/password")
    assert refused.status_code == 302 and refused.headers["Location"].startswith("/login")


def test_logout_ends_the_users_sessions_on_other_devices_too(ctx, app):
    # The rule (docs/accounts-and-permissions.md): logging out ends every session of that account.
    make_user("lv")
    make_user("shi")
    phone, computer, colleague = app.test_client(), app.test_client(), app.test_client()
    login(phone, "lv")
    login(computer, "lv")
    login(colleague, "shi")
    computer.post("/logout", data={"csrf_token": csrf_token(computer, "/")})
    assert phone.get("/account/password").status_code == 302
    assert colleague.get("/account/password").status_code == 200  # another person's session is not touched
    assert login(phone, "lv").status_code == 302  # log in again: fine
    assert phone.get("/account/password").status_code == 200


def test_logout_is_audited(ctx, client):
    from server.audit.models import AuditEntry

    user = make_user("yan")
    login(client, "yan")
    client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    assert db.session.scalar(db.select(AuditEntry).filter_by(action="user.logout", object_id=str(user.id)))


def test_a_password_reset_by_an_administrator_ends_every_session(ctx, app):
    user = make_user("kong")
    make_user("boss", admin=True)
    browser, admin = app.test_client(), app.test_client()
    login(browser, "kong")
    copied = _copy_of_session(browser)
    login(admin, "boss")
    response = admin.post(f"/admin/users/{user.id}/reset-password",
                          data={"csrf_token": csrf_token(admin, "/admin/users")})
    assert response.status_code == 200
    assert browser.get("/account/password").status_code == 302
    assert _with_cookie(app, copied).get("/account/password").status_code == 302
    assert admin.get("/account/password").status_code == 200  # the administrator's own session goes on


def test_a_password_change_refuses_a_copy_of_the_old_cookie(ctx, app):
    make_user("cao")
    browser = app.test_client()
    login(browser, "cao")
    copied = _copy_of_session(browser)
    response = browser.post("/account/password", data={
        "csrf_token": csrf_token(browser, "/account/password"), "current": PASSWORD,
        "new": "a-brand-new-passphrase", "confirm": "a-brand-new-passphrase"})
    assert response.status_code == 302
    assert browser.get("/account/password").status_code == 200  # this browser was given the new token
    assert _with_cookie(app, copied).get("/account/password").status_code == 302


def test_blocking_ends_every_session(ctx, app):
    from server.auth.service import set_user_active

    user = make_user("xie")
    browser = app.test_client()
    login(browser, "xie")
    set_user_active(user, False)
    db.session.commit()
    assert browser.get("/account/password").status_code == 302


@pytest.fixture
def hashes_checked(monkeypatch):
    """Every password hash the login checks, as (stored or stand-in hash) — the real check still runs."""
    from server.auth import models

    seen: list[str] = []
    real = models.check_password_hash

    def spy(pwhash: str, password: str) -> bool:
        seen.append(pwhash)
        return real(pwhash, password)

    monkeypatch.setattr(models, "check_password_hash", spy)
    return seen


def test_an_unknown_user_is_checked_against_a_hash_like_a_real_one(ctx, client, hashes_checked):
    user = make_user("tao")
    hashes_checked.clear()
    unknown = login(client, "nobody-by-this-name", "not-the-password")
    assert len(hashes_checked) == 1
    stand_in = hashes_checked[0]
    # The same algorithm and parameters as a real account's: the same work, so the same time.
    assert stand_in != user.password_hash
    assert stand_in.split("$")[0] == user.password_hash.split("$")[0]
    wrong = login(client, "tao", "not-the-password")
    assert hashes_checked[1:] == [user.password_hash]
    assert unknown.status_code == wrong.status_code == 400

    def page(response) -> str:  # apart from the username typed and the CSRF token
        return re.sub(r'value="[^"]*"', "", response.get_data(as_text=True))

    assert page(unknown) == page(wrong) and "field-error" in page(wrong)


def test_a_blocked_user_is_refused_after_the_same_hash_check(ctx, client, hashes_checked):
    from server.auth.service import set_user_active

    user = make_user("fan")
    set_user_active(user, False)
    db.session.commit()
    hashes_checked.clear()
    assert login(client, "fan").status_code == 400
    assert hashes_checked == [user.password_hash]


def test_a_hash_with_older_parameters_is_renewed_at_login(ctx, client):
    from werkzeug.security import generate_password_hash

    user = make_user("peng")
    user.password_hash = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")
    db.session.commit()
    assert login(client, "peng").status_code == 302
    db.session.refresh(user)
    assert user.password_hash.split("$")[0] == generate_password_hash("x").split("$")[0]
    assert user.check_password(PASSWORD)


def test_password_is_hashed(ctx):
    user = make_user("zhou")
    assert PASSWORD not in user.password_hash and user.check_password(PASSWORD)


def test_session_cookie_flags(tmp_path):
    app = make_app(f"sqlite:///{tmp_path / 'c.sqlite'}", tmp_path, SESSION_COOKIE_SECURE=True)
    with app.app_context():
        make_user("wu")
    client = app.test_client()
    response = client.get("/login", base_url="https://localhost")
    cookie = response.headers.get("Set-Cookie", "")
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=Lax" in cookie
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def test_login_is_rate_limited(tmp_path):
    app = make_app(f"sqlite:///{tmp_path / 'r.sqlite'}", tmp_path, RATELIMIT_ENABLED=True,
                   FANGAN_LOGIN_LIMIT="3 per minute")
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    codes = [client.post("/login", data={"username": "x", "password": "y", "csrf_token": token}).status_code
             for _ in range(5)]
    assert codes[:3] == [400, 400, 400] and codes[3:] == [429, 429]
    with app.app_context():
        db.engine.dispose()


def test_password_inputs_are_password_fields(client):
    page = client.get("/login").get_data(as_text=True)
    assert 'type="password"' in page and 'type="None"' not in page


def test_environment_overrides_instance_config(tmp_path, monkeypatch):
    from server import create_app

    (tmp_path / "config.py").write_text("SECRET_KEY = 'from-config'\nFANGAN_THEME = 'from-config'\n")
    monkeypatch.setenv("SECRET_KEY", "from-env")
    monkeypatch.setenv("FANGAN_SECURE_COOKIES", "0")

    import flask

    monkeypatch.setattr(flask.Flask, "auto_find_instance_path", lambda self: str(tmp_path))
    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})
    assert app.config["SECRET_KEY"] == "from-env"
    assert app.config["FANGAN_THEME"] == "from-config"
    assert app.config["SESSION_COOKIE_SECURE"] is False


def test_behind_a_proxy_the_client_address_is_used(tmp_path):
    app = make_app(f"sqlite:///{tmp_path / 'p.sqlite'}", tmp_path, RATELIMIT_ENABLED=True,
                   FANGAN_LOGIN_LIMIT="2 per minute", FANGAN_PROXIES=1)
    assert app.wsgi_app.__class__.__name__ == "ProxyFix"
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)

    def attempt(address: str) -> int:
        return client.post("/login", data={"username": "x", "password": "y", "csrf_token": token},
                           headers={"X-Forwarded-For": address}).status_code

    assert [attempt("10.0.0.1") for _ in range(3)] == [400, 400, 429]
    assert attempt("10.0.0.2") == 400  # another phone behind the same proxy is not blocked
    with app.app_context():
        db.engine.dispose()
