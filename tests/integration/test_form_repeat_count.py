"""A repeat group counted by a field (`repeat_count`) and a format checked with `matches()`, over HTTP: the page
shows as many rows as the count says and keeps what was typed in them; the page and the JSON API store exactly
that many rows; a phone number in the wrong format is refused."""

from __future__ import annotations

import re

import pytest

from server.api import service as api
from server.extensions import db
from server.forms.models import Submission
from tests.support.factories import activate_demo_with_form, login, make_user

URL = "/f/lidu/household/new"
HOUSEHOLD = """\
kind: form
id: household
name: {zh: 入户登记, en: Household}
fields:
  - id: phone
    type: text
    label: 联系电话
    constraints: [{check: "matches(value, '^1[3-9][0-9]{9}$')", message: 手机号格式不对}]
  - {id: members, type: integer, label: 家庭人数, min: 0, max: 20}
  - id: people
    type: repeat
    label: 家庭成员
    repeat_count: members
    fields:
      - {id: person_name, type: text, label: 姓名, required: true}
      - {id: relation, type: text, label: 关系, default: 家人}
"""


@pytest.fixture
def chief(ctx, client):
    activate_demo_with_form("household", HOUSEHOLD)
    make_user("chief", roles=(("lidu", "unit_head", "shilong"),))
    login(client, "chief")
    return client


def _value(page: str, name: str) -> str | None:
    tag = re.search(rf'<input[^>]*name="{name}"[^>]*>', page)
    if tag is None:
        return None
    found = re.search(r'value="([^"]*)"', tag.group(0))
    return found.group(1) if found else ""


def _rows(page: str) -> list[tuple[str, str]]:
    """(name, relation) of each row the page shows, in order."""
    names = re.findall(r'name="people-(\d+)-person_name"', page)
    assert names == [str(i) for i in range(len(names))]
    return [(_value(page, f"people-{i}-person_name"), _value(page, f"people-{i}-relation")) for i in range(len(names))]


def _start(client) -> tuple[str, dict]:  # noqa: ANN001
    page = client.get(URL).get_data(as_text=True)
    return page, {"csrf_token": _value(page, "csrf_token"), "_token": _value(page, "_token"), "phone": "13812345678"}


def _refresh(client, data: dict) -> str:  # noqa: ANN001
    response = client.post(URL, data={**data, "_action": "refresh"},
                           headers={"HX-Request": "true", "HX-Trigger-Name": "members"})
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_the_count_sets_the_rows_and_keeps_what_was_typed(chief):
    page, data = _start(chief)
    assert _rows(page) == []  # no count yet: no rows
    assert "hx-post" in re.search(r'<input[^>]*name="members"[^>]*>', page).group(0)  # changing it asks again
    assert 'value="add:people"' not in page

    body = _refresh(chief, {**data, "members": "3"})
    assert _rows(body) == [("", "家人")] * 3
    assert 'value="add:people"' not in body and 'value="remove:people' not in body

    typed = {"people-0-person_name": "张三", "people-0-relation": "户主", "people-1-person_name": "李四",
             "people-1-relation": "家人", "people-2-person_name": "王五", "people-2-relation": "家人"}
    body = _refresh(chief, {**data, **typed, "members": "2"})
    assert _rows(body) == [("张三", "户主"), ("李四", "家人")]
    body = _refresh(chief, {**data, **{k: v for k, v in typed.items() if "-2-" not in k}, "members": "4"})
    assert _rows(body) == [("张三", "户主"), ("李四", "家人"), ("", "家人"), ("", "家人")]


def test_a_submission_with_fewer_rows_is_padded_and_refused(chief):
    _page, data = _start(chief)
    response = chief.post(URL, data={**data, "members": "3", "people-0-person_name": "张三", "_action": "submit"})
    assert response.status_code == 400  # shown again with its errors, not stored
    body = response.get_data(as_text=True)
    assert _rows(body) == [("张三", ""), ("", "家人"), ("", "家人")]  # the row sent as sent, new ones with defaults
    assert 'href="#f-people.1.person_name"' in body and 'href="#f-people.2.person_name"' in body
    assert db.session.scalar(db.select(db.func.count(Submission.id))) == 0


def test_extra_rows_are_not_stored(chief):
    _page, data = _start(chief)
    rows = {f"people-{i}-person_name": name for i, name in enumerate(["张三", "李四", "王五"])}
    response = chief.post(URL, data={**data, "members": "2", **rows, "_action": "submit"})
    assert response.status_code == 303, response.get_data(as_text=True)
    record = db.session.scalars(db.select(Submission).filter_by(form_key="household")).one()
    assert record.data["members"] == 2
    assert record.data["people"] == [{"person_name": "张三"}, {"person_name": "李四"}]  # relation left empty


def test_a_phone_number_in_the_wrong_format_is_refused(chief):
    _page, data = _start(chief)
    for wrong in ("1381234567", "23812345678", "138123456789", "138-1234-5678"):
        response = chief.post(URL, data={**data, "phone": wrong, "members": "0", "_action": "submit"})
        assert response.status_code == 400
        assert "手机号格式不对" in response.get_data(as_text=True)
    assert db.session.scalar(db.select(db.func.count(Submission.id))) == 0
    response = chief.post(URL, data={**data, "members": "0", "_action": "submit"})
    assert response.status_code == 303, response.get_data(as_text=True)
    record = db.session.scalars(db.select(Submission).filter_by(form_key="household")).one()
    assert record.data["phone"] == "13812345678" and record.data["people"] == []


def test_the_json_api_fits_the_rows_too(chief, client):
    make_user("office", roles=(("lidu", "unit_head", "shilong"),))
    _client, token = api.create_client("office-system", "office")
    db.session.commit()
    url, headers = "/api/v1/schemes/lidu/forms/household/submissions", {"Authorization": f"Bearer {token}"}
    response = client.post(url, json={"values": {"phone": "13812345678", "members": 2,
                                                  "people": [{"person_name": "张三"}]}}, headers=headers)
    assert response.status_code == 422, response.get_json()
    assert set(response.get_json()["error"]["fields"]) == {"people.1.person_name"}
    response = client.post(url, json={"values": {"phone": "13812345678", "members": 1, "people": [
        {"person_name": "张三"}, {"person_name": "李四"}]}}, headers=headers)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["data"]["people"] == [{"person_name": "张三"}]
    response = client.post(url, json={"values": {"phone": "1381234567", "members": 0}}, headers=headers)
    assert response.status_code == 422 and set(response.get_json()["error"]["fields"]) == {"phone"}
