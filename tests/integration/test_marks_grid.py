"""An assessor's marks for every unit at once: a row per unit, a column per number, one reason per row; all rows
saved together or none; what a row's marks take worked out by the scoring engine as it is typed."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from server.assessment import service
from server.assessment.models import AssessmentEntry
from server.extensions import db
from tests.support.factories import load_demo, login, make_user, unit_id


@pytest.fixture
def period(ctx):
    from tests.support.clock import TODAY

    load_demo()
    office = make_user("office", roles=(("lidu", "office_admin", None),))
    make_user("assessor", roles=(("lidu", "assessor", None),))
    make_user("leader", roles=(("lidu", "leader", None),))
    row = service.open_period(office, "lidu", "lidu_monthly", TODAY.replace(day=1))
    db.session.commit()
    return row


def _page(client, period) -> tuple[str, str]:  # noqa: ANN001
    page = client.get(f"/assess/period/{period.id}/marks").get_data(as_text=True)
    return page, re.search(r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"',
                           page).group(0).split('value="')[1].rstrip('"')


def test_the_grid_saves_every_row_with_its_reason(period, app):
    client = app.test_client()
    login(client, "assessor")
    page, csrf = _page(client, period)
    shilong, zhiyuan = unit_id("lidu", "shilong"), unit_id("lidu", "zhiyuan")
    assert f'name="m-{shilong}-hotspots-below_quality"' in page and f'name="reason-{zhiyuan}"' in page
    sent = client.post(f"/assess/period/{period.id}/marks", data={
        "csrf_token": csrf, f"m-{shilong}-hotspots-below_quality": "2", f"reason-{shilong}": "两处资料不全",
        f"m-{zhiyuan}-hotspots-below_quality": "0", f"reason-{zhiyuan}": ""})
    assert sent.status_code == 303
    entries = {e.unit_id: e for e in db.session.scalars(db.select(AssessmentEntry).filter_by(period_id=period.id))}
    assert entries[shilong].values == {"below_quality": 2.0} and entries[shilong].reason == "两处资料不全"
    assert entries[zhiyuan].values == {"below_quality": 0.0}  # a nought needs no reason
    again, _csrf = _page(client, period)
    assert f'name="m-{shilong}-hotspots-below_quality"' in again and 'value="2"' in again  # shown as typed


def test_one_bad_row_saves_nothing_and_keeps_what_was_typed(period, app):
    client = app.test_client()
    login(client, "assessor")
    _page_text, csrf = _page(client, period)
    shilong, zhiyuan = unit_id("lidu", "shilong"), unit_id("lidu", "zhiyuan")
    sent = client.post(f"/assess/period/{period.id}/marks", data={
        "csrf_token": csrf, f"m-{shilong}-hotspots-below_quality": "1", f"reason-{shilong}": "资料不全",
        f"m-{zhiyuan}-hotspots-below_quality": "3", f"reason-{zhiyuan}": ""})  # a deduction without a reason
    page = sent.get_data(as_text=True)
    assert sent.status_code == 400 and "未保存任何内容" in page and f'href="#row-{zhiyuan}"' in page
    assert 'value="3"' in page and "资料不全" in page  # everything typed is still there
    assert db.session.scalar(db.select(db.func.count()).select_from(AssessmentEntry)) == 0


def test_the_row_total_is_the_engines(period, app):
    client = app.test_client()
    login(client, "assessor")
    shilong = unit_id("lidu", "shilong")
    sheet = service.sheet_spec_of(period)
    item = next(i for _s, i in sheet.items() if i.id == "hotspots")
    rule = next(r for r in item.rules if r.id == "below_quality")
    cell = client.get(f"/assess/period/{period.id}/marks/{shilong}/total?m-{shilong}-hotspots-below_quality=2")
    expected = min(rule.points * 2, rule.cap or Decimal("1e9"), item.deduction_cap)
    assert cell.status_code == 200 and f"−{expected}" in cell.get_data(as_text=True)
    many = client.get(f"/assess/period/{period.id}/marks/{shilong}/total?m-{shilong}-hotspots-below_quality=999")
    assert f"−{item.deduction_cap}" in many.get_data(as_text=True)  # never more than the item's cap
    junk = client.get(f"/assess/period/{period.id}/marks/{shilong}/total?m-{shilong}-hotspots-below_quality=abc")
    assert junk.status_code == 200 and ">0<" in junk.get_data(as_text=True)


def test_who_may_use_the_grid(period, app):
    leader = app.test_client()
    login(leader, "leader")
    assert leader.get(f"/assess/period/{period.id}/marks").status_code == 403  # reads scores, marks nothing
    office = app.test_client()
    login(office, "office")
    assert office.get(f"/assess/period/{period.id}/marks").status_code == 200


def test_an_items_own_reason_is_kept_unless_the_rows_reason_is_edited(period, app):
    from server.auth.models import User

    assessor = db.session.scalar(db.select(User).filter_by(username="assessor"))
    shilong = db.session.get(service.Unit, unit_id("lidu", "shilong"))
    grid = service.marks_grid(assessor, period)
    first_rule = {}
    for key, rule, _n, _l in grid.columns:
        first_rule.setdefault(key, rule)
    (a, rule_a), (b, rule_b) = list(first_rule.items())[:2]  # two items, each by its first rule
    service.enter_marks(assessor, period, shilong, a, {rule_a: 1}, "reason A")
    service.enter_marks(assessor, period, shilong, b, {rule_b: 1}, "reason B")
    db.session.commit()
    grid = service.marks_grid(assessor, period)
    assert grid.reasons[shilong.id] == "reason A；reason B"  # the row shows both
    typed = {(shilong.id, k, r): "" if v is None else str(v) for (u, k, r), v in grid.values.items() if u == shilong.id}
    typed[(shilong.id, a, rule_a)] = "2"  # only A's number changes
    assert service.enter_marks_grid(assessor, period, grid, typed, {shilong.id: grid.reasons[shilong.id]}) == {}
    assert service.my_entry(assessor, period, shilong, a).reason == "reason A"  # not the row's joined text
    assert service.my_entry(assessor, period, shilong, b).reason == "reason B"
    grid = service.marks_grid(assessor, period)
    problems = service.enter_marks_grid(assessor, period, grid, typed, {shilong.id: "复核后\x00统一说明"})
    assert problems == {}
    assert service.my_entry(assessor, period, shilong, b).reason == "复核后统一说明"  # edited: every item takes it
