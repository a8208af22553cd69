"""Login, logout, passwords, CSRF and cookie flags."""

from __future__ import annotations

import re

from server.extensions import db
from tests.conftest import csrf_token, make_app
from tests.support.factories import PASSWORD, login, make_user


def test_login_and_logout(ctx, client):
    make_user("zhang")
    response = login(client, "zhang")
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert client.get("/").status_code == 200
    token = csrf_token(client, "/")
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/").status_code == 302


def test_wrong_password_rerenders_with_username_kept(ctx, client):
    make_user("li")
    response = login(client, "li", "not-the-password")
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert 'value="li"' in page
    assert "field-error" in page
    assert client.get("/").status_code == 302


def test_login_without_csrf_token_is_refused(ctx, client):
    make_user("wang")
    response = client.post("/login", data={"username": "wang", "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/").status_code == 302


def test_logout_needs_csrf_too(ctx, client):
    make_user("zhao")
    login(client, "zhao")
    assert client.post("/logout").status_code == 400
    assert client.get("/").status_code == 200


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
    assert first.get("/").status_code == 200  # the session that changed it stays in
    assert second.get("/").status_code == 302  # the other one is logged out


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
