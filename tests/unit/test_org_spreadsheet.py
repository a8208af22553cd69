"""Spreadsheets of units, areas and posts, and the checks behind them: pure, no database."""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile

import openpyxl
import pytest

from server.core.spreadsheets import write_csv, write_xlsx
from server.org.engine import (
    AreaValues,
    Node,
    OrgIndex,
    PostState,
    PostValues,
    UnitValues,
    area_problems,
    in_loop,
    parse_geometry,
    plan_post,
    same_text,
    text_of,
    tier_problems,
    unit_problems,
)
from server.org.spreadsheet import (
    COLUMNS,
    check_import,
    org_sheet,
    read_csv,
    read_upload,
    read_xlsx,
)

SCHEME = {
    "unit_kinds": [{"id": "street", "name": "街道"}, {"id": "community", "name": "社区"}],
    "area_kinds": [{"id": "town", "name": "场镇"}, {"id": "road", "name": "道路", "parent_kinds": ["town"]},
                   {"id": "segment", "name": "路段", "parent_kinds": ["road"]}],
    "tiers": [{"id": "chief", "name": "总路长", "unit_kinds": ["street"]},
              {"id": "keeper", "name": "路段长", "area_kinds": ["road", "segment"]}],
}
INDEX = OrgIndex(units={"street": Node("street"), "shilong": Node("community", "street")},
                 areas={"town": Node("town", None, "shilong"), "old_street": Node("road", "town", "shilong")})
TODAY = dt.date(2026, 3, 15)


def workbook(sheets: dict[str, list[list]]) -> bytes:
    book = openpyxl.Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def check(sheets: dict[str, list[list]], latest: dict | None = None, usernames: set[str] = frozenset()):
    tables, errors = read_xlsx(workbook(sheets))
    assert not errors
    return check_import(tables, SCHEME, INDEX, latest or {}, usernames, TODAY)


def where(errors) -> set[tuple[str, int | None, str | None]]:
    return {(e.sheet, e.row, e.column) for e in errors}


# -- texts, loops, geometry ---------------------------------------------------------------------------------------

def test_texts_read_the_same_whatever_their_shape():
    assert text_of(" 石龙 ", "") == {"zh": "石龙"} and text_of("", None) is None
    assert same_text("石龙", {"zh": "石龙"}) and not same_text({"zh": "石龙", "en": "Shilong"}, "石龙")


def test_a_parent_loop_is_found():
    parents = {"a": Node("k", "b"), "b": Node("k", "c"), "c": Node("k", "a"), "d": Node("k", "a")}
    assert in_loop(parents, "a") and in_loop(parents, "c")
    assert not in_loop(parents, "d")  # above a loop, not in it
    assert not in_loop({"a": Node("k", "b"), "b": Node("k")}, "a")


@pytest.mark.parametrize("text", [
    '{"type": "Point", "coordinates": [107.2, 29.7]}',
    '{"type": "LineString", "coordinates": [[107.21, 29.68], [107.22, 29.69]]}',
    '{"type": "Polygon", "coordinates": [[[107, 29], [107.1, 29], [107.1, 29.1], [107, 29]]]}',
    '{"type": "MultiLineString", "coordinates": [[[107, 29], [107.1, 29]], [[107.2, 29], [107.3, 29.1]]]}',
])
def test_good_geometry(text):
    geometry, problem = parse_geometry(text)
    assert problem is None and geometry == json.loads(text)


@pytest.mark.parametrize("text", [
    "not json",
    '{"type": "Circle", "coordinates": [107, 29]}',
    '{"type": "Point", "coordinates": [29.7, 107.2]}',  # latitude first: 107 is no latitude
    '{"type": "Point", "coordinates": ["107", "29"]}',
    '{"type": "LineString", "coordinates": [[107, 29]]}',  # one point is no line
    '{"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}',  # a bow tie
    '[107, 29]',
])
def test_bad_geometry(text):
    geometry, problem = parse_geometry(text)
    assert geometry is None and problem


def test_empty_geometry_is_none():
    assert parse_geometry("  ") == (None, None)


# -- checks of one unit, area or post ------------------------------------------------------------------------------

