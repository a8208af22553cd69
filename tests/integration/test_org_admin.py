"""Organisation admin: units, areas and posts edited on pages, and the spreadsheet import and export."""

from __future__ import annotations

import datetime as dt
import io
import re

import openpyxl
import pytest

from server.audit.models import AuditEntry
from server.auth.models import User
from server.definitions.service import activate_scheme_version, load_scheme
from server.extensions import db
from server.org.models import Area, Post, Unit
from server.org.posts import appoint
from server.org.service import posts_of
from tests.conftest import csrf_token
from tests.support.clock import TODAY
from tests.support.factories import demo_files, load_demo, login, make_user, unit_id
from tests.support.jobs import Finished, job_file, run_job_from, run_started, start


@pytest.fixture
def demo(ctx):
    load_demo()
    appoint("lidu", "main_leader", "王主任", unit_key="lidu_street", since=TODAY - dt.timedelta(days=60))
    appoint("lidu", "segment_keeper", "张三", area_key="shilong_old_street", phone="13900000002",
            duties=["=HYPERLINK(\"http://x\")", "每天巡查"], since=TODAY - dt.timedelta(days=40))
    db.session.commit()


@pytest.fixture
def office(demo, client):
    make_user("office", roles=(("lidu", "office_admin", None),))
    login(client, "office")
    return client


def _unit(key: str) -> Unit:
    return db.session.scalar(db.select(Unit).filter_by(scheme_key="lidu", key=key))


def _area(key: str) -> Area:
    return db.session.scalar(db.select(Area).filter_by(scheme_key="lidu", key=key))


def _post(client, path: str, data: dict, token_from: str | None = None):
    return client.post(path, data={"csrf_token": csrf_token(client, token_from or path), **data})


def _snapshot() -> list:
    units = [(u.key, u.kind, u.name, u.parent_id, u.path, u.difficulty, u.active, u.source)
             for u in db.session.scalars(db.select(Unit).filter_by(scheme_key="lidu").order_by(Unit.id))]
    areas = [(a.key, a.kind, a.name, a.parent_id, a.unit_id, a.range_from, a.range_to, a.length_m, a.geometry,
              a.description, a.active, a.path)
             for a in db.session.scalars(db.select(Area).filter_by(scheme_key="lidu").order_by(Area.id))]
    posts = [(p.tier_key, p.holder_name, p.user_id, p.title, p.phone, p.duties, p.unit_id, p.area_id, p.started_on,
              p.ended_on) for p in db.session.scalars(db.select(Post).filter_by(scheme_key="lidu").order_by(Post.id))]
    return [units, areas, posts]


def _audit_count() -> int:
    return db.session.scalar(db.select(db.func.count(AuditEntry.id)))


# -- access --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/org/lidu/units/new", "/org/lidu/areas/new", "/org/lidu/posts/new",
                                  "/org/lidu/import", "/org/lidu/posts"])
def test_anonymous_is_sent_to_login(demo, client, path):
    response = client.get(path)
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_a_unit_head_without_org_manage_cannot_edit(demo, client):
    make_user("head", roles=(("lidu", "unit_head", "shilong"),))
    login(client, "head")
    assert client.get("/org/lidu/units/new").status_code == 403
    assert client.get(f"/org/units/{unit_id('lidu', 'shilong')}/edit").status_code == 403
    assert client.get("/org/lidu/import").status_code == 403
    assert start(client, "/org/lidu/export", {"format": "xlsx"}, token_from="/org/lidu/units").status_code == 403
    page = client.get(f"/org/units/{unit_id('lidu', 'shilong')}").get_data(as_text=True)
    assert "/edit" not in page


@pytest.fixture
def subtree_managers(demo):
    """A version of the demo where community heads manage the organisation of their own subtree."""
    files = dict(demo_files())
    name = next(n for n in files if n.endswith("scheme.yaml"))
    text = files[name]
    head = text.index("- id: unit_head")
    at = text.index("capabilities: [org.view,", head) + len("capabilities: [org.view,")
    files[name] = text[:at] + " org.manage," + text[at:]
    version, _ = load_scheme(files)
    activate_scheme_version(version.id)
    db.session.commit()


