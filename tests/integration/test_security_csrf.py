"""CSRF: every route that takes POST, PUT, PATCH or DELETE refuses a request without the session's CSRF token, or
with another session's, by someone who may otherwise do it (400, and not one row of any table changes); the same
request with the token goes through (and stores what it should), so the refusal is the token's alone.

The exemptions are the design's: the token API (`/api/v1`) and Open311 (`/open311/v2`) take no CSRF token because
no cookie authenticates them; there a logged-in browser's session is shown to count for nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from flask import Flask

from server.core.clock import utcnow
from server.extensions import db
from tests.support.factories import login
from tests.support.security import (
    POSTS,
    World,
    build_world,
    changed_tables,
    csrf_of,
    post_form,
    rolled_back,
    table_digest,
)

STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
EXEMPT = ("api.", "open311.")  # no cookie authenticates these (server/auth/access.py, token_authenticated)
# Sent by a visitor who is not logged in (the public pages); the rest by the system administrator, but for the
# login (a visitor who then logs in) and the logout (a session of its own).
ANONYMOUS = {"public.report", "public.lookup", "public.step", "public.followup"}
# With the token these answer without storing anything: a preview, a conversion, a redirect, the session's language.
STORE_NOTHING = {"editors.check", "editors.preview_form", "editors.dry_run", "editors.preview_board",
                 "admin.preview_form", "admin.import_xlsform", "public.lookup", "public.step", "web.set_language",
                 "account.logout", "account.login"}
# Lidu's workflow gives the public reporter one step of its own, the follow-up's reopen, which the step route refuses
# on a case not closed: there the token is shown to pass the CSRF check, and the step is refused for what it is.
REFUSED_ANYWAY = {"public.step"}
# Last: they end or change the session that sends them.
LAST = ("account.change_password", "account.logout")
# The page a refused token gets, in either language (the language switch is one of the routes posted).
CSRF_PAGE = ("请求无法识别。", "The request could not be understood.")


def _routes(app: Flask) -> dict[str, set[str]]:
    """endpoint → the state-changing methods its rules take."""
    out: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        if methods := rule.methods & STATE_CHANGING:
            out.setdefault(rule.endpoint, set()).update(methods)
    return out


def test_every_state_changing_route_has_a_valid_request_here(base_app: Flask):
    """A new POST route fails here until tests/support/security.py (POSTS) can send it, or it is token-only."""
    routes = _routes(base_app)
    assert not [e for e in routes if e not in POSTS and not e.startswith(EXEMPT)]
    assert not [e for e in POSTS if e not in routes]
    assert all(methods == {"POST"} for methods in routes.values()), routes  # no PUT/PATCH/DELETE yet


def _close_public_case(report_id: int) -> None:
    """The Zhiyuan report's case solved (as the office would after verifying it), so its reporter may answer."""
    from server.public.models import PublicReport

    case = db.session.get(PublicReport, report_id).case
    case.state, case.state_kind, case.outcome = "closed", "final", "resolved"
    case.closed_at = utcnow() - dt.timedelta(days=1)
    db.session.commit()


@pytest.fixture(scope="module")
def world(base_app: Flask) -> Iterator[World]:
    base_app.config["FANGAN_MIN_FILL_SECONDS"] = 0  # the public form is sent at once here
    try:
        with rolled_back(base_app):
            world = build_world(base_app, other=False)
            with base_app.app_context():
                _close_public_case(world.ids["report_z"])
            yield world
    finally:
        base_app.config.pop("FANGAN_MIN_FILL_SECONDS", None)


def _refused_for_csrf(response) -> bool:  # noqa: ANN001
    return response.status_code == 400 and any(words in response.get_data(as_text=True) for words in CSRF_PAGE)