def test_unit_checks():
    ok = UnitValues("new_one", "community", {"zh": "新社区"}, parent="street")
    assert unit_problems(ok, SCHEME, INDEX.with_unit(ok)) == {}
    bad = UnitValues("Bad Key", "village", None, parent="nowhere", difficulty=12)
    assert set(unit_problems(bad, SCHEME, INDEX.with_unit(bad))) == {"key", "kind", "name", "parent", "difficulty"}
    loop = UnitValues("street", "street", {"zh": "街道"}, parent="shilong")
    assert "loop" in unit_problems(loop, SCHEME, INDEX.with_unit(loop))["parent"]
    itself = UnitValues("street", "street", {"zh": "街道"}, parent="street")
    assert "parent" in unit_problems(itself, SCHEME, INDEX.with_unit(itself))


def test_area_checks_follow_parent_kinds():
    segment = AreaValues("north", "segment", {"zh": "北段"}, parent="old_street", unit="shilong")
    assert area_problems(segment, SCHEME, INDEX.with_area(segment)) == {}
    misplaced = AreaValues("north", "segment", {"zh": "北段"}, parent="town")
    assert "parent" in area_problems(misplaced, SCHEME, INDEX.with_area(misplaced))
    at_top = AreaValues("loose_road", "road", {"zh": "路"})  # parent_kinds only bind when there is a parent
    assert area_problems(at_top, SCHEME, INDEX.with_area(at_top)) == {}
    bad = AreaValues("x", "lake", {"zh": "湖"}, unit="nobody", length_m=-1)
    assert set(area_problems(bad, SCHEME, INDEX.with_area(bad))) == {"kind", "unit", "length_m"}


def test_tier_kinds():
    assert tier_problems(PostValues("keeper", "张三", area="old_street"), SCHEME, INDEX) == {}
    assert "area" in tier_problems(PostValues("keeper", "张三", area="town"), SCHEME, INDEX)
    assert "unit" in tier_problems(PostValues("chief", "王", unit="shilong"), SCHEME, INDEX)


def test_plan_post():
    latest = PostState(id=1, holder_name="张三", started_on=dt.date(2026, 1, 1), phone="139")
    same = PostValues("keeper", "张三", area="old_street", phone="139", started_on=dt.date(2026, 1, 1))
    assert plan_post(same, latest, TODAY) == ("unchanged", {})
    assert plan_post(PostValues("keeper", "张三", area="old_street", phone="138"), latest, TODAY) == ("update", {})
    assert plan_post(PostValues("keeper", "赵六", area="old_street"), latest, TODAY) == ("appoint", {})
    action, problems = plan_post(PostValues("keeper", "赵六", started_on=dt.date(2025, 12, 1)), latest, TODAY)
    assert action == "appoint" and "started_on" in problems
    action, problems = plan_post(PostValues("keeper", "张三", started_on=dt.date(2026, 2, 1)), latest, TODAY)
    assert "started_on" in problems
    # the same name with another account is another person
    assert plan_post(PostValues("keeper", "张三", username="zhang2"), PostState(
        id=1, holder_name="张三", started_on=dt.date(2026, 1, 1), username="zhang1"), TODAY)[0] == "appoint"


# -- reading files --------------------------------------------------------------------------------------------------

def test_csv_round_trip_with_bom_and_defused_formulas():
    rows = [["=HYPERLINK(\"x\")", "street", "", "-负号开头", "+1", "", "yes"], ["a", "street", "", "名", "", 3, "no"]]
    data = write_csv(org_sheet("units", rows, as_text=True))
    assert data.startswith("\ufeff".encode()) and b"'=HYPERLINK" in data
    tables, errors = read_csv(data, "units")
    assert not errors
    assert tables["units"].columns == list(COLUMNS["units"])
    first = tables["units"].rows[0]
    assert first[0] == 2 and first[1]["key"] == "=HYPERLINK(\"x\")" and first[1]["name_zh"] == "-负号开头"


def test_xlsx_keeps_text_that_looks_like_a_formula():
    data = write_xlsx({"units": org_sheet("units", [["=1+1", "street", "", "名", "", "", "yes"]]),
                       "areas": org_sheet("areas", []), "posts": org_sheet("posts", [])})
    tables, errors = read_xlsx(data)
    assert not errors and tables["units"].rows == [(2, {"key": "=1+1", "kind": "street", "name_zh": "名",
                                                        "active": "yes"})]


