"""Cascading selects over a form's own choices (街道 → 社区), on the page and inside repeat rows; texts in
other languages; a page that shows an odd stored default empty instead of failing."""

from __future__ import annotations

import re

import pytest

from server.definitions.loader import content_hash
from server.extensions import db
from server.forms import service
from server.forms.models import Submission
from tests.support.factories import activate_demo_with_form, login, make_user

URL = "/f/lidu/visits/new"
STREETS = "[{value: s1, label: 东街街道}, {value: s2, label: 西街街道}]"
COMMUNITIES = """
      - {value: c1, label: 东一社区, data: {street: s1}}
      - {value: c2, label: {zh: 西一社区, fr: Communauté ouest}, data: {street: s2}}
      - {value: c3, label: 东二社区, data: {street: s1}}"""
FORM = f"""\
kind: form
id: visits
name: {{zh: 社区走访, fr: Visites}}
fields:
  - {{id: street, type: single_choice, label: 街道, choices: {STREETS}}}
  - id: community
    type: single_choice
    label: {{fr: Communauté}}
    choices:{COMMUNITIES}
    choice_filter: choice.street == street
  - {{id: at, type: time, label: 时间, default: "09:30"}}
  - id: rows
    type: repeat
    label: 走访记录
    fields:
      - {{id: row_street, type: single_choice, label: 街道, choices: {STREETS}}}
      - id: row_community
        type: single_choice
        label: 社区
        choices:{COMMUNITIES.replace("      -", "          -")}
        choice_filter: choice.street == row_street
"""


@pytest.fixture
def filler(ctx, client):
    activate_demo_with_form("visits", FORM)
    make_user("chief", roles=(("lidu", "unit_head", "shilong"),))
    login(client, "chief")
    return client


def _page(client) -> str:
    response = client.get(URL)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def _post(client, page: str, **fields: str):
    token = re.search(r'name="_token" value="([^"]*)"', page).group(1)
    csrf = re.search(r'name="csrf_token" value="([^"]*)"', page).group(1)
    return client.post(URL, data={"csrf_token": csrf, "_token": token, "_action": "submit", **fields})


def _offered(html: str, name: str) -> list[str]:
    """The values of the radio buttons offered for a field (few choices read as radio buttons)."""
    tags = [t for t in re.findall(r"<input[^>]*>", html) if f'name="{name}"' in t and 'type="radio"' in t]
    return [re.search(r'value="([^"]*)"', t).group(1) for t in tags]


def test_the_community_list_follows_the_street(filler):
    page = _page(filler)
    assert _offered(page, "community") == []  # no street chosen: no community yet
    assert 'hx-post="/f/lidu/visits/new"' in page.split('name="street"', 1)[1][:200]  # asks again on change
    assert "Communauté" in page  # a label in French only shows, rather than nothing

    refreshed = _post(filler, page, street="s1", _action="refresh")
    assert refreshed.status_code == 200
    assert _offered(refreshed.get_data(as_text=True), "community") == ["c1", "c3"]
    htmx = filler.post(URL, data={**dict(re.findall(r'name="(csrf_token|_token)" value="([^"]*)"', page)),
                                  "street": "s2", "_action": "refresh"}, headers={"HX-Request": "true"})
    assert _offered(htmx.get_data(as_text=True), "community") == ["c2"]


def test_inside_repeat_rows_each_row_filters_by_its_own_street(filler):
    page = _page(filler)
    response = _post(filler, page, _action="add:rows", **{"rows-0-row_street": "s2"})
    html = response.get_data(as_text=True)
    assert _offered(html, "rows-0-row_community") == ["c2"]
    assert _offered(html, "rows-1-row_community") == []
    row_street = [t for t in re.findall(r"<input[^>]*>", html) if 'name="rows-1-row_street"' in t]
    assert row_street and all('hx-post="/f/lidu/visits/new"' in t for t in row_street)  # a row's street asks again
    response = _post(filler, page, _action="refresh", **{"rows-0-row_street": "s2", "rows-1-row_street": "s1"})
    html = response.get_data(as_text=True)
    assert _offered(html, "rows-0-row_community") == ["c2"]
    assert _offered(html, "rows-1-row_community") == ["c1", "c3"]


def test_a_community_of_another_street_is_refused(filler):
    page = _page(filler)
    refused = _post(filler, page, street="s1", community="c2", at="09:30",
                    **{"rows-0-row_street": "s2", "rows-0-row_community": "c2"})
    assert refused.status_code == 400
    assert '<a href="#f-community">Communauté</a>: 不是有效的选项。' in refused.get_data(as_text=True)
    assert db.session.scalar(db.select(db.func.count(Submission.id))) == 0
    refused = _post(filler, page, street="s1", community="c1", at="09:30",
                    **{"rows-0-row_street": "s2", "rows-0-row_community": "c1"})
    assert refused.status_code == 400
    summary = refused.get_data(as_text=True).split('id="error-summary"', 1)[1].split("</ul>", 1)[0]
    assert 'href="#f-rows.0.row_community"' in summary and "#f-community" not in summary
    stored = _post(filler, page, street="s1", community="c3", at="09:30",
                   **{"rows-0-row_street": "s2", "rows-0-row_community": "c2"})
    assert stored.status_code == 303
    record = db.session.scalar(db.select(Submission))
    assert record.data["community"] == "c3" and record.data["rows"] == [{"row_street": "s2",
                                                                          "row_community": "c2"}]


def test_an_odd_stored_time_default_shows_empty_instead_of_failing(filler):
    """A definition stored before defaults were checked may hold a time no input can show."""
    row = service.form_version("lidu", "visits")
    data = {**row.data, "fields": [{**f, "default": "half past nine"} if f["id"] == "at" else f
                                   for f in row.data["fields"]]}
    row.data, row.content_hash = data, content_hash(data)
    db.session.commit()
    page = _page(filler)
    field = re.search(r'<input[^>]*name="at"[^>]*>', page).group(0)
    assert 'value="' not in field or 'value=""' in field


def test_the_districts_api_document_types_the_filtered_field_and_keeps_its_french_label(filler):
    doc = filler.get("/api/v1/schemes/lidu/openapi.json").get_json()
    values = doc["components"]["schemas"]["VisitsValues"]["properties"]
    assert values["community"]["enum"] == ["c1", "c2", "c3"]
    assert values["community"]["description"] == (
        "Communauté — (only the choices its filter keeps for the other answers are allowed)")
    assert values["rows"]["items"]["properties"]["row_community"]["enum"] == ["c1", "c2", "c3"]
    assert values["at"] == {"type": "string", "pattern": "^[0-9]{2}:[0-9]{2}$", "description": "时间"}