def test_a_subtree_manager_edits_only_inside_its_subtree(subtree_managers, client):
    make_user("head", roles=(("lidu", "unit_head", "shilong"),))
    login(client, "head")
    shilong, zhiyuan = unit_id("lidu", "shilong"), unit_id("lidu", "zhiyuan")
    assert client.get(f"/org/units/{shilong}/edit").status_code == 200
    assert client.get(f"/org/units/{zhiyuan}/edit").status_code == 403
    assert client.get(f"/org/areas/{_area('zhiyuan_road').id}/edit").status_code == 403
    # a new unit under its own, yes; at the top of the tree, no
    response = _post(client, "/org/lidu/units/new", {"key": "shilong_team", "kind": "community",
                                                     "parent": "shilong", "name_zh": "石龙小组", "active": "y"})
    assert response.status_code == 302
    assert _unit("shilong_team").parent_id == shilong
    assert _post(client, "/org/lidu/units/new", {"key": "rogue", "kind": "community",
                                                 "name_zh": "独立", "active": "y"}).status_code == 403
    # moving its unit under a unit it does not manage is refused
    response = _post(client, f"/org/units/{shilong}/edit", {"kind": "community", "parent": "zhiyuan",
                                                           "name_zh": "石龙社区", "active": "y"})
    assert response.status_code == 403 and _unit("shilong").parent.key == "lidu_street"
    listing = client.get("/org/lidu/units").get_data(as_text=True)
    assert f"/org/units/{shilong}/edit" in listing and f"/org/units/{zhiyuan}/edit" not in listing


# -- units and areas -----------------------------------------------------------------------------------------

def test_office_admin_adds_and_edits_a_unit(office):
    before = _audit_count()
    response = _post(office, "/org/lidu/units/new", {"key": "sanitation", "kind": "department",
                                                     "parent": "lidu_street", "name_zh": "环卫所",
                                                     "name_en": "Sanitation", "difficulty": "2", "active": "y"})
    assert response.status_code == 302
    unit = _unit("sanitation")
    assert unit.source == "manual" and unit.name == {"zh": "环卫所", "en": "Sanitation"} and unit.difficulty == 2
    assert unit.path == _unit("lidu_street").path + f"{unit.id}/"
    response = _post(office, f"/org/units/{unit.id}/edit", {"kind": "department", "parent": "town_office",
                                                            "name_zh": "环卫所", "name_en": "Sanitation"})
    assert response.status_code == 302
    db.session.refresh(unit)
    assert unit.parent.key == "town_office" and unit.active is False and unit.difficulty is None
    actions = db.session.scalars(db.select(AuditEntry.action).order_by(AuditEntry.id)).all()[before:]
    assert actions == ["unit.create", "unit.edit"]
    assert "环卫所" in office.get("/org/lidu/units?inactive=1").get_data(as_text=True)
    assert "环卫所" not in office.get("/org/lidu/units").get_data(as_text=True)


def test_csrf_is_required(office):
    response = office.post("/org/lidu/units/new", data={"key": "nocsrf", "kind": "department",
                                                        "name_zh": "无令牌", "active": "y"})
    assert response.status_code == 400 and _unit("nocsrf") is None


def test_a_bad_form_comes_back_with_the_data_and_the_errors(office):
    response = _post(office, "/org/lidu/units/new", {"key": "shilong", "kind": "community", "parent": "lidu_street",
                                                     "name_zh": " ", "difficulty": "3", "active": "y"})
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert 'value="shilong"' in page and 'value="3"' in page and re.search(r'selected value="lidu_street"', page)
    assert len(re.findall(r'class="field-error"', page)) == 2  # the taken key, no name
    response = _post(office, "/org/lidu/units/new", {"key": "new_unit", "kind": "community", "name_zh": "新",
                                                     "difficulty": "12"})
    assert response.status_code == 400 and 'value="12"' in response.get_data(as_text=True)


def test_a_parent_loop_is_refused(office):
    street = _unit("lidu_street")
    response = _post(office, f"/org/units/{street.id}/edit", {"kind": "street", "parent": "shilong",
                                                             "name_zh": "李渡街道办事处", "active": "y"})
    assert response.status_code == 400 and "field-error" in response.get_data(as_text=True)
    db.session.expire_all()
    assert _unit("lidu_street").parent_id is None
    town = _area("shilong_town")
    response = _post(office, f"/org/areas/{town.id}/edit", {"kind": "town", "parent": "shilong_old_street_north",
                                                           "unit": "shilong", "name_zh": "石龙场镇", "active": "y"})
    assert response.status_code == 400
    db.session.expire_all()
    assert _area("shilong_town").parent_id is None


