"""Seed 001 (路长制) as shipped in schemes/luzhang: the three assessments of 六(四), the 三面 categories, the
departments that answer 路长吹哨, public reporting, and a phone on the board for every tier of 四."""

from __future__ import annotations

import pytest

from server.assessment import scoring
from server.boards import service as boards
from server.definitions.service import current_scheme, scheme_categories, scheme_in_force
from server.extensions import db
from server.forms import service as forms
from server.forms.engine import form_spec
from server.forms.models import Submission
from server.org.models import Area, Unit
from server.org.posts import appoint
from server.workflow import service as workflow
from tests.support.factories import formdata, load_shipped, make_user, photo

DEPARTMENTS = {"dept_chengguan", "dept_police", "dept_housing", "dept_transport", "dept_water", "dept_planning",
               "dept_ecology", "dept_commerce", "dept_market", "dept_health", "dept_culture", "dept_telecom",
               "dept_mobile", "dept_unicom", "dept_power"}
BOARD_TIERS = ["general_chief", "first_chief_street", "first_chief_city", "second_chief_community",
               "second_chief_squad", "second_chief_sanitation"]


@pytest.fixture
def luzhang(ctx):
    load_shipped("luzhang")
    return ctx


def _assessed(sheet_id: str) -> list[str]:
    return [u.key for u in scoring.assessed_units("luzhang", scoring.sheet_of("luzhang", sheet_id)[1])]


def test_each_sheet_assesses_the_units_the_seed_names(luzhang):
    assert _assessed("luzhang_street") == ["east_street", "west_town"]  # 区城管局 → 镇街
    assert _assessed("luzhang_squad") == ["east_squad", "west_squad"]  # 镇街 → 城管中队
    assert set(_assessed("luzhang_department")) == DEPARTMENTS  # 数字化城管中心 → 职能部门
    street = scoring.sheet_of("luzhang", "luzhang_street")[1]
    rectified = next(m for m in street.metrics if m["id"] == "area_rectified")
    assert rectified["counts_for"] == "place" and rectified["include_below"] is True
    # A street's figures take in its squad: the squad sits under it.
    squad = db.session.scalar(db.select(Unit).filter_by(scheme_key="luzhang", key="east_squad"))
    assert squad.parent.key == "east_street"


def test_the_squads_road_chiefs_are_assessed_in_person(luzhang):
    """六(四): the streets assess the squads' road chiefs too — each 城管二级路长 on their own numbers."""
    from tests.support.clock import TODAY

    since = TODAY.replace(day=1)
    appoint("luzhang", "second_chief_squad", "陈队员", area_key="renmin_road_west", since=since)
    appoint("luzhang", "second_chief_squad", "林队员", area_key="binhe_road", since=since)
    appoint("luzhang", "second_chief_community", "社区路长", area_key="renmin_road_east", since=since)
    db.session.commit()
    _period, results = scoring.score_period("luzhang", "luzhang_squad_chiefs", TODAY)
    assert sorted(r.unit.name for r in results) == ["林队员", "陈队员"]  # not the community's chief
    assert all(r.metrics["reported"] == 0 for r in results)  # no account, nothing reported: −10 each
    assert all(r.score.items["recording"].score == 20 for r in results)


def test_the_three_faces_are_categories_in_force(luzhang):
    by_id = {c["id"]: c for c in scheme_categories("luzhang")}
    assert [by_id[k]["name"]["zh"] for k in ("sanmian_ground", "sanmian_facade", "sanmian_roof")] == \
        ["地面", "立面", "屋面"]
    assert {c["workflow"] for k, c in by_id.items() if k.startswith("sanmian_")} == {"road_chief_disposal"}
    leaves = lambda c: [x["name"]["zh"] for child in c.get("children", []) for x in [child, *child.get("children", [])]]  # noqa: E731
    assert {"流动摊点", "乱堆乱放", "卫生保洁", "垃圾处置", "出店经营", "乱停乱放", "道路及其附属设施"} <= \
        set(leaves(by_id["sanmian_ground"]))
    assert leaves(by_id["sanmian_facade"]) == ["广告店招", "空调外机", "乱贴乱挂"]
    assert leaves(by_id["sanmian_roof"]) == ["天际线", "违章搭建"]
    assert "event_city_environment" in by_id  # the shipped list is still there


