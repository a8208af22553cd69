"""`calculate_on` over HTTP: the page's refresh names the input that changed (htmx's HX-Trigger-Name), the
calculation runs then and only then, and a submission keeps what was computed or typed."""

from __future__ import annotations

import base64
import datetime as dt
import re

import pytest
import time_machine

from server.core.clock import utcnow
from server.extensions import db
from server.forms.models import Submission
from tests.support.clock import ZONE
from tests.support.factories import activate_demo_with_form, login, make_user

URL = "/f/lidu/sighting/new"
SIGHTING = """\
kind: form
id: sighting
name: {zh: 发现登记, en: Sighting}
fields:
  - {id: problem, type: text, label: 问题}
  - {id: seen_at, type: datetime, label: 发现时间, calculate: now, calculate_on: [problem], readonly: true}
  - id: shop
    type: single_choice
    label: 店铺
    choices: [{value: a, label: 甲店}, {value: b, label: 乙店}]
  - {id: contact, type: text, label: 联系人, calculate: "str(shop) + ' 负责人'", calculate_on: [shop]}
  - id: rows
    type: repeat
    label: 明细
    fields:
      - {id: qty, type: integer, label: 数量}
      - {id: note, type: text, label: 备注, calculate: "str(qty) + ' 件'", calculate_on: [qty]}
"""


def _moments() -> tuple[dt.datetime, dt.datetime]:
    """When the problem is typed and when the form is sent: after the login's cookie was signed (a session
    signed "in the future" is refused), on the suite's clock."""
    seen = (utcnow() + dt.timedelta(minutes=5)).replace(second=0, microsecond=0)
    return seen, seen + dt.timedelta(minutes=35)


def _local(moment: dt.datetime) -> str:
    return moment.astimezone(ZONE).strftime("%Y-%m-%dT%H:%M")


@pytest.fixture
def chief(ctx, client):
    activate_demo_with_form("sighting", SIGHTING)
    make_user("chief", roles=(("lidu", "unit_head", "shilong"),))
    login(client, "chief")
    return client


def _input(page: str, name: str) -> str:
    """The <input> tag named `name`."""
    return re.search(rf'<input[^>]*name="{name}"[^>]*>', page).group(0)


def _value(page: str, name: str) -> str:
    found = re.search(r'value="([^"]*)"', _input(page, name))
    return found.group(1) if found else ""


def _refresh(client, data: dict, changed: str) -> str:  # noqa: ANN001
    response = client.post(URL, data={**data, "_action": "refresh"},
                           headers={"HX-Request": "true", "HX-Trigger-Name": changed})
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_the_page_calculates_on_the_named_change_and_the_submission_keeps_it(chief):
    seen, sent = _moments()
    page = chief.get(URL).get_data(as_text=True)
    assert "readonly" in _input(page, "seen_at") and "readonly" not in _input(page, "contact")
    assert "hx-post" in _input(page, "problem") and "hx-post" in _input(page, "rows-0-qty")
    assert 'name="_sealed"' not in page  # nothing computed yet
    data = {"csrf_token": _value(page, "csrf_token"), "_token": _value(page, "_token"), "problem": "",
            "seen_at": "", "shop": "", "contact": "", "rows-0-qty": "", "rows-0-note": ""}

    with time_machine.travel(seen, tick=False) as clock:
        body = _refresh(chief, {**data, "problem": "井盖缺失"}, "problem")
        assert _value(body, "seen_at") == _local(seen)
        _then_the_shop_and_the_submission(chief, data, body, clock, seen, sent)