def test_areas_with_range_and_geometry(office):
    data = {"key": "shilong_new_road", "kind": "road", "parent": "shilong_town", "unit": "shilong",
            "name_zh": "石龙新路", "from_zh": "石龙桥头", "to_zh": "石龙中学", "length_m": "620", "active": "y",
            "geometry": '{"type": "LineString", "coordinates": [[107.21, 29.68], [107.22, 29.69]]}'}
    bad = _post(office, "/org/lidu/areas/new", {**data, "geometry": '{"type": "LineString", "coordinates": [[1, 95]]}'})
    assert bad.status_code == 400 and "石龙新路" in bad.get_data(as_text=True) and _area("shilong_new_road") is None
    wrong_parent = _post(office, "/org/lidu/areas/new", {**data, "kind": "segment", "geometry": ""})
    assert wrong_parent.status_code == 400  # a segment sits inside a road, not a town
    assert _post(office, "/org/lidu/areas/new", data).status_code == 302
    area = _area("shilong_new_road")
    assert area.geometry["type"] == "LineString" and area.range_from == {"zh": "石龙桥头"} and area.length_m == 620
    assert area.path.startswith(_area("shilong_town").path) and area.source == "manual"
    page = office.get(f"/org/areas/{area.id}").get_data(as_text=True)
    assert f"/org/areas/{area.id}/edit" in page


# -- posts ---------------------------------------------------------------------------------------------------

def test_appoint_edit_and_end_posts_keep_history(office):
    since = TODAY - dt.timedelta(days=5)
    response = _post(office, "/org/lidu/posts/new", {"tier": "segment_keeper", "area": "shilong_old_street",
                                                     "holder_name": "赵六", "phone": "13700000000",
                                                     "duties": "早晚巡查\n劝导占道经营",
                                                     "started_on": since.isoformat()})
    assert response.status_code == 302
    old = db.session.scalar(db.select(Post).filter_by(holder_name="张三"))
    new = db.session.scalar(db.select(Post).filter_by(holder_name="赵六"))
    assert old.ended_on == since - dt.timedelta(days=1) and new.duties == ["早晚巡查", "劝导占道经营"]
    listing = office.get("/org/lidu/posts?area=shilong_old_street").get_data(as_text=True)
    assert "张三" in listing and "赵六" in listing
    assert "张三" not in office.get("/org/lidu/posts?area=shilong_old_street&state=current").get_data(as_text=True)
    # a new holder cannot start before the present one did
    early = _post(office, "/org/lidu/posts/new", {"tier": "segment_keeper", "area": "shilong_old_street",
                                                  "holder_name": "钱七", "started_on": since.isoformat()})
    assert early.status_code == 400 and "钱七" in early.get_data(as_text=True)
    # a tier is only held over the kinds of area it names
    wrong = _post(office, "/org/lidu/posts/new", {"tier": "segment_keeper", "area": "shilong_town",
                                                  "holder_name": "孙八", "started_on": TODAY.isoformat()})
    assert wrong.status_code == 400
    assert _post(office, f"/org/posts/{new.id}/edit", {"title": "网格员", "phone": "13711111111",
                                                       "duties": "早晚巡查"}).status_code == 302
    db.session.expire_all()
    assert (new.title, new.phone, new.duties) == ("网格员", "13711111111", ["早晚巡查"])
    assert office.get(f"/org/posts/{old.id}/edit").status_code == 200  # the form; saving it is refused
    assert _post(office, f"/org/posts/{old.id}/edit", {"title": "改写历史"}).status_code == 400
    assert _post(office, f"/org/posts/{new.id}/end", {"ended_on": (since - dt.timedelta(days=2)).isoformat()}
                 ).status_code == 400
    assert _post(office, f"/org/posts/{new.id}/end", {"ended_on": TODAY.isoformat()}).status_code == 302
    db.session.expire_all()
    assert new.ended_on == TODAY
    area = _area("shilong_old_street")
    assert [p.holder_name for p in posts_of(area=area, on=TODAY - dt.timedelta(days=20))] == ["张三"]
    assert [p.holder_name for p in posts_of(area=area, on=TODAY)] == ["赵六"]
    assert posts_of(area=area, on=TODAY + dt.timedelta(days=1)) == []