def test_the_departments_exist_and_are_reached_by_routing_and_dispatch(luzhang):
    keys = set(db.session.scalars(db.select(Unit.key).filter_by(scheme_key="luzhang", kind="department")))
    assert keys == DEPARTMENTS
    reporter = make_user("reporter", roles=(("luzhang", "chief", "east_street"),))
    expected = {"part_power_manhole": "dept_power", "ground_road_facilities": "digital_centre",
                "ground_mobile_stall": "east_gate"}
    with luzhang.test_request_context():
        row = forms.form_version("luzhang", "problem_report")
        for number, (category, unit) in enumerate(expected.items()):
            result = forms.post_form(reporter, "luzhang", form_spec(row.data), row, formdata(
                _token=f"l{number}", category=category, area="renmin_road", description="问题",
                photos_before=photo(), size_m3="1", urgency="normal"))
            assert isinstance(result, Submission), result.errors
            assert workflow.open_case(reporter, "luzhang", result).unit.key == unit, category
    centre = make_user("centre", roles=(("luzhang", "centre_staff", None),))
    dispatch = form_spec(current_scheme("luzhang").member("form", "dispatch").data)  # the 派单处置 step's form
    units = {v for v, _label in forms.choice_source(centre, "luzhang")(dispatch.by_id["target_unit"], {})}
    assert DEPARTMENTS <= units


def test_public_reporting_is_on(luzhang):
    public = scheme_in_force("luzhang").public
    assert public.reporting and public.exposed_list and public.praise_list
    client = luzhang.test_client()
    assert client.get("/p/luzhang/report").status_code == 200
    assert client.get("/p/luzhang/exposed").status_code == 200


def test_every_tier_of_the_seed_shows_a_phone_on_the_board(luzhang):
    road = db.session.scalar(db.select(Area).filter_by(scheme_key="luzhang", key="renmin_road"))
    board = boards.board_definition("luzhang", road)
    assert board["tiers"] == BOARD_TIERS
    tiers = scheme_in_force("luzhang").tiers
    assert all("phone" in tiers[t]["public_fields"] for t in BOARD_TIERS)
    for number, tier in enumerate(BOARD_TIERS):
        where = {"unit_key": "east_street"} if tier == "general_chief" else {"area_key": "renmin_road"}
        appoint("luzhang", tier, f"路长{number}", phone=f"1380000000{number}", **where)
    db.session.commit()
    rows = boards.board_for("luzhang", road)["rows"]
    assert [[c["phone"] for c in r["chiefs"]] for r in rows] == [[f"1380000000{n}"] for n in range(6)]



def test_the_sheets_score_from_the_cases(luzhang):
    from tests.support.clock import TODAY

    chief = make_user("chief", roles=(("luzhang", "chief", "east_street"),))
    with luzhang.test_request_context():
        row = forms.form_version("luzhang", "problem_report")
        result = forms.post_form(chief, "luzhang", form_spec(row.data), row, formdata(
            _token="p1", category="part_power_manhole", area="renmin_road", description="电力井盖缺失",
            photos_before=photo(), size_m3="1", urgency="normal"))
        workflow.open_case(chief, "luzhang", result)  # routed to the power company, not dealt with yet
    db.session.commit()
    _period, streets = scoring.score_period("luzhang", "luzhang_street", TODAY)
    east = next(r for r in streets if r.unit.key == "east_street")
    # The case lies on East Gate's road: the street's figure takes it in (place, include_below).
    assert east.metrics["area_rectified"] == 0.0 and east.metrics["found_by_chiefs"] == 1
    assert east.total == 85  # 问题处置率 loses its 15
    _period, departments = scoring.score_period("luzhang", "luzhang_department", TODAY)
    power = next(r for r in departments if r.unit.key == "dept_power")
    assert power.metrics["handled"] == 0.0 and power.total == 75  # 处置率 loses its 25
    assert [f.id for f in power.flags] == ["yellow_flag"]  # last of the utilities, under 80
    assert all(r.total == 100 for r in departments if r is not power)