def test_no_token_or_another_sessions_token_is_refused_and_changes_nothing(world: World, base_app: Flask):
    admin, visitor, arriving, leaving = world.clients["admin"], world.clients["anon"], *(
        base_app.test_client() for _ in range(2))
    assert login(leaving, "admin").status_code == 302
    tokens = {id(admin): csrf_of(admin, "/account/password"), id(visitor): csrf_of(visitor, "/login"),
              id(arriving): csrf_of(arriving, "/login"), id(leaving): csrf_of(leaving, "/account/password")}
    head = world.clients["head"]  # appeals are the assessed unit's own people's, not the administrator's
    tokens[id(head)] = csrf_of(head, "/account/password")
    foreign = csrf_of(world.clients["office"], "/account/password")  # valid, but another session's
    order = sorted(POSTS, key=lambda e: (e in LAST, LAST.index(e) if e in LAST else 0, e))
    failures = []
    for endpoint in order:
        client = {"account.login": arriving, "account.logout": leaving, "assessment.appeal": head}.get(endpoint) or (
            visitor if endpoint in ANONYMOUS else admin)
        url = world.url(POSTS[endpoint][0])
        with base_app.app_context():
            before = table_digest()
        for label, token in (("no token", None), ("another session's token", foreign)):
            response = client.post(url, data=post_form(base_app, world, endpoint, token),
                                   content_type="multipart/form-data")
            if not _refused_for_csrf(response):  # (a form's own token check alone is not enough: a view may read
                # request.form without a form)
                failures.append(f"{endpoint}: POST {url} with {label}: {response.status_code}, not the CSRF refusal")
            with base_app.app_context():
                after = table_digest()
            if after != before:
                failures.append(f"{endpoint}: POST {url} with {label} changed {changed_tables(before, after)}")
                before = after
        # The same request with the session's own token is accepted: what stopped it above was the token.
        response = client.post(url, data=post_form(base_app, world, endpoint, tokens[id(client)]),
                               content_type="multipart/form-data")
        if endpoint in REFUSED_ANYWAY:
            if _refused_for_csrf(response) or response.status_code not in (303, 403, 409):
                failures.append(f"{endpoint}: POST {url} with the token: {response.status_code}")
        elif response.status_code >= 400:
            failures.append(f"{endpoint}: POST {url} with the token: {response.status_code}, the form is not valid")
        with base_app.app_context():
            stored = table_digest() != before
        if endpoint not in STORE_NOTHING and not stored:
            failures.append(f"{endpoint}: POST {url} with the token stored nothing")
    assert not failures, "\n".join(failures)


def test_head_is_answered_as_a_get_never_as_a_post(world: World, base_app: Flask):
    """Werkzeug answers HEAD wherever GET is allowed, and no CSRF check guards HEAD: a page that also takes
    POST must answer it as the GET it stands for, storing nothing."""
    methods = {rule.endpoint: rule.methods for rule in base_app.url_map.iter_rules()}
    failures = []
    for endpoint in sorted(e for e in POSTS if "GET" in methods[e] and e not in LAST):
        client = world.clients["anon"] if endpoint in ANONYMOUS else world.clients["admin"]
        url = world.url(POSTS[endpoint][0])
        got = client.get(url).status_code
        with base_app.app_context():
            before = table_digest()
        head = client.open(url, method="HEAD").status_code
        with base_app.app_context():
            after = table_digest()
        if head != got:
            failures.append(f"{endpoint}: HEAD {url} answered {head}, GET {got}")
        if after != before:
            failures.append(f"{endpoint}: HEAD {url} changed {changed_tables(before, after)}")
    assert not failures, "\n".join(failures)


def test_a_logged_in_session_is_nobody_on_the_token_api(world: World, base_app: Flask):
    """No CSRF token is asked there because the session cookie does not authenticate: it gets 401, unchanged."""
    admin = world.clients["admin"]
    posts = sorted((rule.rule, rule.endpoint) for rule in base_app.url_map.iter_rules()
                   if rule.endpoint.startswith("api.") and rule.methods & STATE_CHANGING)
    assert posts  # the API takes reports and transitions
    with base_app.app_context():
        before = table_digest()
    for path, endpoint in posts:
        url = world.url(path.replace("<scheme_key>", "{lidu}").replace("<int:case_id>", "{case_s}")
                        .replace("<transition_id>", "assign").replace("<form_key>", "problem_report"))
        response = admin.post(url, json={"values": {"category": "piled_rubbish"}})
        assert response.status_code == 401, (endpoint, url, response.status_code)
        assert response.get_json()["error"]["code"] == "unauthorized"
    with base_app.app_context():
        assert table_digest() == before


def test_open311_takes_a_logged_in_sessions_post_as_an_anonymous_one(world: World, base_app: Flask):
    """Open311 needs no CSRF token: a report posted from a logged-in browser is anyone's, never the user's."""
    from server.public.models import PublicReport

    response = world.clients["admin"].post("/open311/v2/requests.json", data={
        "jurisdiction_id": "lidu", "service_code": "street_stalls", "address_id": "zhiyuan_road",
        "description": "占道经营"}, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200, response.data
    with base_app.app_context():
        report = db.session.get(PublicReport, int(response.get_json()[0]["service_request_id"]))
        assert report.channel == "open311" and report.case.reporter_id is None
        assert report.case.submission.user_id is None