# -- spreadsheets --------------------------------------------------------------------------------------------

def _upload(client, content: bytes, name: str, sheet: str = ""):
    """The import page's form sent: refused at once (a file that cannot be read), or a job started."""
    token = csrf_token(client, "/org/lidu/import")
    return client.post("/org/lidu/import", data={"csrf_token": token, "sheet": sheet,
                                                  "upload": (io.BytesIO(content), name)},
                       content_type="multipart/form-data")


def _import(client, content: bytes, name: str, sheet: str = "") -> Finished:
    """The import page's form sent and its job run: its page, and its report when it imported."""
    return run_started(client, _upload(client, content, name, sheet))


def _imported(client, content: bytes, name: str, sheet: str = "") -> Finished:
    finished = _import(client, content, name, sheet)
    assert finished.content is not None, finished.page  # the report of what was imported
    return finished


def _export(client, fmt: str = "xlsx", sheet: str | None = None) -> bytes:
    return job_file(client, "/org/lidu/export", {"format": fmt, **({"sheet": sheet} if sheet else {})},
                    token_from="/org/lidu/import")


def test_export_then_import_changes_nothing(office):
    before, audits = _snapshot(), _audit_count()
    exported = run_job_from(office, "/org/lidu/export", {"format": "xlsx"}, token_from="/org/lidu/import")
    assert exported.mimetype.endswith("spreadsheetml.sheet") and exported.name == "lidu-org.xlsx"
    book = openpyxl.load_workbook(io.BytesIO(exported.content), read_only=True)
    assert book.sheetnames == ["units", "areas", "posts"]
    _imported(office, exported.content, "lidu-org.xlsx")
    db.session.expire_all()
    assert _snapshot() == before
    assert _audit_count() == audits + 1  # the import itself, nothing else
    for sheet in ("units", "areas", "posts"):
        csv = _export(office, "csv", sheet)
        assert csv.startswith("\ufeff".encode())
        _imported(office, csv, "export.csv", sheet)
    db.session.expire_all()
    assert _snapshot() == before
    assert "'=HYPERLINK" in _export(office, "csv", "posts").decode("utf-8-sig")