def _then_the_shop_and_the_submission(chief, data, body, clock, seen, sent) -> None:  # noqa: ANN001
    data.update(problem="井盖缺失", seen_at=_value(body, "seen_at"), _sealed=_value(body, "_sealed"))

    body = _refresh(chief, {**data, "shop": "a"}, "shop")
    assert _value(body, "contact") == "a 负责人"
    assert _value(body, "seen_at") == _local(seen)  # `problem` did not change: kept
    # the person corrects the suggestion; a change elsewhere leaves it as typed
    body = _refresh(chief, {**data, "shop": "a", "contact": "王经理", "rows-0-qty": "3"}, "rows-0-qty")
    assert _value(body, "contact") == "王经理" and _value(body, "rows-0-note") == "3 件"
    # the shop changes: the suggestion follows it over what was typed (the header names what changed)
    body = _refresh(chief, {**data, "shop": "b", "contact": "王经理", "rows-0-qty": "3"}, "shop")
    assert _value(body, "contact") == "b 负责人" and _value(body, "seen_at") == _local(seen)
    data.update(shop="b", contact="王经理", _sealed=_value(body, "_sealed"))  # and is corrected again

    # The submission, later: a forged time is not taken, the sealed one is; an emptied row note is filled.
    clock.move_to(sent)
    response = chief.post(URL, data={**data, "seen_at": "2000-01-01T00:00", "rows-0-qty": "4", "_action": "submit"})
    assert response.status_code == 303, response.get_data(as_text=True)
    record = db.session.scalars(db.select(Submission).filter_by(form_key="sighting")).one()
    assert record.data["seen_at"] == _local(seen)
    assert record.data["contact"] == "王经理"
    assert record.data["rows"] == [{"qty": 4, "note": "4 件"}]


def test_without_the_seal_a_read_only_value_is_computed_by_the_server(chief):
    _seen, sent = _moments()
    page = chief.get(URL).get_data(as_text=True)
    data = {"csrf_token": _value(page, "csrf_token"), "_token": _value(page, "_token"), "problem": "井盖缺失",
            "seen_at": "2000-01-01T00:00", "_sealed": "forged", "shop": "b", "contact": "", "_action": "submit"}
    with time_machine.travel(sent, tick=False):
        response = chief.post(URL, data=data)
    assert response.status_code == 303, response.get_data(as_text=True)
    record = db.session.scalars(db.select(Submission).filter_by(form_key="sighting")).one()
    assert record.data["seen_at"] == _local(sent)  # not what was sent
    assert record.data["contact"] == "b 负责人"  # left empty: filled


def test_a_seal_opens_only_for_its_render_and_never_shows_the_token(chief):
    seen, sent = _moments()
    page = chief.get(URL).get_data(as_text=True)
    token = _value(page, "_token")
    data = {"csrf_token": _value(page, "csrf_token"), "_token": token, "problem": "", "seen_at": "", "shop": "b",
            "contact": ""}
    with time_machine.travel(seen, tick=False) as clock:
        body = _refresh(chief, {**data, "problem": "井盖缺失"}, "problem")
        seal = _value(body, "_sealed")
        payload = base64.urlsafe_b64decode(seal.split(".")[0] + "==").decode()
        assert token not in payload and "seen_at" in payload  # the value, not the render's token
        # Taken to another render (another token): it does not open, the time is the server's at sending.
        other = chief.get(URL).get_data(as_text=True)
        clock.move_to(sent)
        response = chief.post(URL, data={**data, "csrf_token": _value(other, "csrf_token"),
                                         "_token": _value(other, "_token"), "problem": "井盖缺失",
                                         "seen_at": _local(seen), "_sealed": seal, "_action": "submit"})
    assert response.status_code == 303, response.get_data(as_text=True)
    record = db.session.scalars(db.select(Submission).filter_by(form_key="sighting")).one()
    assert record.data["seen_at"] == _local(sent)


def test_the_json_api_fills_what_was_left_empty_and_never_takes_a_read_only_value(chief, client):
    from server.api import service as api

    make_user("system", roles=(("lidu", "unit_head", "shilong"),))
    _client, token = api.create_client("system-client", "system")
    db.session.commit()
    _seen, sent = _moments()
    body = {"values": {"problem": "井盖缺失", "seen_at": "2000-01-01T00:00", "shop": "a", "contact": "王经理",
                       "rows": [{"qty": 2}, {"qty": 5, "note": "五件"}]}}
    with time_machine.travel(sent, tick=False):
        response = client.post("/api/v1/schemes/lidu/forms/sighting/submissions", json=body,
                               headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 201, response.get_json()
    data = response.get_json()["data"]
    assert data["seen_at"] == _local(sent) and data["contact"] == "王经理"
    assert data["rows"] == [{"qty": 2, "note": "2 件"}, {"qty": 5, "note": "五件"}]

    document = client.get("/api/v1/schemes/lidu/openapi.json").get_json()
    schema = document["components"]["schemas"]["SightingValues"]
    assert "seen_at" not in schema["properties"]  # read-only: the server's
    assert "contact" in schema["properties"] and "readOnly" not in schema["properties"]["contact"]
