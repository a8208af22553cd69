"""Every registered route is either listed as public or refuses an anonymous user (pages send them to the login,
the JSON API answers 401)."""

from __future__ import annotations

import re

import pytest

from server import create_app
from server.auth.access import is_public_endpoint
from tests.conftest import csrf_token

# Adding a public route means adding it here, on purpose.
PUBLIC_ENDPOINTS = {"static", "theme_static", "account.login", "home.index", "web.set_language", "web.healthz",
                    "web.readyz", "web.metrics", "web.service_worker", "forms.places",
                    "boards.board", "boards.board_pdf", "assessment.public_flags", "assessment.public_scores",
                    "public.report", "public.lookup", "public.track", "public.followup", "public.step", "public.photo",
                    "public.view_report",
                    "public.exposed", "public.praised", "public.place_at", "public.public_map",
                    "public.public_map_points",
                    "open311.discovery", "open311.services", "open311.service_definition", "open311.create_request",
                    "open311.list_requests", "open311.get_request", "open311.token", "api.document",
                    "api.district_document"}


def _sample_url(rule) -> str:
    url = rule.rule
    for arg in rule.arguments:
        from werkzeug.routing import IntegerConverter

        numeric = isinstance(rule._converters[arg], IntegerConverter)
        value = "1" if numeric else "lidu" if arg.endswith("key") else "x"
        url = re.sub(rf"<(?:[^:<>]+:)?{arg}>", value, url)
    return url


def _rules():
    app = create_app({"TESTING": True, "SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    return app, sorted(app.url_map.iter_rules(), key=lambda r: r.rule)


def test_public_endpoints_are_exactly_the_listed_ones():
    app, rules = _rules()
    public = {r.endpoint for r in rules if is_public_endpoint(app, r.endpoint)}
    assert public == PUBLIC_ENDPOINTS


@pytest.mark.parametrize("rule", _rules()[1], ids=lambda r: f"{r.endpoint}:{r.rule}")
def test_anonymous_is_refused_everywhere_but_public(app, rule):
    client = app.test_client()
    url = _sample_url(rule)
    for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
        response = client.open(url, method=method)
        response.close()  # file responses stream: close them
        if rule.endpoint in PUBLIC_ENDPOINTS:
            assert response.status_code != 302 or "/login" not in response.headers.get("Location", "")
        elif rule.endpoint.startswith("api."):  # a token, not a login: no CSRF token would help either
            assert response.status_code == 401
            assert response.get_json()["error"]["code"] == "unauthorized"
        elif method == "GET":
            assert response.status_code == 302
            assert response.headers["Location"].startswith("/login?next=")
        else:
            # With a valid CSRF token, only the missing login stops the request.
            token = csrf_token(client, "/login")
            response = client.open(url, method=method, data={"csrf_token": token})
            assert response.status_code == 302
            assert response.headers["Location"].startswith("/login?next=")