def _edited(content: bytes, changes: dict[str, list[list]]) -> bytes:
    """The exported workbook with rows appended (or a sheet's rows replaced when its first row is None)."""
    book = openpyxl.load_workbook(io.BytesIO(content))
    for sheet, rows in changes.items():
        worksheet = book[sheet]
        if rows and rows[0] is None:
            worksheet.delete_rows(2, worksheet.max_row)
            rows = rows[1:]
        header = [c.value for c in worksheet[1]]
        for row in rows:
            worksheet.append([row.get(column) for column in header] if isinstance(row, dict) else row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def test_an_import_with_problems_in_several_sheets_lists_them_all_and_writes_nothing(office):
    exported = _export(office)
    before, audits = _snapshot(), _audit_count()
    content = _edited(exported, {
        "units": [{"key": "fine_new_unit", "kind": "department", "parent": "lidu_street", "name_zh": "新部门"},
                  {"key": "odd_unit", "kind": "village", "name_zh": "村"}],
        "areas": [{"key": "odd_area", "kind": "segment", "parent": "zhiyuan_road", "unit": "nowhere",
                   "name_zh": "段", "geometry": "{not json"}],
        "posts": [{"tier": "emperor", "area": "zhiyuan_road", "holder_name": "皇帝", "started_on": "2026-01-01"},
                  {"tier": "segment_keeper", "area": "duanqiao_street", "holder_name": "某人",
                   "started_on": "someday"}],
    })
    finished = _import(office, content, "org.xlsx")
    assert finished.content is None  # failed: no report to download, the problems are on the job's page
    rows = re.findall(r"<li>(units|areas|posts), 第 (\d+) 行, (\w+): ", finished.page)
    found = {(sheet, column) for sheet, _, column in rows}
    assert {("units", "kind"), ("areas", "geometry"), ("posts", "tier"), ("posts", "started_on")} <= found
    assert all(number for _, number, _ in rows) and "未做任何修改" in finished.page
    db.session.expire_all()
    assert _snapshot() == before and _unit("fine_new_unit") is None and _audit_count() == audits


def test_a_post_change_by_import_keeps_history(office):
    exported = _export(office)
    since = TODAY - dt.timedelta(days=10)
    content = _edited(exported, {"posts": [None, {
        "tier": "segment_keeper", "area": "shilong_old_street", "unit": "shilong", "holder_name": "赵六",
        "phone": "13700000000", "duties": "早晚巡查\n劝导占道经营", "started_on": since}]})
    _imported(office, content, "org.xlsx")
    old = db.session.scalar(db.select(Post).filter_by(holder_name="张三"))
    assert old.ended_on == since - dt.timedelta(days=1)
    area = _area("shilong_old_street")
    assert [p.holder_name for p in posts_of(area=area, on=TODAY - dt.timedelta(days=20))] == ["张三"]
    assert [p.holder_name for p in posts_of(area=area, on=TODAY)] == ["赵六"]
    assert posts_of(area=area)[0].duties == ["早晚巡查", "劝导占道经营"]
    # the main leader's row was left out of the sheet: untouched
    assert db.session.scalar(db.select(Post).filter_by(holder_name="王主任")).ended_on is None


def test_an_import_adds_units_and_areas_whose_parents_come_later(office):
    content = _edited(_export(office), {
        "units": [None, {"key": "team_a", "kind": "department", "parent": "new_office", "name_zh": "甲组"},
                  {"key": "new_office", "kind": "office", "parent": "lidu_street", "name_zh": "新办公室",
                   "difficulty": 3}],
        "areas": [None, {"key": "market_lane", "kind": "road", "parent": "shilong_town", "unit": "team_a",
                         "name_zh": "市场巷", "from_zh": "市场口", "to_zh": "河边", "length_m": 300,
                         "geometry": '{"type":"LineString","coordinates":[[107.2,29.7],[107.201,29.7]]}'}],
    })
    _imported(office, content, "org.xlsx")
    team, lane = _unit("team_a"), _area("market_lane")
    assert team.source == "import" and team.parent.key == "new_office" and team.path.startswith(
        _unit("lidu_street").path)
    assert lane.unit.key == "team_a"
    assert lane.geometry == {"type": "LineString", "coordinates": [[107.2, 29.7], [107.201, 29.7]]}
    assert _unit("shilong").active  # units left out of the sheet are not touched


def test_refused_uploads(office):
    response = _upload(office, b"PK\x03\x04 not a zip at all", "org.xlsx")
    assert response.status_code == 400 and _audit_count() >= 0
    assert _upload(office, "key,kind\n石龙,street\n".encode("gbk"), "units.csv").status_code == 400
    assert _upload(office, b"key,kind\r\nx,street\r\n", "data.csv").status_code == 400  # which sheet?


def test_cli_import_and_export(office, app, tmp_path):
    runner = app.test_cli_runner()
    target = tmp_path / "lidu.xlsx"
    result = runner.invoke(args=["org", "export", "--scheme", "lidu", "-o", str(target)])
    assert result.exit_code == 0, result.output
    before = _snapshot()
    result = runner.invoke(args=["org", "import", str(target), "--scheme", "lidu"])
    assert result.exit_code == 0 and "unchanged" in result.output, result.output
    db.session.expire_all()
    assert _snapshot() == before
    units_csv = tmp_path / "units.csv"
    assert runner.invoke(args=["org", "export", "--scheme", "lidu", "-o", str(units_csv)]).exit_code == 0
    units_csv.write_bytes(units_csv.read_bytes() + "bad_one,village,,坏,,,yes\r\n".encode())
    result = runner.invoke(args=["org", "import", str(units_csv), "--scheme", "lidu"])
    assert result.exit_code == 1 and "units row" in result.output and "kind" in result.output


def test_several_deputies_hold_the_tier_at_once(office):
    """A tier marked `several` (Lidu's deputy leaders): a second holder does not end the first."""
    appoint("lidu", "deputy_leader", "李副主任", unit_key="lidu_street", since=TODAY - dt.timedelta(days=30))
    appoint("lidu", "deputy_leader", "陈副主任", unit_key="lidu_street", since=TODAY - dt.timedelta(days=5))
    # The main leader is one person: a new one ends the old post.
    appoint("lidu", "main_leader", "刘主任", unit_key="lidu_street", since=TODAY - dt.timedelta(days=5))
    db.session.commit()
    street = _unit("lidu_street")
    assert sorted(p.holder_name for p in posts_of(unit=street) if p.tier_key == "deputy_leader") == [
        "李副主任", "陈副主任"]
    assert [p.holder_name for p in posts_of(unit=street) if p.tier_key == "main_leader"] == ["刘主任"]
    # The export lists both deputies; importing it changes nothing, and a third deputy row adds a third.
    exported = _export(office)
    rows = list(openpyxl.load_workbook(io.BytesIO(exported), read_only=True)["posts"].values)
    assert sum(1 for r in rows if r[0] == "deputy_leader") == 2
    before = _snapshot()
    _imported(office, exported, "org.xlsx")
    db.session.expire_all()
    assert _snapshot() == before
    content = _edited(exported, {"posts": [{"tier": "deputy_leader", "unit": "lidu_street", "holder_name": "周副主任",
                                            "started_on": TODAY}]})
    _imported(office, content, "org.xlsx")
    db.session.expire_all()
    assert sorted(p.holder_name for p in posts_of(unit=street) if p.tier_key == "deputy_leader") == [
        "周副主任", "李副主任", "陈副主任"]


def test_a_subtree_manager_cannot_hand_out_reach_it_does_not_have(subtree_managers, client):
    """Linking an account to a post gives the tier's role: only within both the post's area and unit, and a
    district-wide role only by a district-wide manager."""
    from server.core.errors import PermissionDenied
    from server.org.models import Post as PostModel
    from server.org.posts import edit_post

    head = make_user("head", roles=(("lidu", "unit_head", "shilong"),))
    make_user("friend")
    # A department head posted over a Shilong area but for the safety office: half outside Shilong's reach.
    odd = appoint("lidu", "department_head", "外单位", area_key="shilong_town", unit_key="safety_office",
                  since=TODAY - dt.timedelta(days=3))
    keeper = db.session.scalar(db.select(PostModel).filter_by(holder_name="张三"))
    db.session.commit()
    with pytest.raises(PermissionDenied):
        edit_post(head, odd, title=None, phone=None, duties=[], username="friend")
    # Its own segment keeper (a posted role): fine.
    assert edit_post(head, keeper, title=None, phone=None, duties=["每天巡查"], username="friend").user.username == \
        "friend"
    # A community head's role reaches the subtree only; the main leader's reaches the district: refused.
    login(client, "head")
    token = csrf_token(client, "/org/lidu/posts/new")
    response = client.post("/org/lidu/posts/new", data={
        "csrf_token": token, "tier": "main_leader", "unit": "shilong", "holder_name": "假主任",
        "username": "friend", "started_on": TODAY.isoformat()})
    assert response.status_code == 403


def test_ending_one_deputy_does_not_wait_for_another(office):
    from server.org.models import Post as PostModel
    from server.org.posts import end_post

    appoint("lidu", "deputy_leader", "李副主任", unit_key="lidu_street", since=TODAY - dt.timedelta(days=30))
    appoint("lidu", "deputy_leader", "陈副主任", unit_key="lidu_street", since=TODAY - dt.timedelta(days=20))
    db.session.commit()
    admin = db.session.scalar(db.select(User).filter_by(username="office"))
    li = db.session.scalar(db.select(PostModel).filter_by(holder_name="李副主任"))
    assert end_post(admin, li, TODAY - dt.timedelta(days=1)).ended_on == TODAY - dt.timedelta(days=1)


def test_an_import_lists_at_most_two_hundred_problems(office):
    exported = _export(office)
    content = _edited(exported, {"units": [{"key": f"bad_{i}", "kind": "village", "name_zh": "村"}
                                           for i in range(250)]})
    page = _import(office, content, "org.xlsx").page
    assert page.count("village") <= 201 and ("50 more problems" in page or "另有50个问题" in page)
