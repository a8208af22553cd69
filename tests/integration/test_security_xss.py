"""XSS: a payload (`<script>alert(1)</script><img src=x onerror=alert(2)>"'&`, tagged with where it was typed)
planted in every text an administrator or a user can enter, then every page that shows it fetched: the markup
never reaches a page unescaped, and the escaped text does (a page that dropped the text would not pass). The
PDFs (the board poster, the assessment bulletin, the ledger) show it as literal text.

Where the texts come from:
- an administrator uploads a copy of the demo district through /admin/schemes, with the payload in every text of
  the scheme, its board and score sheet and of every built-in form, workflow and category list it uses (the
  scheme's own copies override the built-ins): unit, area, role, tier, category names, duties, form labels and
  hints, choice labels, state and step names, board titles and footers, score sheet items and rules…
  (tests/support/xss.py tags each text `<kind>:<lists>.<key>`, e.g. `scheme:units.children.name`);
- an administrator on the pages: a user's display name, a post's holder, title and duties, a unit and an area
  made on the organisation pages, a calendar day's name, a version's note;
- users on the pages: a problem report's description and address, the dispatch instructions, the rectification
  and the verification notes, a patrol log's findings, an assessor's reason, an appeal, its decision, a correction;
- the public: a report's description, address and the reporter's name; a moderator's note;
- and what pages echo back: a failed log-in's username, a tracking code, a broken upload's lines, an XLSForm's
  labels, query parameters.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator

import pypdf
import pytest
from flask import Flask
from flask.testing import FlaskClient

from server.extensions import db
from tests.support.clock import NOW, TODAY, ZONE, month_start
from tests.support.factories import login, make_user
from tests.support.images import jpeg
from tests.support.jobs import run_job_from, run_started
from tests.support.security import csrf_of, quick_passwords, rolled_back
from tests.support.xss import PAYLOAD, SHORT, compact, planted, poisoned_lidu, problems

Ids = dict[str, object]


def _post(client: FlaskClient, url: str, data: dict, *, token_from: str | None = None, expect: int = 303):
    """A form sent as a browser sends it (with the CSRF token of the page it is on); returns the response."""
    data = {"csrf_token": csrf_of(client, token_from or url), **data}
    response = client.post(url, data=data, content_type="multipart/form-data")
    assert response.status_code == expect, (url, response.status_code, response.get_data(as_text=True)[-2000:])
    return response


def _id(response, pattern: str) -> int:  # noqa: ANN001
    return int(re.search(pattern, response.headers["Location"]).group(1))


def _photo(name: str = "p.jpg") -> tuple[io.BytesIO, str]:
    return io.BytesIO(jpeg()), name


def _plant_everything(app: Flask) -> tuple[Ids, dict[str, FlaskClient]]:
    ids: Ids = {}
    clients = {role: app.test_client() for role in ("admin", "office", "head", "assessor", "reporter", "visitor")}
    with app.app_context(), quick_passwords():
        make_user("admin", admin=True)
    login(clients["admin"], "admin")
    admin = clients["admin"]
    # The district's texts, uploaded and put in force by an administrator.
    upload = _post(admin, "/admin/schemes/upload", {"files": [(io.BytesIO(poisoned_lidu()), "lidu.zip")],
                                                    "note": planted("version-note")}, expect=302)
    ids["version"] = _id(upload, r"/versions/(\d+)")
    _post(admin, f"/admin/schemes/versions/{ids['version']}/activate", {},
          token_from=f"/admin/schemes/versions/{ids['version']}", expect=302)
    with app.app_context(), quick_passwords():
        from server.org.models import Area, Unit

        make_user("office", roles=(("lidu", "office_admin", None),))
        make_user("head", roles=(("lidu", "unit_head", "shilong"),))
        make_user("assessor", roles=(("lidu", "assessor", None),))
        ids["shilong"] = db.session.scalar(db.select(Unit.id).filter_by(scheme_key="lidu", key="shilong"))
        ids["road"] = db.session.scalar(db.select(Area.id).filter_by(scheme_key="lidu", key="shilong_old_street"))
    for role in ("office", "head", "assessor"):
        login(clients[role], role)
    office, head = clients["office"], clients["head"]

    # An account made on the Users page, with a display name; it reports problems and files patrols.
    created = _post(admin, "/admin/users", {"username": "reporter", "display_name": planted("user-name")},
                    expect=200).get_data(as_text=True)
    password = re.search(r'data-testid="new-password">([^<]+)<', created).group(1)
    with app.app_context():
        from server.auth.models import User

        ids["reporter"] = db.session.scalar(db.select(User.id).filter_by(username="reporter"))
    _post(admin, f"/admin/users/{ids['reporter']}/roles", {"scheme_role": "lidu:leader", "unit": ""},
          token_from="/admin/users", expect=302)
    assert login(clients["reporter"], "reporter", password).status_code == 302
    reporter = clients["reporter"]
    _post(admin, "/admin/calendar", {"day": "2026-12-30", "name": planted("calendar", SHORT)}, expect=302)

    # The organisation pages.
    _post(office, "/org/lidu/posts/new", {
        "tier": "segment_keeper", "area": "shilong_old_street", "unit": "", "holder_name": planted("post-holder"),
        "title": planted("post-title"), "duties": planted("post-duty"), "username": "reporter",
        "started_on": "2026-01-01"}, expect=302)
    new_unit = _post(office, "/org/lidu/units/new", {"key": "xss_unit", "kind": "community", "parent": "lidu_street",
                                                     "name_zh": planted("org-unit"), "active": "y"}, expect=302)
    ids["new_unit"] = _id(new_unit, r"/units/(\d+)")
    new_area = _post(office, "/org/lidu/areas/new", {
        "key": "xss_zone", "kind": "zone", "parent": "shilong_town", "unit": "shilong",
        "name_zh": planted("org-area"), "description_zh": planted("org-area-description"), "active": "y"},
        expect=302)
    ids["new_area"] = _id(new_area, r"/areas/(\d+)")

    # A case, reported, assigned, rectified and closed, each step with its note.
    report = _post(reporter, "/cases/lidu/report", {
        "_token": "r1", "_action": "submit", "category": "piled_rubbish", "area": "shilong_old_street",
        "description": planted("case-description"), "address": planted("case-address"),
        "photos_before": _photo(), "size_m3": "1", "urgency": "normal"})
    ids["case"] = case = _id(report, r"/case/(\d+)")
    for client, step, fields in (
            (office, "assign", {"target_unit": "shilong", "instructions": planted("dispatch")}),
            (head, "rectify", {"action_taken": planted("rectify"), "photos_after": _photo("a.jpg"),
                               "finished_at": f"{NOW.astimezone(ZONE):%Y-%m-%dT%H:%M}"}),
            (office, "close", {"verdict": "passed", "comment": planted("verify")})):
        _post(client, f"/cases/case/{case}/do/{step}", {"_token": step, "_action": "submit", **fields})
    patrol = _post(reporter, "/f/lidu/patrol_log/new", {
        "_token": "p1", "_action": "submit", "area": "shilong_old_street",
        "started_at": f"{NOW.astimezone(ZONE):%Y-%m-%dT%H:%M}",
        "participants": "2", "photos": _photo(), "findings": planted("patrol-findings"), "has_problems": "no"})
    ids["record"] = _id(patrol, r"/records/(\d+)")

    # A public report, its reporter's name seen by the moderator, approved with a note.
    visitor = clients["visitor"]
    form = visitor.get("/p/lidu/report").get_data(as_text=True)
    hidden = {name: re.search(rf'name="{name}"[^>]*value="([^"]*)"', form).group(1)
              for name in ("csrf_token", "_token", "_stamp")}
    public = visitor.post("/p/lidu/report", content_type="multipart/form-data", data={
        **hidden, "website": "", "_action": "submit", "category": "random_piling",
        "location-area": "shilong_old_street", "description": planted("public-description"),
        "address": planted("public-address"), "photos_before": _photo(), "reporter_name": planted("pn", SHORT),
        "reporter_phone": "13800138000"})
    assert public.status_code == 303, public.get_data(as_text=True)[-1500:]
    ids["code"] = public.headers["Location"].rsplit("/", 1)[1]
    with app.app_context():
        from server.public.models import PublicReport

        ids["report"] = report_id = db.session.scalar(db.select(PublicReport.id).filter_by(code=ids["code"]))
    _post(office, f"/moderation/report/{report_id}", {
        f"r{report_id}-decision": "approved", f"r{report_id}-expose": "y",
        f"r{report_id}-note": planted("moderation-note")}, token_from="/moderation/lidu/")

    # The assessment: a mark with its reason, an appeal and its decision, publication, a correction.
    opened = _post(office, "/assess/lidu/", {"sheet": "lidu_monthly", "day": "2026-10-01"})
    ids["period"] = period = _id(opened, r"/period/(\d+)")
    marks = f"/assess/period/{period}/unit/{ids['shilong']}/hotspots"
    _post(clients["assessor"], marks, {"r_below_quality": "1", "reason": planted("mark-reason")})
    _post(office, f"/assess/period/{period}/appeals", {"version": ""}, token_from=f"/assess/period/{period}")
    _post(head, f"/assess/period/{period}/appeal/{ids['shilong']}", {"item": "hotspots",
                                                                     "text": planted("appeal-text")})
    with app.app_context():
        from server.assessment.models import AssessmentAppeal

        appeal = db.session.scalar(db.select(AssessmentAppeal.id))
    _post(office, f"/assess/appeal/{appeal}/decide", {"decision": "rejected", "note": planted("appeal-note")},
          token_from=f"/assess/period/{period}")
    run_started(office, _post(office, f"/assess/period/{period}/publish", {  # a job, run here
        "version": "", "close_appeals": "y", "provisional": "y"}, token_from=f"/assess/period/{period}"))
    run_started(office, _post(office, marks, {"r_below_quality": "0", "reason": planted("correction-reason")}))
    with app.app_context():
        from server.org.models import Post
        from server.workflow.models import CaseEvent

        ids["post"] = db.session.scalar(db.select(Post.id).filter_by(holder_name=planted("post-holder")))
        steps = db.session.execute(db.select(CaseEvent.transition, CaseEvent.submission_id)
                                   .filter_by(case_id=case)).all()
        ids.update({f"step_{name or 'report'}": submission for name, submission in steps})
    # A second version, not in force, whose difference shows on its page.
    second = poisoned_lidu_with(planted("second-version"))
    upload = _post(admin, "/admin/schemes/upload", {"files": [(io.BytesIO(second), "lidu.zip")], "note": "v2"},
                   expect=302)
    ids["second"] = _id(upload, r"/versions/(\d+)")
    with app.app_context():
        from server.definitions.service import current_version

        version = current_version("lidu")
        ids["definition"] = version.member("form", "problem_report").id
        ids["scheme_definition"] = version.scheme_definition.id
    return ids, clients


def poisoned_lidu_with(extra: str) -> bytes:
    """The poisoned upload with one more change (the scheme's description), for a version page's diff."""
    import json
    import zipfile

    source = zipfile.ZipFile(io.BytesIO(poisoned_lidu()))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for info in source.infolist():
            text = source.read(info).decode()
            if info.filename.endswith("/scheme.json"):
                data = json.loads(text)
                data["description"] = {"zh": extra, "en": extra}
                text = json.dumps(data, ensure_ascii=False, indent=1)
            archive.writestr(info.filename, text)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def planted_world(base_app: Flask) -> Iterator[tuple[Ids, dict[str, FlaskClient]]]:
    base_app.config["FANGAN_MIN_FILL_SECONDS"] = 0
    try:
        with rolled_back(base_app):
            yield _plant_everything(base_app)
    finally:
        base_app.config.pop("FANGAN_MIN_FILL_SECONDS", None)


# -- the pages and the planted texts each must show ------------------------------------------------------------

UNIT = "scheme:units.children.name"  # Shilong, inside the street office
STREET = "scheme:units.name"
ROAD = "scheme:areas.children.name"  # Shilong Old Street, inside Shilong town
TOP_AREA = "scheme:areas.name"
TIER, DUTY = "scheme:tiers.name", "scheme:tiers.duties"
LABEL, HINT = "form:fields.label", "form:fields.hint"
SHEET_ITEM = "score_sheet:sections.items.name"

PAGES: list[tuple[str, str, list[str]]] = [
    # (who, page, the planted texts it must show)
    ("reporter", "/", ["scheme:name", "user-name"]),
    ("reporter", "/district/lidu", ["scheme:name", "scheme:description", TIER, "scheme:tiers.held_by",
                                    "scheme:patrol_rules.name", "form:name", "workflow:name", "score_sheet:name"]),
    ("office", "/org/lidu/units", [STREET, UNIT, "scheme:unit_kinds.name", "org-unit"]),
    ("office", "/org/units/{shilong}", [UNIT, TOP_AREA, "post-holder"]),
    ("office", "/org/units/{shilong}/edit", [UNIT]),
    ("office", "/org/lidu/areas", [TOP_AREA, ROAD, "scheme:area_kinds.name", "org-area"]),
    ("office", "/org/areas/{road}", [ROAD, "scheme:areas.children.from", "scheme:areas.children.to", "post-holder",
                                     TIER]),
    ("office", "/org/areas/{road}/edit", [ROAD, "scheme:areas.children.from"]),
    ("office", "/org/areas/{new_area}", ["org-area"]),
    ("office", "/org/areas/{new_area}/edit", ["org-area", "org-area-description"]),
    ("office", "/org/posts/{post}/edit", ["post-holder", "post-title", "post-duty", TIER]),
    ("office", "/org/lidu/posts", ["post-holder", "post-title", TIER, ROAD]),
    ("office", "/org/lidu/posts/new", [TIER, ROAD, UNIT]),
    ("reporter", "/f/lidu/", ["form:name"]),
    ("reporter", "/f/lidu/problem_report/new", [LABEL, HINT, "form:submit_label", "scheme:categories.name",
                                                "scheme:categories.children.name", ROAD, "form:fields.unit",
                                                "form:fields.choices.label"]),
    ("reporter", "/f/lidu/patrol_log/new", [LABEL, HINT, "form:fields.fields.label", ROAD]),
    ("reporter", "/f/records/{record}", [LABEL, "patrol-findings", ROAD, "user-name"]),
    ("office", "/f/lidu/patrol_log/records", ["form:name", "user-name", ROAD]),
    ("office", "/cases/lidu/?box=unit", []),  # the case is closed: not in an inbox
    ("office", "/cases/case/{case}", ["case-description", UNIT, ROAD, "workflow:states.name", "workflow:name",
                                      "workflow:transitions.name", "user-name"]),
    # each step's form, as its record (the case page links them)
    ("office", "/f/records/{step_report}", ["case-description", "case-address", LABEL, "form:fields.unit",
                                            "form:fields.choices.label", UNIT, ROAD, "user-name"]),
    ("office", "/f/records/{step_assign}", ["dispatch", LABEL]),
    ("office", "/f/records/{step_rectify}", ["rectify", LABEL]),
    ("office", "/f/records/{step_close}", ["verify", "form:fields.choices.label"]),
    ("office", "/cases/lidu/areas", [ROAD]),
    ("office", f"/cases/lidu/ledger?start={month_start(TODAY)}&end={TODAY}", [UNIT]),
    ("office", "/patrols/lidu/?show=all", ["scheme:patrol_rules.name", UNIT]),
    ("visitor", "/b/lidu/shilong_old_street", ["board:title", "board:subtitle", "board:footer", ROAD,
                                               "scheme:areas.children.from", UNIT, "post-holder", "post-title",
                                               "post-duty", TIER]),
    ("office", "/assess/lidu/", ["score_sheet:name"]),
    ("office", "/assess/period/{period}", [UNIT, SHEET_ITEM, "appeal-text", "appeal-note", "correction-reason",
                                           "score_sheet:grades.name"]),
    ("office", "/assess/period/{period}?revision=1", [UNIT, SHEET_ITEM]),
    ("office", "/assess/period/{period}/unit/{shilong}", [UNIT, SHEET_ITEM, "score_sheet:sections.items.rules.label",
                                                          "mark-reason", "correction-reason"]),
    ("office", "/assess/period/{period}/unit/{shilong}/hotspots", [UNIT, SHEET_ITEM,
                                                                   "score_sheet:sections.items.rules.label",
                                                                   "correction-reason"]),
    ("head", "/assess/period/{period}/appeal/{shilong}", [UNIT]),  # published: appeals closed, no form
    ("office", "/assess/period/{period}/bulletin", ["score_sheet:name", UNIT, "scheme:unit_groups.name",
                                                    "score_sheet:grades.name"]),
    ("office", "/assess/lidu/dashboard", [UNIT]),
    ("office", "/assess/period/{period}/compare", ["version-note"]),
    ("visitor", "/p/lidu/report", [LABEL, HINT, "scheme:categories.name", ROAD]),
    ("visitor", "/p/track/{code}", ["public-description", UNIT, ROAD, "workflow:states.public_name"]),
    ("visitor", "/p/lidu/exposed", ["public-description", UNIT]),
    # (the moderator's note and the reporter's follow-up note are shown on no page)
    ("office", "/moderation/lidu/?state=approved", ["public-description", UNIT]),
    ("admin", "/admin/users", ["user-name", "scheme:roles.name", UNIT]),
    ("admin", "/admin/audit/", ["user-name"]),
    ("admin", "/admin/schemes", ["version-note", "scheme:name"]),
    ("admin", "/admin/schemes/versions/{version}", ["version-note"]),
    ("admin", "/admin/schemes/versions/{second}", ["second-version"]),
    ("admin", "/admin/definitions/{definition}", [LABEL]),
    ("admin", "/admin/definitions/{definition}/preview", [LABEL, HINT]),
]
SHORT_PAGES: list[tuple[str, str, list[str]]] = [  # texts typed into fields too short for the whole payload
    ("office", "/moderation/lidu/?state=approved", ["pn"]),
    ("admin", "/admin/calendar", ["calendar"]),
]


def test_planted_texts_are_shown_escaped_on_every_page(planted_world: tuple[Ids, dict[str, FlaskClient]]):
    ids, clients = planted_world
    failures = []
    for pages, payload in ((PAGES, PAYLOAD), (SHORT_PAGES, SHORT)):
        for role, template, tags in pages:
            url = template.format(**ids)
            response = clients[role].get(url)
            if response.status_code != 200:
                failures.append(f"{role} {url}: {response.status_code}")
                continue
            failures += [f"{role} {url}: {p}" for p in problems(response.get_data(as_text=True), tags,
                                                                   payload=payload)]
    assert not failures, "\n".join(failures)


def _pdf_text(data: bytes) -> str:
    return compact("".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(data)).pages))


# A PDF at its address, or one a page's button makes as a job: (the POST, its form, the page it is sent from).
BULLETIN_JOB = ("/assess/period/{period}/bulletin.pdf", {}, "/assess/period/{period}/bulletin")
LEDGER_JOB = ("/cases/lidu/ledger/export", {"start": str(month_start(TODAY)), "end": str(TODAY), "format": "pdf"},
              "/cases/lidu/ledger")


@pytest.mark.parametrize(("who", "template", "tags"), [
    ("visitor", "/b/lidu/shilong_old_street.pdf", ["board:footer", "post-holder", "post-duty"]),
    ("office", BULLETIN_JOB, ["score_sheet:name"]),
    ("office", LEDGER_JOB, []),
])
def test_pdfs_print_the_payload_as_text(planted_world: tuple[Ids, dict[str, FlaskClient]], who: str,
                                        template: str | tuple[str, dict, str], tags: list[str]):
    """Markup interpreted by the PDF renderer would vanish (a script) or be fetched (an image): as text it stays."""
    ids, clients = planted_world
    if isinstance(template, tuple):
        url, form, page = template
        printed = run_job_from(clients[who], url.format(**ids), form, token_from=page.format(**ids))
        assert printed.mimetype == "application/pdf", printed.page
        data = printed.content
    else:
        response = clients[who].get(template.format(**ids))
        assert response.status_code == 200 and response.mimetype == "application/pdf"
        data = response.data
    text = _pdf_text(data)
    assert compact(PAYLOAD) in text  # at least one planted text (a unit's or a road's name, say), printed as is
    for tag in tags:
        assert compact(planted(tag)) in text, tag


def test_what_pages_echo_back_is_escaped(planted_world: tuple[Ids, dict[str, FlaskClient]], base_app: Flask):
    """A failed log-in's username, a mistyped tracking code, a broken upload's lines, an XLSForm's labels."""
    ids, clients = planted_world
    anonymous = base_app.test_client()
    failures = []
    echoed = anonymous.post("/login", data={"csrf_token": csrf_of(anonymous, "/login"),
                                            "username": planted("login", SHORT), "password": "wrong"})
    failures += [f"login: {p}" for p in problems(echoed.get_data(as_text=True), ["login"], payload=SHORT)]
    looked_up = anonymous.post("/p/track", data={"csrf_token": csrf_of(anonymous, "/p/track"),
                                                 "code": planted("code", SHORT)})
    assert looked_up.status_code == 400
    failures += [f"lookup: {p}" for p in problems(looked_up.get_data(as_text=True), ["code"], payload=SHORT)]
    admin = clients["admin"]
    broken = f"kind: scheme\nid: broken\nname: {planted('upload-line')}\n"
    uploaded = admin.post("/admin/schemes/upload", content_type="multipart/form-data", data={
        "csrf_token": csrf_of(admin, "/admin/schemes/upload"), "files": [(io.BytesIO(broken.encode()), "b.yaml")]})
    assert uploaded.status_code == 400
    failures += [f"upload: {p}" for p in problems(uploaded.get_data(as_text=True), ["upload-line"])]
    from tests.unit.test_xlsform import HEADERS, row, workbook

    book = workbook([HEADERS, row("text", "note", planted("xlsform-zh"), planted("xlsform-en"))])
    converted = admin.post("/admin/forms/import", content_type="multipart/form-data", data={
        "csrf_token": csrf_of(admin, "/admin/forms/import"), "workbook": (io.BytesIO(book), "x.xlsx")})
    assert converted.status_code == 200
    failures += [f"xlsform: {p}" for p in problems(converted.get_data(as_text=True), ["xlsform-zh"])]
    assert not failures, "\n".join(failures)


REFLECTED = {name: planted(name, SHORT) for name in ("tier", "area", "state", "box", "unit", "show", "on", "start",
                                                     "end", "by", "sheet", "revision", "version", "next", "q")}


def test_query_parameters_are_never_echoed_as_markup(planted_world: tuple[Ids, dict[str, FlaskClient]]):
    ids, clients = planted_world
    failures = []
    for role, template, _tags in PAGES:
        url = template.format(**ids).split("?")[0]
        response = clients[role].get(url, query_string=REFLECTED)
        failures += [f"{role} {url}?…: {p}" for p in problems(response.get_data(as_text=True), [])]
    for path in ("/b/lidu/" + planted("path", SHORT), "/p/track/" + planted("path", SHORT),
                 "/org/" + planted("path", SHORT) + "/units"):
        response = clients["office"].get(path)
        failures += [f"{path}: {p}" for p in problems(response.get_data(as_text=True), [])]
    assert not failures, "\n".join(failures)

