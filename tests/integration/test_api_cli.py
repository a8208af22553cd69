"""`fangan api`: a client's token shown once and working, listed, revoked; mistakes said in one line."""

from __future__ import annotations

import re

from tests.integration.test_cli import fresh  # noqa: F401 - the fixture


def test_create_list_and_revoke_a_client(fresh):  # noqa: F811
    app, run = fresh
    assert run("user", "create", "szcg-bot").exit_code == 0
    created = run("api", "create-client", "szcg", "--user", "szcg-bot")
    assert created.exit_code == 0, created.output
    token = re.search(r"Token \(shown once\): (fg_\S+)", created.output).group(1)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/schemes/lidu/cases", headers=headers).status_code == 404  # in, and no such district

    listed = run("api", "list-clients").output
    assert "szcg\tszcg-bot" in listed and "last used" in listed and "active" in listed
    assert token not in listed  # shown once, never again

    assert run("api", "revoke-client", "szcg").exit_code == 0
    assert client.get("/api/v1/schemes/lidu/cases", headers=headers).status_code == 401
    assert "revoked" in run("api", "list-clients").output


def test_mistakes_are_one_line(fresh):  # noqa: F811
    _app, run = fresh
    unknown = run("api", "create-client", "szcg", "--user", "nobody")
    assert unknown.exit_code == 1 and "nobody" in unknown.output and "Traceback" not in unknown.output
    run("user", "create", "bot")
    assert run("api", "create-client", "szcg", "--user", "bot").exit_code == 0
    again = run("api", "create-client", "szcg", "--user", "bot")
    assert again.exit_code == 1 and "szcg" in again.output
    assert run("api", "revoke-client", "ghost").exit_code == 1
