"""Shared by the security tests: one world per test module (rolled back at its end), logged-in clients per role,
a fingerprint of every table, and a valid request for every state-changing route."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from server.extensions import db
from tests.support.factories import (  # noqa: F401 - formdata, photo and rolled_back are used from here too
    PASSWORD,
    formdata,
    give_missing_marks,
    load_demo,
    login,
    make_user,
    photo,
    rolled_back,
    scheme_files,
    unit_id,
)
from tests.support.images import jpeg

# The columns of the access matrix: anonymous, then users from the least to the most powerful.
ROLES = ("anon", "nobody", "staff", "head", "assessor", "leader", "office", "admin")
OTHER = "chengguan"  # a second district where none of Lidu's people holds a role
CSRF_RE = re.compile(r'name="(?:[\w-]+-)?csrf_token"[^>]*value="([^"]+)"')


def csrf_of(client: FlaskClient, path: str) -> str:
    """The CSRF token of the first form on a page (any prefix: the moderation queue prefixes its forms)."""
    page = client.get(path)
    match = CSRF_RE.search(page.get_data(as_text=True))
    assert match, f"no csrf token on {path} ({page.status_code})"
    return match.group(1)


# -- every table, fingerprinted ------------------------------------------------------------------------------


def table_digest() -> dict[str, str]:
    """A fingerprint of every table's rows (all columns, in key order): an update shows, not only an insert."""
    out = {}
    for name, table in sorted(db.metadata.tables.items()):
        rows = db.session.execute(db.select(table).order_by(*table.primary_key.columns or table.columns)).all()
        out[name] = hashlib.sha256(repr([tuple(map(repr, row)) for row in rows]).encode()).hexdigest()
    return out


