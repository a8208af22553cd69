"""Every route tried by every role, on objects in and out of the user's scope, and anonymously.

One world (tests/support/security.py) on the demo district Lidu: an anonymous visitor, a user with no role,
`staff` (posted role, granted from Zhiyuan), `head` (unit_head, subtree of Shilong), `assessor`, `leader`,
`office` (office_admin, all district-wide) and a system `admin`; real objects in Shilong (`_s`) and Zhiyuan
(`_z`), and a second district (Chengguan) where none of Lidu's people holds a role.

The TABLE below classifies every rule of `app.url_map`: a new route fails `test_every_route_is_in_the_table`
until it is added here on purpose. Each line is a URL and the outcome per role, in the order of `ROLES`:

    O  allowed: 2xx, or a redirect that is not to the login page
    D  refused: 403
    N  not found: 404 (said where the app hides that something exists, or where there is nothing to find)
    L  login required: 302 to /login?next=…
    U  401: the token API, which a session cookie never authenticates
    +  allowed, but a POST that would change things is not sent here (test_security_csrf sends it)
    .  not tried: the role is refused this route on the line above for want of the capability, and nothing
       here could give it more (the other district, where it holds no role; the other community, for a
       district-wide role); or the page is public, the same for everyone (tried anonymously, by a scoped
       user and by the system administrator). Each cell costs a request: the app renders every page in full.

A line starting with "POST " is sent as a POST with a valid CSRF token and the form an allowed user would send
(`POSTS` in tests/support/security.py): each refusing role must be refused and the database left exactly as it
was. GET lines of routes that also take POST are posted the same way by the roles they refuse. No GET may change
the database. PDFs are not drawn here (who may fetch one is decided first); test_security_xss draws them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from werkzeug.exceptions import HTTPException

from server.core.clock import utcnow
from server.extensions import db
from tests.support.security import (
    POSTS,
    ROLES,
    World,
    build_world,
    changed_tables,
    csrf_of,
    post_form,
    rolled_back,
    table_digest,
)

# anon nobody staff head assessor leader office admin
TABLE: dict[str, list[tuple[str, str]]] = {
    # -- public pages -------------------------------------------------------------------------------------------
    "static": [("/static/js/fangan.js", "O . . O . . . O")],
    "theme_static": [("/theme/fangan.css", "O . . O . . . O"), ("/themes/blue/fangan.css", "O . . O . . . O"),
                     ("/themes/no_such_theme/fangan.css", "N . . N . . . N")],
    "web.healthz": [("/healthz", "O . . O . . . O")],
    "web.readyz": [("/readyz", "O . . O . . . O")],
    "web.metrics": [("/metrics", "O . . O . . . O")],  # from this machine (the test client's 127.0.0.1)
    "web.service_worker": [("/sw.js", "O . . O . . . O")],
    "web.set_language": [("POST /lang/en", "+ . . + . . . +")],
    "account.login": [("/login", "O . . O . . . O")],
    "forms.places": [("/f/{lidu}/public_report/places?field=location&location-area-q=%E7%9F%B3", "O O O O O O O O"),
                     ("/f/{lidu}/patrol_log/places?field=area&area-q=x", "D D O O O O O O"),
                     ("/f/{other}/patrol_log/places?field=area&area-q=x", "D . D D D D D O")],
    "boards.board": [("/b/{lidu}/{road_s}", "O . . O . . . O"), ("/b/{lidu}/no_such_road", "N . . N . . . N")],
    "boards.board_pdf": [("/b/{lidu}/{road_z}.pdf", "O . . O . . . O")],
    "assessment.public_scores": [("/assess/{lidu}/scores", "O . . O . . . O"),
                                 ("/assess/{other}/scores", "N . . N . . . N")],  # Chengguan publishes none
    "assessment.public_flags": [("/assess/{lidu}/flags", "O . . O . . . O"),
                                ("/assess/{other}/flags", "N . . N . . . N")],  # Chengguan publishes none
    "public.report": [("/p/{lidu}/report", "O . . O . . . O")],
    "public.lookup": [("/p/track", "O . . O . . . O")],
    "public.track": [("/p/track/{code_s}", "O . . O . . . O"), ("/p/track/{code_z}", "O . . O . . . O")],
    # approved: its photo shows; pending moderation: as if there were none
    "public.photo": [("/p/report/{report_s}/photo/{public_upload_s}", "O . . O . . . O"),
                     ("/p/report/{report_z}/photo/{public_upload_z}", "N . . N . . . N"),
                     ("/p/report/{report_s}/photo/{upload_s}", "N . . N . . . N")],  # not this report's photo
    "public.view_report": [("/p/report/{report_s}", "O . . O . . . O"), ("/p/report/999999", "N . . N . . . N")],
    "public.step": [("POST /p/track/{code_s}/do/reopen", "+ . . + . . . +")],
    "public.followup": [("POST /p/track/{code_s}/followup", "+ . . + . . . +")],
    "public.exposed": [("/p/{lidu}/exposed", "O . . O . . . O")],
    "public.praised": [("/p/{lidu}/praised", "O . . O . . . O")],
    "public.place_at": [("/p/{lidu}/place?lat=29.749&lng=107.309", "O . . O . . . O"),
                        ("/p/{other}/place?lat=29.749&lng=107.309", "O . . O . . . O"),  # (there is no place)
                        ("/p/no_such_district/place?lat=1&lng=2", "N . . N . . . N")],
    "public.public_map": [("/p/{lidu}/map", "O . . O . . . O"),
                          ("/p/{other}/map", "N . . N . . . N")],  # Chengguan publishes none
    "public.public_map_points": [("/p/{lidu}/map.geojson", "O . . O . . . O"),
                                 ("/p/{other}/map.geojson", "N . . N . . . N")],
    # Open311 is public and cookieless (tests/integration/test_open311.py tests what it does).
    "open311.discovery": [("/open311/v2/discovery.json", "O . . O . . . O")],
    "open311.services": [("/open311/v2/services.json?jurisdiction_id={lidu}", "O . . O . . . O")],
    "open311.service_definition": [("/open311/v2/services/piled_rubbish.json?jurisdiction_id={lidu}",
                                    "O . . O . . . O")],
    "open311.list_requests": [("/open311/v2/requests.json?jurisdiction_id={lidu}", "O . . O . . . O")],
    "open311.get_request": [("/open311/v2/requests/{report_s}.json?jurisdiction_id={lidu}", "O . . O . . . O")],
    "open311.token": [("/open311/v2/tokens/x.json?jurisdiction_id={lidu}", "N . . N . . . N")],
    "open311.create_request": [("POST /open311/v2/requests.json", "+ . . + . . . +")],
    # -- the token API: a session cookie is no token ---------------------------------------------------------------
    "api.document": [("/api/v1/openapi.json", "O O O O O O O O")],
    "api.district_document": [("/api/v1/schemes/{lidu}/openapi.json", "O O O O O O O O")],
    "api.list_cases": [("/api/v1/schemes/{lidu}/cases", "U U U U U U U U")],
    "api.open_case": [("POST /api/v1/schemes/{lidu}/cases", "U U U U U U U U")],
    "api.get_case": [("/api/v1/cases/{case_s}", "U U U U U U U U")],
    "api.fire": [("POST /api/v1/cases/{case_s}/transitions/assign", "U U U U U U U U")],
    "api.submit": [("POST /api/v1/schemes/{lidu}/forms/patrol_log/submissions", "U U U U U U U U")],
    "api.get_submission": [("/api/v1/submissions/{record_s}", "U U U U U U U U")],
    "api.compliance": [("/api/v1/schemes/{lidu}/patrols/compliance", "U U U U U U U U")],
    "api.periods": [("/api/v1/schemes/{lidu}/assessment/periods", "U U U U U U U U")],
    "api.scores": [("/api/v1/assessment/periods/{period_pub}/scores", "U U U U U U U U")],
    "api.board": [("/api/v1/schemes/{lidu}/boards/{road_s}", "U U U U U U U U")],
    # -- everyone logged in ----------------------------------------------------------------------------------------
    "home.index": [("/", "O O O O O O O O")],  # the public's way in; each person's home once logged in
    "account.change_password": [("/account/password", "L O O O O O O O")],
    "account.logout": [("POST /logout", "L + + + + + + +")],
    "home.district": [("/district/{lidu}", "L D O O O O O O"), ("/district/{other}", "L . D D D D D O")],
    # -- system administrators, and the district's scheme managers -------------------------------------------------
    "admin.users": [("/admin/users", "L D D D D D D O")],
    "admin.create_user": [("POST /admin/users", "L D D D D D D +")],
    "admin.toggle_user": [("POST /admin/users/{user_spare}/active", "L D D D D D D +")],
    "admin.reset_user_password": [("POST /admin/users/{user_spare}/reset-password", "L D D D D D D +")],
    "admin.grant_user_role": [("POST /admin/users/{user_spare}/roles", "L D D D D D D +")],
    "admin.revoke_user_role": [("POST /admin/roles/{assignment}/revoke", "L D D D D D D +")],
    "admin.calendar": [("/admin/calendar", "L D D D D D D O")],
    "admin.reporters": [("/admin/reporters", "L D D D D D O O")],
    "events.status": [("/admin/events/", "L D D D D D D O")],
    "events.retry": [("POST /admin/events/szcg/retry", "L D D D D D D +")],
    "admin.delete_calendar_day": [("POST /admin/calendar/{day}/delete", "L D D D D D D +")],
    "admin.calendar_import": [("/admin/calendar/import", "L D D D D D D O")],
    "admin.calendar_year": [("POST /admin/calendar/year/2027", "L D D D D D D +")],
    "audit.index": [("/admin/audit/", "L D D D D D O O")],
    "admin.schemes": [("/admin/schemes", "L D D D D D O O")],
    "admin.upload_scheme": [("/admin/schemes/upload", "L D D D D D O O")],
    "admin.scheme_version": [("/admin/schemes/versions/{version_lidu}", "L D D D D D O O"),
                             ("/admin/schemes/versions/{version_other}", "L . . . . . D O")],
    "admin.activate_version": [("POST /admin/schemes/versions/{version_lidu}/activate", "L D D D D D + +"),
                               ("POST /admin/schemes/versions/{version_other}/activate", "L . . . . . D +")],
    "admin.definition_source": [("/admin/definitions/{form_lidu}", "L D D D D D O O"),
                                ("/admin/definitions/{definition_other}", "L . . . . . D O")],
    "admin.preview_form": [("/admin/definitions/{form_lidu}/preview", "L D D D D D O O"),
                           ("/admin/definitions/{form_other}/preview", "L . . . . . D O")],
    "admin.import_xlsform": [("/admin/forms/import", "L D D D D D O O")],
    "editors.download": [("/admin/schemes/versions/{version_lidu}/download", "L D D D D D O O"),
                         ("/admin/schemes/versions/{version_other}/download", "L . . . . . D O")],
    "editors.upload_file": [("POST /admin/schemes/versions/{version_lidu}/file", "L D D D D D + +"),
                            ("POST /admin/schemes/versions/{version_other}/file", "L . . . . . D +")],
    "editors.edit_source": [("/admin/schemes/versions/{version_lidu}/source/board.yaml", "L D D D D D O O"),
                            ("/admin/schemes/versions/{version_other}/source/chengguan_only.yaml", "L . . . . . D O")],
    "editors.edit_definition": [("/admin/schemes/versions/{version_lidu}/edit/form/patrol_log", "L D D D D D O O"),
                                ("/admin/schemes/versions/{version_other}/edit/scheme/chengguan", "L . . . . . D O")],
    "editors.check": [("POST /admin/schemes/versions/{version_lidu}/check", "L D D D D D + +"),
                      ("POST /admin/schemes/versions/{version_other}/check", "L . . . . . D +")],
    "wizard.new_scheme": [("/admin/schemes/new", "L D D D D D D O")],
    "wizard.setup": [("/admin/schemes/versions/{version_lidu}/setup", "L D D D D D O O"),
                     ("/admin/schemes/versions/{version_other}/setup", "L . . . . . D O")],
    "wizard.organisation": [("POST /admin/schemes/versions/{version_lidu}/organisation", "L D D D D D + +"),
                            ("POST /admin/schemes/versions/{version_other}/organisation", "L . . . . . D +")],
    "editors.dry_run": [("POST /admin/schemes/versions/{version_lidu}/dry-run", "L D D D D D + +")],
    "editors.preview_board": [("POST /admin/schemes/versions/{version_lidu}/preview-board", "L D D D D D + +")],
    "editors.preview_form": [("POST /admin/schemes/versions/{version_lidu}/preview-form", "L D D D D D + +")],
    # -- organisation ----------------------------------------------------------------------------------------------
    "org.units": [("/org/{lidu}/units", "L D O O O O O O"), ("/org/{other}/units", "L . D D D D D O")],
    "org.unit": [("/org/units/{unit_s}", "L D D O O O O O"), ("/org/units/{unit_z}", "L . O D O O O O")],
    "org.new_unit": [("/org/{lidu}/units/new", "L D D D D D O O"), ("/org/{other}/units/new", "L . . . . . D O")],
    "org.edit_unit": [("/org/units/{unit_s}/edit", "L D D D D D O O"), ("/org/units/{unit_z}/edit", "L . D D . . O O")],
    "org.areas": [("/org/{lidu}/areas", "L D O O O O O O"), ("/org/{other}/areas", "L . D D D D D O")],
    "org.area": [("/org/areas/{area_s}", "L D D O O O O O"), ("/org/areas/{area_z}", "L . O D O O O O")],
    "org.new_area": [("/org/{lidu}/areas/new", "L D D D D D O O"), ("/org/{other}/areas/new", "L . . . . . D O")],
    "org.edit_area": [("/org/areas/{area_s}/edit", "L D D D D D O O"), ("/org/areas/{area_z}/edit", "L . D D . . O O")],
    "org.posts": [("/org/{lidu}/posts", "L D O O O O O O"), ("/org/{other}/posts", "L . D D D D D O")],
    "org.new_post": [("/org/{lidu}/posts/new", "L D D D D D O O"), ("/org/{other}/posts/new", "L . . . . . D O")],
    "org.edit_post": [("/org/posts/{post_s}/edit", "L D D D D D O O"), ("/org/posts/{post_z}/edit", "L . D D . . O O")],
    "org.end_post": [("/org/posts/{post_s}/end", "L D D D D D O O"), ("/org/posts/{post_z}/end", "L . D D . . O O")],
    "org.import_spreadsheet": [("/org/{lidu}/import", "L D D D D D O O"), ("/org/{other}/import", "L . . . . . D O")],
    "org.import_places": [("/org/{lidu}/places", "L D D D D D O O"), ("/org/{other}/places", "L . . . . . D O")],
    # the export is a job: who may start it is who may export (the job's page and file are the starter's)
    "org.start_export": [("POST /org/{lidu}/export", "L D D D D D + +"),
                         ("POST /org/{other}/export", "L . . . . . D +")],
    # -- forms and records -----------------------------------------------------------------------------------------
    "forms.index": [("/f/{lidu}/", "L D O O D O D O"), ("/f/{other}/", "L . D D . D . O")],
    "forms.fill": [("/f/{lidu}/problem_report/new", "L D O O D O D O"),
                   ("/f/{other}/no_such_form/new", "L . D D . D . N")],
    "forms.records": [("/f/{lidu}/problem_report/records", "L D O O D O O O"),
                      ("/f/{other}/no_such_form/records", "L . D D . D D N")],
    # the leader's reports: the office and the leader see every record, heads and staff only their own
    # a case's report and step records, and their photos, follow the case: whoever sees the case sees them
    "forms.record": [("/f/records/{record_s}", "L D D O D O O O"), ("/f/records/{record_z}", "L . O D . O O O")],
    "forms.upload": [("/f/uploads/{upload_s}", "L D D O D O O O"), ("/f/uploads/{upload_z}/thumb", "L . O D . O O O")],
    # -- cases -----------------------------------------------------------------------------------------------------
    "workflow.inbox": [("/cases/{lidu}/", "L D O O O O O O"), ("/cases/{other}/", "L . D D D D D O")],
    "workflow.case_heat": [("/cases/{lidu}/heat.geojson", "L D O O O O O O"),
                           ("/cases/{other}/heat.geojson", "L . D D D D D O")],
    "workflow.queue_map": [("/cases/{lidu}/map.geojson?box=all", "L D O O O O O O"),
                           ("/cases/{other}/map.geojson", "L . D D D D D O")],
    "workflow.by_area": [("/cases/{lidu}/areas", "L D O O D O O O"), ("/cases/{other}/areas", "L . D D . D D O")],
    "workflow.ledger": [("/cases/{lidu}/ledger", "L D O O D O O O"), ("/cases/{other}/ledger", "L . D D . D D O")],
    "workflow.start_ledger_export": [("POST /cases/{lidu}/ledger/export", "L D + + D + + +"),
                                     ("POST /cases/{other}/ledger/export", "L . D D . D D +")],
    "workflow.report": [("/cases/{lidu}/report", "L D O O D O D O"), ("/cases/{other}/report", "L . D D . D . O")],
    "workflow.case": [("/cases/case/{case_s}", "L D D O D O O O"), ("/cases/case/{case_z}", "L . O D . O O O")],
    "workflow.act": [("/cases/case/{case_s}/do/assign", "L D D D D O O O"),
                     ("/cases/case/{case_z}/do/assign", "L . D D . O O O")],
    # -- patrols, boards -------------------------------------------------------------------------------------------
    "patrols.compliance": [("/patrols/{lidu}/", "L D D O D O O O"), ("/patrols/{other}/", "L . . D . D D O")],
    "patrols.routes": [("/patrols/{lidu}/routes", "L D D O D O O O"), ("/patrols/{other}/routes", "L . . D . D D O")],
    "boards.index": [("/b/{lidu}/?q=%E8%B7%AF&unit=shilong", "L D O O O O O O"), ("/b/{other}/", "L . D D D D D O")],
    "boards.start_print": [("POST /b/{lidu}/print", "L D D D D D + +"), ("POST /b/{other}/print", "L . . . . . D +")],
    # -- jobs: one's own (the office's batch of boards), and the system administrator's view ------------------------
    "jobs.index": [("/jobs/", "L O O O O O O O")],
    "jobs.job": [("/jobs/{job}", "L D D D D D O O"), ("/jobs/999999", "L N . . . . N N")],
    "jobs.result": [("/jobs/{job}/result", "L D D D D D O O")],
    # -- assessment ------------------------------------------------------------------------------------------------
    "assessment.periods": [("/assess/{lidu}/", "L D D O O O O O"), ("/assess/{other}/", "L . . D D D D O")],
    "assessment.period": [("/assess/period/{period_pub}", "L D D O O O O O"),
                          ("/assess/period/{period}", "L D D O O O O O")],
    "assessment.draft_status": [("/assess/period/{period}/draft", "L D D O O O O O")],
    "assessment.draft_again": [("POST /assess/period/{period}/draft", "L D D D D D + +")],  # a job
    # Lidu's sheet combines nothing: those who may see it are told there is no such thing
    "assessment.combined": [("/assess/{lidu}/combined/lidu_monthly/year", "L D D D N N N N"),
                            ("/assess/{other}/combined/chengguan_monthly/year_total", "L . . . D D D O")],
    "assessment.dashboard": [("/assess/{lidu}/dashboard", "L D D D D O O O"),
                             ("/assess/{other}/dashboard", "L . . . . D D O")],
    "assessment.bulletin": [("/assess/period/{period_pub}/bulletin", "L D D D O O O O")],
    "assessment.bulletin_pdf": [("POST /assess/period/{period_pub}/bulletin.pdf", "L D D D + + + +")],
    "assessment.compare": [("/assess/period/{period_pub}/compare", "L D D D D D O O")],
    "assessment.start_compare": [("POST /assess/period/{period_pub}/compare", "L D D D D D + +")],  # a job
    "assessment.unit_detail": [("/assess/period/{period_pub}/unit/{unit_s}", "L D D O O O O O"),
                               ("/assess/period/{period_pub}/unit/{unit_z}", "L . D D O O O O")],
    "assessment.marks": [("/assess/period/{period}/unit/{unit_s}/hotspots", "L D D D O D O O"),
                         ("/assess/period/{period}/unit/{unit_z}/hotspots", "L . D D O . O O")],
    "assessment.marks_grid": [("/assess/period/{period}/marks", "L D D D O D O O")],
    "assessment.marks_total": [("/assess/period/{period}/marks/{unit_s}/total?m-{unit_s}-hotspots-below_quality=2",
                                "L D D D O D O O")],
    # only the unit's own people appeal: not the office, leaders or assessors who see every unit
    "assessment.appeal": [("/assess/period/{period}/appeal/{unit_s}", "L D D O D D D D"),
                          ("/assess/period/{period}/appeal/{unit_z}", "L . D D D D D D")],
    "assessment.step": [("POST /assess/period/{period_open}/appeals", "L D D D D D + +"),
                        ("POST /assess/period/{period_open}/publish", "L D D D D D + +")],  # a job
    "assessment.decide": [("POST /assess/appeal/{appeal_s}/decide", "L D D D D D + +")],
    # -- moderation of public reports ------------------------------------------------------------------------------
    "moderation.queue": [("/moderation/{lidu}/", "L D D D D D O O"), ("/moderation/{other}/", "L . . . . . D O")],
    "moderation.decide": [("POST /moderation/report/{report_z}", "L D D D D D + +")],
    # moderators only; anyone else is told there is no such photo
    "moderation.moderation_photo": [("/moderation/report/{report_z}/photo/{public_upload_z}", "L N N N N N O O")],
}

EXPECTED_STATUS = {"D": 403, "N": 404, "U": 401}


def _lines() -> Iterator[tuple[str, str, str, dict[str, str]]]:
    """(endpoint, method, url template, {role: code}) for every line of the table."""
    for endpoint, lines in TABLE.items():
        for target, codes in lines:
            method, _, url = target.rpartition(" ")
            row = dict(zip(ROLES, codes.split(), strict=True))
            yield endpoint, method or "GET", url, row


def _outcome(response, code: str) -> bool:  # noqa: ANN001
    location = response.headers.get("Location", "")
    if code == "O":
        return response.status_code < 300 or (response.status_code < 400 and "/login" not in location)
    if code == "L":
        return response.status_code == 302 and location.startswith("/login?next=")
    return response.status_code == EXPECTED_STATUS[code]


def _fmt(response) -> str:  # noqa: ANN001
    where = response.headers.get("Location")
    return f"{response.status_code}" + (f" → {where}" if where else "")


# -- the table covers the app ---------------------------------------------------------------------------------------


def _rules(app: Flask) -> dict[str, object]:
    return {f"{r.endpoint} {r.rule}": r for r in app.url_map.iter_rules()}


def test_every_route_is_in_the_table():
    """A route missing from TABLE (or a line that no longer reaches what it says) fails here: classify it."""
    from server import create_app

    app = create_app({"TESTING": True, "SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    adapter = app.url_map.bind("localhost")
    placeholders = {"lidu": "lidu", "other": "chengguan", "road_s": "shilong_old_street", "road_z": "zhiyuan_road",
                    "code_s": "ABCDEFGHJK", "code_z": "ABCDEFGHJK", "day": "2026-12-31"}
    covered, problems = set(), []
    for endpoint, method, url, _row in _lines():
        path = url.split("?")[0].format_map(_Ids(placeholders))
        try:
            rule, _args = adapter.match(path, method=method, return_rule=True)
        except HTTPException as exc:
            problems.append(f"{method} {url}: no route ({exc.code})")
            continue
        if rule.endpoint != endpoint:
            problems.append(f"{method} {url}: listed under {endpoint} but reaches {rule.endpoint}")
        covered.add(f"{rule.endpoint} {rule.rule}")
        if method not in rule.methods:
            problems.append(f"{method} {url}: {rule.endpoint} does not take {method}")
    missing = sorted(set(_rules(app)) - covered)
    problems += [f"not in the table: {m}" for m in missing]
    assert not problems, "\n".join(problems)


class _Ids(dict):
    """Any id placeholder as 1 (only the shape of the URL matters for matching)."""

    def __missing__(self, key: str) -> str:
        return "1"


# -- the world ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(base_app: Flask) -> Iterator[World]:
    with rolled_back(base_app):
        yield build_world(base_app)


@pytest.fixture
def quick_pdf(monkeypatch: pytest.MonkeyPatch) -> None:
    """Who may fetch a PDF is decided before it is drawn; drawing dozens of them would only slow this down."""
    import server.boards.views
    import server.pdf.engine

    def fake(html: str) -> bytes:
        return b"%PDF-1.7 test"

    for module in (server.pdf.engine, server.boards.views):
        monkeypatch.setattr(module, "render_pdf", fake)


def test_every_role_gets_what_the_table_says(world: World, base_app: Flask, quick_pdf: None):
    """…and no GET changes anything (a cross-site link is followed with the session cookie: SameSite=Lax)."""
    failures = []
    with base_app.app_context():
        before = table_digest()
    for endpoint, method, url_template, row in _lines():
        if method != "GET":
            continue
        url = world.url(url_template)
        for role, code in row.items():
            if code == ".":
                continue
            response = world.clients[role].get(url)
            response.close()
            if not _outcome(response, code):
                failures.append(f"{endpoint:32} GET {url:60} {role:9} expected {code}, got {_fmt(response)}")
    with base_app.app_context():
        if changed := changed_tables(before, table_digest()):
            failures.append(f"the GETs above changed {changed}")
    assert not failures, f"{len(failures)} cells differ from the table:\n" + "\n".join(failures)


def test_refused_roles_change_nothing_by_posting(world: World, base_app: Flask):
    """Each role a route refuses posts the form an allowed user would send, with a valid CSRF token: refused as
    the table says, and not one row of any table changed. The token API refuses a session cookie (401)."""
    methods = {r.endpoint: r.methods for r in base_app.url_map.iter_rules()}
    tokens: dict[str, str] = {}

    def token(role: str) -> str:
        if role not in tokens:  # one token per session serves every form of it
            tokens[role] = csrf_of(world.clients[role], "/login" if role == "anon" else "/account/password")
        return tokens[role]

    failures, tried = [], 0
    with base_app.app_context():
        before = table_digest()
    for endpoint, _method, url_template, row in _lines():
        if "POST" not in methods[endpoint] or (endpoint not in POSTS and not endpoint.startswith("api.")):
            continue
        url = world.url(url_template)
        refused = [(role, code) for role, code in row.items() if code in ("D", "N", "L", "U")]
        for role, code in refused:
            client = world.clients[role]
            if code == "U":
                response = client.post(url, json={})
            else:
                response = client.post(url, data=post_form(base_app, world, endpoint, token(role)),
                                       content_type="multipart/form-data")
            tried += 1
            if not _outcome(response, code):
                failures.append(f"{endpoint:32} POST {url:55} {role:9} expected {code}, got {_fmt(response)}")
        with base_app.app_context():  # once per line: a change names the line and who posted it
            after = table_digest()
        if after != before:
            who = " ".join(role for role, _code in refused)
            failures.append(f"{endpoint:32} POST {url:55} ({who}) changed {changed_tables(before, after)}")
            before = after
    assert tried > 100
    assert not failures, f"{len(failures)} refusals differ from the table:\n" + "\n".join(failures)


def test_a_tracking_code_reopens_a_solved_case_only_through_the_follow_up(world: World, base_app: Flask):
    """The follow-up lets the reporter reopen a solved case once, within the scheme's `followup_days`; the step
    route (which the track page offers only for the workflow's other public steps) must not reopen it again, or
    after the window. Here the case was closed 40 days ago (Lidu answers for 15)."""
    import datetime as dt

    from server.public.models import PublicReport

    with base_app.app_context():
        case = db.session.get(PublicReport, world.ids["report_z"]).case
        case.state, case.state_kind, case.outcome = "closed", "final", "resolved"
        case.closed_at = utcnow() - dt.timedelta(days=40)
        db.session.commit()
        before = table_digest()
    visitor = world.clients["anon"]
    code = world.ids["code_z"]
    response = visitor.post(f"/p/track/{code}/do/reopen", data={"csrf_token": csrf_of(visitor, "/login")})
    with base_app.app_context():
        state = db.session.get(PublicReport, world.ids["report_z"]).case.state
        changed = changed_tables(before, table_digest())
    assert response.status_code in (303, 403, 409)  # refused, or sent back to the track page with a message
    assert (state, changed) == ("closed", []), f"reopened by the step route ({response.status_code}): {changed}"