def test_control_characters_do_not_break_the_workbook():
    data = write_xlsx({"units": org_sheet("units", [["a", "street", "", "石\x0b龙", "", "", "yes"]])})
    assert read_xlsx(data)[0]["units"].rows[0][1]["name_zh"] == "石龙"


def test_row_numbers_count_blank_rows():
    tables, _ = read_xlsx(workbook({"units": [["key", "kind", "name_zh"], ["a", "street", "甲"], [None], [],
                                              ["b", "street", "乙"]]}))
    assert [n for n, _ in tables["units"].rows] == [2, 5]


@pytest.mark.parametrize(("data", "name", "sheet"), [
    (b"PK\x03\x04not really a zip", "org.xlsx", None),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1old excel", "org.xls", None),
    ("key,kind\n石龙,street\n".encode("gbk"), "units.csv", None),
    (b"key,kind\na,street\n", "data.csv", None),  # which sheet?
    (b"", "units.csv", None),
    (b"x" * (10 * 1024 * 1024 + 1), "units.csv", None),
])
def test_refused_files(data, name, sheet):
    tables, errors = read_upload(data, name, sheet)
    assert not tables and len(errors) == 1


def test_a_zip_that_is_not_a_workbook():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "hi")
    assert read_upload(buffer.getvalue(), "org.xlsx")[1]


def test_csv_sheet_from_the_file_name():
    tables, errors = read_upload("\ufeffkey,kind,name_zh\r\na,street,甲\r\n".encode(), "units.csv")
    assert not errors and tables["units"].rows == [(2, {"key": "a", "kind": "street", "name_zh": "甲"})]


def test_header_problems():
    tables, errors = read_xlsx(workbook({"units": [["key", "colour", "key"], ["a", "red", "b"]],
                                         "posts": [["holder_name"], ["张三"]]}))
    assert where(errors) == {("units", 1, "colour"), ("units", 1, "key"), ("units", 1, "kind"),
                             ("posts", 1, "tier")}  # the values under a wrong header are not reported again
    tables, errors = read_xlsx(workbook({"units": [["key", None, "kind"], ["a", "stray", "street"]]}))
    assert where(errors) == {("units", 2, "B")}
    tables, errors = read_xlsx(workbook({"units": [[None], ["a", "street"]], "areas": []}))
    assert where(errors) == {("units", 1, None)} and tables["areas"].rows == []  # an empty sheet is no problem


# -- checking a whole import -----------------------------------------------------------------------------------------

def test_parents_may_come_later_in_the_sheet():
    plan, errors = check({
        "units": [["key", "kind", "parent", "name_zh"], ["child", "community", "new_street", "子"],
                  ["new_street", "street", "", "新街道"]],
        "areas": [["key", "kind", "parent", "unit", "name_zh"], ["seg", "segment", "new_road", "child", "段"],
                  ["new_road", "road", "town", "child", "新路"]],
        "posts": [["tier", "area", "holder_name", "started_on"], ["keeper", "seg", "李四", "2026-03-01"]],
    })
    assert errors == [] and len(plan.units) == 2 and len(plan.areas) == 2
    assert [action for _, _, action, _ in plan.posts] == ["appoint"]