def changed_tables(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return sorted(name for name in before if before[name] != after.get(name))


# -- the world ---------------------------------------------------------------------------------------------------


@dataclass
class World:
    """Ids of real objects in two communities (`_s`: Shilong, where `head` works; `_z`: Zhiyuan, where `staff`
    works) and in the other district, and one logged-in client per role."""

    ids: dict[str, Any]
    clients: dict[str, FlaskClient] = field(default_factory=dict)

    def url(self, template: str) -> str:
        return template.format(**self.ids)


OTHER_FORM = """\
kind: form
id: chengguan_only
name: {zh: 城关专用登记表, en: A Chengguan form}
fields:
  - {id: note, type: text, label: {zh: 备注, en: Note}}
"""


def _load_other() -> Any:
    """Chengguan as shipped, with a form of its own (the built-in forms are shared, stored once for every district)."""
    from server.definitions.service import activate_scheme_version, load_scheme

    files = dict(scheme_files(OTHER))
    name = next(k for k in files if k.endswith("scheme.yaml"))
    listed = "forms: [patrol_log, problem_report, evidence]"
    assert listed in files[name]
    files[name] = files[name].replace(listed, "forms: [patrol_log, problem_report, evidence, chengguan_only]")
    files["chengguan_only.yaml"] = OTHER_FORM
    version, _ = load_scheme(files)
    activate_scheme_version(version.id)
    db.session.commit()
    return version


def _report_case(user: Any, area_key: str, token: str, description: str = "垃圾堆积") -> Any:
    from server.forms import service as forms
    from server.forms.engine import form_spec
    from server.forms.models import Submission
    from server.workflow import service as workflow

    version = forms.form_version("lidu", "problem_report")
    result = forms.post_form(user, "lidu", form_spec(version.data), version, formdata(
        _token=token, category="piled_rubbish", area=area_key, description=description,
        photos_before=photo(), size_m3="1", urgency="normal"))
    assert isinstance(result, Submission), result.errors
    return workflow.open_case(user, "lidu", result)


def _public_report(area_key: str, token: str, description: str = "商户占道堆放货物") -> Any:
    from server.public import service as public
    from server.public.models import PublicReport

    result = public.submit_report("lidu", formdata(
        _token=token, category="random_piling", **{"location-area": area_key}, description=description,
        photos_before=photo()), public.Reporter(name="张三", phone="13800138000", address="10.0.0.1"))
    assert isinstance(result, PublicReport), getattr(result, "errors", result)
    return result


@contextmanager
def quick_passwords() -> Iterator[None]:
    """Hash the test users' passwords with one round: scrypt costs a tenth of a second per user and per login, and
    these tests are about what a logged-in user may do, not about passwords (tests/integration/test_auth.py)."""
    from unittest import mock

    from werkzeug.security import generate_password_hash

    def quick(password: str) -> str:
        return generate_password_hash(password, method="pbkdf2:sha256:1")

    with mock.patch("server.auth.models.generate_password_hash", quick):
        yield


def build_world(app: Flask, *, other: bool = True) -> World:
    """Lidu (the demo) with people in every role it defines and objects in Shilong and Zhiyuan; with `other`,
    Chengguan beside it."""
    from server.assessment import appeals
    from server.assessment import service as assessment
    from server.auth.models import RoleAssignment
    from server.calendar.models import CalendarDay
    from server.definitions.service import current_version
    from server.org.models import Area
    from server.org.posts import appoint
    from server.public import service as public
    from server.public.models import PublicReport

    ids: dict[str, Any] = {"lidu": "lidu", "other": OTHER}
    with app.test_request_context(), quick_passwords():  # forms are request-bound (CSRF, language), as in the app
        lidu = load_demo()
        if other:
            ids["version_other"] = _load_other().id
            ids["form_other"] = current_version(OTHER).member("form", "chengguan_only").id
            ids["definition_other"] = current_version(OTHER).member("score_sheet", "chengguan_monthly").id
        users = {
            "nobody": make_user("nobody"),
            "staff": make_user("staff", roles=(("lidu", "staff", "zhiyuan"),)),
            "head": make_user("head", roles=(("lidu", "unit_head", "shilong"),)),
            "assessor": make_user("assessor", roles=(("lidu", "assessor", None),)),
            "leader": make_user("leader", roles=(("lidu", "leader", None),)),
            "office": make_user("office", roles=(("lidu", "office_admin", None),)),
            "admin": make_user("admin", admin=True),
            "spare": make_user("spare", roles=(("lidu", "unit_head", "zhiyuan"),)),
        }
        ids.update({f"user_{k}": u.id for k, u in users.items()})
        ids["assignment"] = db.session.scalar(db.select(RoleAssignment.id).filter_by(user_id=users["spare"].id))
        for side, unit, road in (("s", "shilong", "shilong_old_street"), ("z", "zhiyuan", "zhiyuan_road")):
            ids[f"unit_{side}"] = unit_id("lidu", unit)
            ids[f"area_{side}"] = db.session.scalar(db.select(Area.id).filter_by(scheme_key="lidu", key=road))
            ids[f"road_{side}"] = road
            ids[f"post_{side}"] = appoint("lidu", "segment_keeper", f"巡查员{side}", area_key=road,
                                          since=dt.date(2026, 1, 1), phone="13900000000", duties=["巡查"]).id
            case = _report_case(users["leader"], road, f"case-{side}")
            ids[f"case_{side}"], ids[f"record_{side}"] = case.id, case.submission_id
            ids[f"upload_{side}"] = int(case.submission.data["photos_before"][0])
            report = _public_report(road, f"public-{side}")
            ids[f"report_{side}"], ids[f"code_{side}"] = report.id, report.code
            ids[f"public_upload_{side}"] = int(report.case.submission.data["photos_before"][0])
        public.moderate(users["office"], db.session.get(PublicReport, ids["report_s"]), "approved", expose=True)
        # September published (bulletins, comparisons); October open to appeals, one appeal per community.
        published = assessment.open_period(users["office"], "lidu", "lidu_monthly", dt.date(2026, 9, 1))
        give_missing_marks(users["office"], published)
        assessment.publish(users["office"], published, close_appeals=True)
        appealing = assessment.open_period(users["office"], "lidu", "lidu_monthly", dt.date(2026, 10, 1))
        appeals.open_appeals(users["office"], appealing)
        shilong, zhiyuan = (db.session.get(Area, ids[f"area_{s}"]).unit for s in "sz")
        ids["appeal_s"] = appeals.file_appeal(users["head"], appealing, shilong, "hotspots", "案例已补充").id
        ids["appeal_z"] = appeals.file_appeal(users["spare"], appealing, zhiyuan, "hotspots", "已整改").id
        ids["period_pub"], ids["period"] = published.id, appealing.id
        ids["period_open"] = assessment.open_period(users["office"], "lidu", "lidu_monthly", dt.date(2026, 8, 1)).id
        db.session.add(CalendarDay(day=dt.date(2026, 12, 31), working=False, name="调休"))
        ids["day"] = "2026-12-31"
        ids["version_lidu"] = lidu.id
        ids["form_lidu"] = current_version("lidu").member("form", "patrol_log").id
        ids["form_dispatch"] = current_version("lidu").member("form", "dispatch").id
        db.session.commit()
        ids["job"] = _finished_job(app, users["office"])
    world = World(ids)
    for role in ROLES:
        client = app.test_client()
        if role != "anon":
            response = login(client, role, PASSWORD)
            assert response.status_code == 302, f"{role} could not log in"
        world.clients[role] = client
    return world


def _finished_job(app: Flask, user: Any) -> int:
    """A batch of Shilong's boards printed for the office: its page and its file."""
    from server.boards.printing import KIND
    from server.jobs import queue
    from server.jobs.service import start_job

    with app.test_request_context():
        job = start_job(user, KIND, "lidu", {"unit": "shilong", "size": "a3"})
        db.session.commit()
    queue.run_queued(app)
    return job.id


# -- one valid request per state-changing route ----------------------------------------------------------------------

CSRF = "{csrf}"  # a value replaced by the session's CSRF token (where a form names its token field itself)


def _file(data: bytes, name: str) -> tuple[io.BytesIO, str]:
    return io.BytesIO(data), name


def _report_fields(area_key: str) -> dict[str, Any]:
    return {"_token": f"t-{area_key}", "_action": "submit", "category": "piled_rubbish", "area": area_key,
            "description": "垃圾堆积", "photos_before": _file(jpeg(), "p.jpg"), "size_m3": "1", "urgency": "normal"}


def _patrol_log_renamed() -> str:
    import json

    from ruamel.yaml import YAML

    from tests.support.factories import ROOT

    data = YAML(typ="safe").load((ROOT / "form_definitions" / "patrol_log.yaml").read_text("utf-8"))
    data["name"] = {"zh": "巡查记录", "en": "Patrol record"}
    # (POSTS values are str.format-ed: the JSON's braces are doubled)
    return json.dumps(data, ensure_ascii=False).replace("{", "{{").replace("}", "}}")


def _org_units_csv() -> bytes:
    """The demo's units sheet with a unit added (a new draft of the scheme)."""
    from ruamel.yaml import YAML

    from tests.support.factories import DEMO

    rows = ["key,kind,parent,name_zh"]

    def walk(units: list, parent: str) -> None:
        for unit in units:
            name = unit["name"]["zh"] if isinstance(unit["name"], dict) else unit["name"]
            rows.append(f"{unit['id']},{unit['kind']},{parent},{name}")
            walk(unit.get("children", []), unit["id"])

    walk(YAML(typ="safe").load((DEMO / "scheme.yaml").read_text("utf-8"))["units"], "")
    rows.append("new_community,community,lidu_street,新社区")
    return ("\n".join(rows) + "\n").encode()


def _board_changed(note: str = "公示牌") -> bytes:
    from tests.support.factories import demo_files

    files = demo_files()
    text = files[next(k for k in files if k.endswith("board.yaml"))]
    return (text + f"\n# {note}\n").encode()


def _scheme_upload() -> list[tuple[io.BytesIO, str]]:
    from tests.support.factories import demo_files

    files = dict(demo_files())
    name = next(k for k in files if k.endswith("scheme.yaml"))
    files[name] = files[name].replace("在一线、研究问题在一线", "在一线，研究问题在一线", 1)  # a new version
    return [_file(text.encode(), key.rsplit("/", 1)[-1]) for key, text in files.items()]


def _xlsform() -> tuple[io.BytesIO, str]:
    from tests.unit.test_xlsform import HEADERS, row, workbook

    return _file(workbook([HEADERS, row("text", "note", "备注", "Note")], None, [["form_id"], ["tiny"]]), "t.xlsx")


def _units_csv() -> tuple[io.BytesIO, str]:
    from server.org.spreadsheet import export_org

    content, _mime, _name = export_org(None, "lidu", "csv", "units")
    return _file(content, "units.csv")


def _areas_csv_text() -> str:
    """The places import's confirmed rows: the district's areas as the `areas` sheet."""
    from server.org.spreadsheet import export_org

    content, _mime, _name = export_org(None, "lidu", "csv", "areas")
    # (the posted values are filled in with the world's ids by str.format: the shapes' braces are doubled)
    return content.decode("utf-8-sig").replace("{", "{{").replace("}", "}}")


def _public_form() -> dict[str, Any]:
    from server.public import service as public

    return {"_token": "public-new", "_stamp": public.form_stamp(), "website": "", "_action": "submit",
            "category": "random_piling", "location-area": "shilong_old_street", "description": "商户占道",
            "photos_before": _file(jpeg(), "p.jpg")}


# endpoint → (URL, the form an allowed user sends). Built when needed: files are read once, some values (the
# public form's time stamp, the export to import again) come from the app.
POSTS: dict[str, tuple[str, Any]] = {
    "account.login": ("/login", lambda: {"username": "admin", "password": PASSWORD}),
    "account.logout": ("/logout", dict),
    "account.change_password": ("/account/password", lambda: {
        "current": PASSWORD, "new": "another-battery-staple", "confirm": "another-battery-staple"}),
    "web.set_language": ("/lang/en", lambda: {"next": "/"}),
    "admin.create_user": ("/admin/users", lambda: {"username": "newcomer", "display_name": "新同事"}),
    "admin.toggle_user": ("/admin/users/{user_spare}/active", dict),
    "admin.reset_user_password": ("/admin/users/{user_spare}/reset-password", dict),
    "admin.grant_user_role": ("/admin/users/{user_spare}/roles", lambda: {"scheme_role": "lidu:assessor", "unit": ""}),
    "admin.revoke_user_role": ("/admin/roles/{assignment}/revoke", dict),
    "admin.calendar": ("/admin/calendar", lambda: {"day": "2026-12-30", "working": "y", "name": "调休上班"}),
    "admin.reporters": ("/admin/reporters", lambda: {"scheme": "lidu", "phone": "13800138000", "action": "find"}),
    "events.retry": ("/admin/events/szcg/retry", dict),
    "admin.delete_calendar_day": ("/admin/calendar/{day}/delete", dict),
    "admin.calendar_import": ("/admin/calendar/import", lambda: {
        "action": "import", "filename": "2027.csv",
        "content": base64.b64encode("start,end,kind,name\n2027-01-01,2027-01-03,放假,元旦\n".encode()).decode()}),
    "admin.calendar_year": ("/admin/calendar/year/2027", lambda: {"complete": "y"}),
    "admin.upload_scheme": ("/admin/schemes/upload", lambda: {"files": _scheme_upload(), "note": "措辞"}),
    "admin.activate_version": ("/admin/schemes/versions/{version_lidu}/activate", dict),
    "editors.upload_file": ("/admin/schemes/versions/{version_lidu}/file", lambda: {
        "file": _file(_board_changed("上传的公示牌"), "board.yaml"), "note": "公示牌措辞"}),
    "editors.edit_source": ("/admin/schemes/versions/{version_lidu}/source/board.yaml", lambda: {
        "text": _board_changed().decode().replace("{", "{{").replace("}", "}}"), "note": "公示牌"}),
    "editors.edit_definition": ("/admin/schemes/versions/{version_lidu}/edit/form/patrol_log", lambda: {
        "data": _patrol_log_renamed(), "note": "巡查日志"}),
    "wizard.new_scheme": ("/admin/schemes/new", lambda: {
        "template": "lidu", "key": "xinqiao", "name_zh": "新桥街道", "short_zh": "新桥"}),
    "wizard.organisation": ("/admin/schemes/versions/{version_lidu}/organisation", lambda: {
        "workbook": _file(_org_units_csv(), "units.csv")}),
    "editors.dry_run": ("/admin/schemes/versions/{version_lidu}/dry-run", lambda: {"month": "2026-10"}),
    "editors.preview_board": ("/admin/schemes/versions/{version_lidu}/preview-board", lambda: {
        "data": '{{"kind": "board", "id": "b", "name": "牌", "title": "{{area}}路长公示牌", "tiers": []}}'}),
    "editors.check": ("/admin/schemes/versions/{version_lidu}/check", lambda: {
        "path": "board.yaml", "text": "kind: board"}),
    "editors.preview_form": ("/admin/schemes/versions/{version_lidu}/preview-form", lambda: {
        "data": '{{"kind": "form", "id": "x", "name": "试", '
                '"fields": [{{"id": "a", "type": "text", "label": "甲"}}]}}'}),
    # (a preview keeps no file, so a form with a required photo could never be sent whole: the dispatch form)
    "admin.preview_form": ("/admin/definitions/{form_dispatch}/preview", lambda: {
        "_token": "preview", "_action": "submit", "target_unit": "shilong", "instructions": "请一天内清理"}),
    "admin.import_xlsform": ("/admin/forms/import", lambda: {"workbook": _xlsform()}),
    "org.new_unit": ("/org/{lidu}/units/new", lambda: {
        "key": "new_community", "kind": "community", "parent": "lidu_street", "name_zh": "新社区", "active": "y"}),
    "org.edit_unit": ("/org/units/{unit_s}/edit", lambda: {
        "kind": "community", "parent": "lidu_street", "name_zh": "石龙社区", "name_en": "Shilong neighbourhood",
        "difficulty": "2", "active": "y"}),
    "org.new_area": ("/org/{lidu}/areas/new", lambda: {
        "key": "new_zone", "kind": "zone", "parent": "shilong_town", "unit": "shilong", "name_zh": "新片区",
        "active": "y"}),
    "org.edit_area": ("/org/areas/{area_s}/edit", lambda: {
        "kind": "road", "parent": "shilong_town", "unit": "shilong", "name_zh": "石龙老街",
        "name_en": "Shilong Old Street", "from_zh": "石龙桥头", "to_zh": "石龙农贸市场", "length_m": "850",
        "active": "y"}),
    "org.new_post": ("/org/{lidu}/posts/new", lambda: {
        "tier": "segment_keeper", "area": "shilong_old_street_south", "unit": "", "holder_name": "新巡查员",
        "started_on": "2026-11-01"}),
    "org.edit_post": ("/org/posts/{post_s}/edit", lambda: {"title": "巡查员", "phone": "13900000001",
                                                           "duties": "巡查\n上报", "username": ""}),
    "org.end_post": ("/org/posts/{post_z}/end", lambda: {"ended_on": "2026-11-30"}),
    "org.import_spreadsheet": ("/org/{lidu}/import", lambda: {"upload": _units_csv(), "sheet": "units"}),
    "org.import_places": ("/org/{lidu}/places", lambda: {"rows": _areas_csv_text()}),
    "org.start_export": ("/org/{lidu}/export", lambda: {"format": "csv", "sheet": "posts"}),
    "forms.fill": ("/f/{lidu}/problem_report/new", lambda: _report_fields("shilong_old_street")),
    "workflow.report": ("/cases/{lidu}/report", lambda: _report_fields("zhiyuan_road")),
    "boards.start_print": ("/b/{lidu}/print", lambda: {"unit": "shilong", "size": "a3"}),
    "workflow.start_ledger_export": ("/cases/{lidu}/ledger/export", lambda: {
        "start": "2026-11-01", "end": "2026-11-30", "by": "unit", "format": "pdf"}),
    "assessment.bulletin_pdf": ("/assess/period/{period_pub}/bulletin.pdf", lambda: {"revision": "1"}),
    "workflow.act": ("/cases/case/{case_s}/do/assign", lambda: {
        "_token": "assign", "_action": "submit", "target_unit": "shilong", "instructions": "请一天内清理"}),
    "assessment.periods": ("/assess/{lidu}/", lambda: {"sheet": "lidu_monthly", "day": "2026-07-01"}),
    "assessment.step": ("/assess/period/{period_open}/appeals", lambda: {"version": ""}),
    "assessment.draft_again": ("/assess/period/{period}/draft", lambda: {}),
    "assessment.start_compare": ("/assess/period/{period_pub}/compare", lambda: {"version": "{version_lidu}"}),
    "assessment.marks": ("/assess/period/{period}/unit/{unit_s}/hotspots", lambda: {
        "r_below_quality": "1", "reason": "资料不全"}),
    "assessment.marks_grid": ("/assess/period/{period}/marks", lambda: {
        "m-{unit_s}-hotspots-below_quality": "2", "reason-{unit_s}": "资料仍不全"}),  # not what .marks entered
    "assessment.appeal": ("/assess/period/{period}/appeal/{unit_s}", lambda: {"item": "leadership",
                                                                              "text": "巡查记录已补充"}),
    "assessment.decide": ("/assess/appeal/{appeal_s}/decide", lambda: {"decision": "rejected", "note": "未见补充"}),
    "moderation.decide": ("/moderation/report/{report_z}", lambda: {
        "r{report_z}-decision": "approved", "r{report_z}-note": "已核实", "r{report_z}-csrf_token": CSRF}),
    "public.report": ("/p/{lidu}/report", _public_form),
    "public.lookup": ("/p/track", lambda: {"code": "{code_s}"}),
    "public.step": ("/p/track/{code_s}/do/reopen", lambda: {"version": ""}),
    "public.followup": ("/p/track/{code_z}/followup", lambda: {"solved": "yes", "satisfaction": "satisfied",
                                                               "note": "很快"}),
}


def post_form(app: Flask, world: World, endpoint: str, token: str | None) -> dict[str, Any]:
    """The valid form of `endpoint` for this world, with the CSRF token (none when `token` is None)."""
    with app.test_request_context():
        fields = POSTS[endpoint][1]()
    data = {world.url(key): world.url(value) if isinstance(value, str) and value != CSRF else value
            for key, value in fields.items()}
    named = [key for key, value in data.items() if value == CSRF]
    for key in named:
        data.pop(key)
    if token is not None:
        for key in named or ["csrf_token"]:
            data[key] = token
    return data