def test_every_problem_in_every_sheet_is_named():
    plan, errors = check({
        "units": [["key", "kind", "parent", "name_zh", "difficulty"],
                  ["ok_unit", "community", "street", "好", 2],
                  ["bad_kind", "village", "", "坏", ""],
                  ["loop_a", "community", "loop_b", "甲", ""],
                  ["loop_b", "community", "loop_a", "乙", "hard"],
                  ["ok_unit", "community", "street", "重复", ""]],
        "areas": [["key", "kind", "parent", "unit", "name_zh", "geometry", "length_m"],
                  ["bad_geo", "road", "town", "shilong", "路", '{"type": "Point", "coordinates": [200, 29]}', 10],
                  ["bad_parent", "segment", "town", "shilong", "段", "", "long"],
                  ["no_name", "road", "", "", "", "", ""]],
        "posts": [["tier", "area", "unit", "holder_name", "started_on", "username"],
                  ["emperor", "old_street", "", "王", "2026-03-01", ""],
                  ["keeper", "old_street", "", "张三", "3/1/2026", ""],
                  ["keeper", "nowhere", "", "李四", "", "ghost"],
                  ["chief", "", "shilong", "赵", "", ""]],
    })
    assert where(errors) == {
        ("units", 3, "kind"), ("units", 4, "parent"), ("units", 5, "difficulty"), ("units", 6, "key"),
        ("areas", 2, "geometry"), ("areas", 3, "length_m"), ("areas", 4, "name_zh"),
        ("posts", 2, "tier"), ("posts", 3, "started_on"), ("posts", 4, "area"), ("posts", 4, "username"),
        ("posts", 5, "unit"),
    }
    assert [e.sheet for e in errors] == ["units"] * 4 + ["areas"] * 3 + ["posts"] * 5  # in sheet order
    assert str(errors[0]).startswith("units row 3, kind: ")


def test_a_post_row_against_the_latest_holder():
    latest = {("keeper", "old_street", None, None): PostState(id=7, holder_name="张三", started_on=dt.date(2026, 1, 1))}
    plan, errors = check({"posts": [["tier", "area", "holder_name", "started_on"],
                                    ["keeper", "old_street", "赵六", "2026-03-01"]]}, latest)
    assert not errors and plan.posts[0][2] == "appoint" and plan.posts[0][3].id == 7
    plan, errors = check({"posts": [["tier", "area", "holder_name", "started_on"],
                                    ["keeper", "old_street", "赵六", "2025-12-01"]]}, latest)
    assert where(errors) == {("posts", 2, "started_on")}
    plan, errors = check({"posts": [["tier", "area", "holder_name"], ["keeper", "old_street", "张三"],
                                    ["keeper", "old_street", "赵六"]]}, latest)
    assert where(errors) == {("posts", 3, "tier")}  # the same tier over the same area twice


def test_an_ended_post_is_not_reopened_by_a_row_for_the_same_holder():
    latest = {("keeper", "old_street", None, None): PostState(id=7, holder_name="张三", started_on=dt.date(2025, 1, 1),
                                                              ended_on=dt.date(2025, 6, 30))}
    plan, errors = check({"posts": [["tier", "area", "holder_name"], ["keeper", "old_street", "张三"]]}, latest)
    assert not errors and plan.posts[0][2] == "appoint"


def test_a_column_of_notes_is_one_problem_not_thousands():
    rows = [["key", "kind", "name_zh"]] + [[f"u{i}", "community", "社区", "备注"] for i in range(500)]
    tables, errors = read_xlsx(workbook({"units": rows}))
    assert [(e.row, e.column) for e in errors] == [(2, "D")]


def test_post_count_warnings_for_covers_and_holders():
    from server.org.engine import post_count_warnings

    scheme = {"tiers": [{"id": "grid_keeper", "area_kinds": ["grid"], "covers": {"min": 2, "max": 3},
                         "holders": {"min": 1, "max": 1}},
                        {"id": "free", "area_kinds": ["grid"]}]}
    areas = {"g1": "grid", "g2": "grid", "g3": "grid", "g4": "grid", "g5": "grid", "road": "road"}
    held = [("grid_keeper", "张三", "g1"), ("grid_keeper", "张三", "g2"),                      # 2: fine
            ("grid_keeper", "李四", "g3"),                                                     # 1: too few
            ("grid_keeper", "王五", "g4"), ("grid_keeper", "王五", "g3"), ("grid_keeper", "王五", "g1"),
            ("grid_keeper", "王五", "g2"),                                                     # 4: too many
            ("free", "赵六", "g5"), ("free", "赵六", "road")]                                  # no rule
    got = {(w.what, w.subject, w.count) for w in post_count_warnings(scheme, held, areas)}
    assert got == {("covers", "李四", 1), ("covers", "王五", 4),
                   ("holders", "g1", 2), ("holders", "g2", 2), ("holders", "g3", 2), ("holders", "g5", 0)}
    assert post_count_warnings({"tiers": [{"id": "t"}]}, held, areas) == []
