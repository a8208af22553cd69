"""Public reporting on the demo district: a report from a board's QR link opens a case routed to the road's
community, with a tracking code; what the public sees waits for moderation; the reporter's phone is sealed;
the follow-up confirms or reopens once; satisfaction feeds the assessment; bots and floods are turned away."""

from __future__ import annotations

import datetime as dt
import io
import re

import pytest
from PIL import Image

from server.core.clock import utcnow
from server.extensions import db
from server.forms.models import Submission
from server.org.models import Area, Unit
from server.public import engine, service
from server.public.models import PublicReport
from server.workflow.models import Case
from tests.support.factories import load_demo, login, make_user

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture
def demo(app):
    app.config["FANGAN_MIN_FILL_SECONDS"] = 0
    with app.app_context():
        load_demo()
    yield app
    app.config.pop("FANGAN_MIN_FILL_SECONDS", None)


def _photo(exif: bool = False) -> bytes:
    buffer = io.BytesIO()
    image = Image.new("RGB", (64, 48), "orange")
    if exif:
        data = Image.Exif()
        data[0x010F] = "PhoneMaker"  # Make
        data[0x0110] = "Model X"  # Model
        image.save(buffer, "JPEG", exif=data)
        assert Image.open(io.BytesIO(buffer.getvalue())).getexif()  # the test photo does carry EXIF
    else:
        image.save(buffer, "JPEG")
    return buffer.getvalue()


def _form(client, area: str | None = "shilong_old_street") -> dict[str, str]:  # noqa: ANN001
    html = client.get("/p/lidu/report" + (f"?area={area}" if area else "")).get_data(as_text=True)
    field = {name: re.search(rf'name="{name}"[^>]*value="([^"]*)"', html).group(1)
             for name in ("csrf_token", "_token", "_stamp")}
    return {**field, "_action": "submit", "website": ""}


def _report(client, **values) -> tuple:  # noqa: ANN001, ANN003
    data = {**_form(client), "category": "random_piling", "location-area": "shilong_old_street",
            "description": "商户占道堆放货物", "photos_before": (io.BytesIO(_photo()), "p.jpg"), **values}
    return client.post("/p/lidu/report", data=data, content_type="multipart/form-data")


def _count(model) -> int:  # noqa: ANN001
    return db.session.scalar(db.select(db.func.count()).select_from(model))


def test_a_report_from_a_boards_qr_link_opens_a_case_for_the_roads_community(demo):
    client = demo.test_client()
    page = client.get("/p/lidu/report?area=shilong_old_street").get_data(as_text=True)
    assert '<option value="shilong_old_street" selected>' in page  # the board's road, filled in
    response = _report(client, reporter_name="张三", reporter_phone="138 0013 8000")
    assert response.status_code == 303
    code = response.headers["Location"].rsplit("/", 1)[1]
    assert engine.clean_code(code) == code
    with demo.app_context():
        report = db.session.scalar(db.select(PublicReport).filter_by(code=code))
        case = report.case
        assert case.unit.key == "shilong" and case.area.key == "shilong_old_street"
        assert case.reporter_id is None and case.category == "random_piling"
        # Sealed: neither the phone nor the name is in the database in clear, anywhere.
        assert "13800138000" not in (report.phone_sealed or "") and "138 0013 8000" not in report.phone_sealed
        assert "张三" not in report.name_sealed and report.phone_masked == "138****8000"
        # (the phone's digits, not "138" alone: an upload's id may be 138)
        assert not any(digits in str(case.data) for digits in ("0013 8000", "00138000", "138****"))
        assert "张三" not in str(report.case.submission.data) and "0013" not in str(report.case.submission.data)
    status = client.get(f"/p/track/{code}").get_data(as_text=True)
    assert code in status and "已受理" in status and "石龙社区" in status
    assert "商户占道堆放货物" not in status  # not yet checked by a moderator
    assert "张三" not in status and "8000" not in status
    # A mistyped code (lower case, O for 0) still finds it; a wrong one is a clear 404.
    assert client.get(f"/p/track/{code.lower().replace('0', 'o')}").status_code == 200
    assert client.get("/p/track/ABCDEFGHJK").status_code == 404


@pytest.mark.parametrize("race", [False, True], ids=["resent", "race"])
def test_the_same_form_sent_twice_makes_one_report(demo, monkeypatch, race):
    """A resend finds the first report; so does a twin the token check missed (the two requests raced): its
    insert is skipped, with no error, and it hands back the first report too."""
    client = demo.test_client()
    fields = {**_form(client), "category": "random_piling", "location-area": "shilong_old_street",
              "description": "商户占道堆放货物"}
    first = client.post("/p/lidu/report", data=fields, content_type="multipart/form-data")
    assert first.status_code == 303
    if race:
        from server.forms import service as forms

        real = forms._same_submission
        calls = []

        def missed_once(*args):  # the token check runs before the twin's row is there
            calls.append(args)
            return None if len(calls) == 1 else real(*args)

        monkeypatch.setattr(forms, "_same_submission", missed_once)
    with demo.app_context():
        before = (_count(Case), _count(Submission), _count(PublicReport))
    again = client.post("/p/lidu/report", data=fields, content_type="multipart/form-data")
    assert again.status_code == 303 and again.headers["Location"] == first.headers["Location"]
    with demo.app_context():
        assert (_count(Case), _count(Submission), _count(PublicReport)) == before
    if race:
        assert len(calls) == 2  # missed, then found after the skipped insert


def test_a_bad_report_comes_back_with_what_was_typed_and_nothing_is_stored(demo):
    client = demo.test_client()
    with demo.app_context():
        before = (_count(Case), _count(Submission), _count(PublicReport))
    response = _report(client, description="", reporter_phone="call me", reporter_name="李四")
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "问题描述" in html and 'value="call me"' in html and 'value="李四"' in html
    assert "电话号码" in html or "phone" in html.lower()
    with demo.app_context():
        assert (_count(Case), _count(Submission), _count(PublicReport)) == before


def test_a_road_not_on_offer_is_refused_and_the_page_lists_every_road_again(demo):
    client = demo.test_client()
    with demo.app_context():
        before = (_count(Case), _count(Submission), _count(PublicReport))
        roads = db.session.scalar(db.select(db.func.count()).select_from(Area).filter_by(scheme_key="lidu",
                                                                                            active=True))
    response = _report(client, **{"location-area": "no_such_road"})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "不是有效的选项" in html
    assert '<option value="shilong_old_street"' in html and roads > 1  # the full list for the next try
    with demo.app_context():
        assert (_count(Case), _count(Submission), _count(PublicReport)) == before


def test_the_next_request_sees_a_newly_activated_version(demo):
    from server.definitions.service import activate_scheme_version, load_scheme
    from tests.support.factories import demo_files

    client = demo.test_client()
    assert "路长公示牌" in client.get("/b/lidu/shilong_old_street").get_data(as_text=True)
    assert client.get("/p/lidu/report").status_code == 200
    files = dict(demo_files())
    files["schemes/lidu/board.yaml"] = files["schemes/lidu/board.yaml"].replace("路长公示牌", "路长新公示牌")
    files["schemes/lidu/scheme.yaml"] = files["schemes/lidu/scheme.yaml"].replace(
        "public:\n  reporting: true", "public:\n  reporting: false")
    with demo.app_context():
        version, created = load_scheme(files)
        assert created
        activate_scheme_version(version.id)
        db.session.commit()
    assert "路长新公示牌" in client.get("/b/lidu/shilong_old_street").get_data(as_text=True)
    assert client.get("/p/lidu/report").status_code == 404  # the district stopped taking reports


def test_bots_are_turned_away_by_the_hidden_field_and_the_fill_time(demo):
    client = demo.test_client()
    with demo.app_context():
        before = _count(PublicReport)
    assert _report(client, website="http://spam.example").status_code == 400
    assert _report(client, _stamp="forged").status_code == 400
    demo.config["FANGAN_MIN_FILL_SECONDS"] = 30
    response = _report(client)
    assert response.status_code == 400 and "请" in response.get_data(as_text=True)
    demo.config["FANGAN_MIN_FILL_SECONDS"] = 0
    with demo.app_context():
        assert _count(PublicReport) == before
    assert _report(client).status_code == 303


def test_moderation_decides_what_the_public_sees_and_photos_lose_their_exif(demo):
    client = demo.test_client()
    response = _report(client, description=XSS, photos_before=(io.BytesIO(_photo(exif=True)), "e.jpg"),
                       reporter_phone="13900001111")
    code = response.headers["Location"].rsplit("/", 1)[1]
    with demo.app_context():
        make_user("office", roles=(("lidu", "office_admin", None),))
        make_user("head", roles=(("lidu", "unit_head", "shilong"),))
        report = db.session.scalar(db.select(PublicReport).filter_by(code=code))
        photo_id = report.case.data["photos_before"][0]
        report_id = report.id
    assert client.get(f"/p/report/{report_id}/photo/{photo_id}").status_code == 404  # not approved yet
    office, head = demo.test_client(), demo.test_client()
    login(office, "office")
    login(head, "head")
    assert head.get("/moderation/lidu/").status_code == 403
    queue = office.get("/moderation/lidu/").get_data(as_text=True)
    assert "13900001111" in queue  # a dispatcher may call the reporter back
    assert code not in queue  # but the code stays with its reporter
    assert "<script>alert" not in queue and "&lt;script&gt;" in queue
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', queue).group(1)
    decide = f"/moderation/report/{report_id}"
    fields = {f"r{report_id}-decision": "approved", f"r{report_id}-expose": "y"}
    assert office.post(decide, data=fields).status_code == 400  # no CSRF token
    assert office.post(decide, data={f"r{report_id}-csrf_token": token, **fields}).status_code == 303
    status = client.get(f"/p/track/{code}").get_data(as_text=True)
    assert "&lt;script&gt;" in status and "<script>alert" not in status
    picture = client.get(f"/p/report/{report_id}/photo/{photo_id}")
    assert picture.status_code == 200 and picture.mimetype == "image/jpeg"
    assert not Image.open(io.BytesIO(picture.data)).getexif()  # no maker, no GPS
    exposed = client.get("/p/lidu/exposed").get_data(as_text=True)
    assert f"/p/report/{report_id}" in exposed and "&lt;script&gt;" in exposed


def test_the_tracking_code_stays_with_its_reporter(demo):
    """Everything the public and staff can read about an approved, exposed report with a photo, and not once
    the code: the exposure list links to a page that can read but not act."""
    code = _report(demo.test_client()).headers["Location"].rsplit("/", 1)[1]
    client = demo.test_client()  # someone else: the reporter's browser shows the code in its "thank you" message
    with demo.app_context():
        office = make_user("office", roles=(("lidu", "office_admin", None),))
        report = db.session.scalar(db.select(PublicReport).filter_by(code=code))
        report_id, case_id = report.id, report.case_id
        service.moderate(office, report, "approved", expose=True)
        db.session.commit()
        _close(case_id)
    staff = demo.test_client()
    login(staff, "office")
    exposed = client.get("/p/lidu/exposed").get_data(as_text=True)
    photo = re.search(r'<img src="([^"]+)"', exposed).group(1)
    answers = {
        "exposure list": exposed,
        "photo": photo,
        "report page": client.get(f"/p/report/{report_id}").get_data(as_text=True),
        "Open311 list (json)": client.get("/open311/v2/requests.json?jurisdiction_id=lidu").get_data(as_text=True),
        "Open311 list (xml)": client.get("/open311/v2/requests.xml?jurisdiction_id=lidu").get_data(as_text=True),
        "Open311 request": client.get(f"/open311/v2/requests/{report_id}.json?jurisdiction_id=lidu")
        .get_data(as_text=True),
        "moderation queue": staff.get("/moderation/lidu/?state=approved").get_data(as_text=True),
        "case page": staff.get(f"/cases/{case_id}").get_data(as_text=True),
    }
    assert [where for where, text in answers.items() if code in text] == []
    assert client.get(photo).status_code == 200
    media = client.get(f"/open311/v2/requests/{report_id}.json?jurisdiction_id=lidu").get_json()[0]["media_url"]
    assert f"/p/report/{report_id}/photo/" in media
    page = answers["report page"]
    assert 'id="followup"' not in page and "/do/" not in page  # reading grants no answer and no step
    assert 'id="followup"' in client.get(f"/p/track/{code}").get_data(as_text=True)  # the code does


def _close(case_id: int) -> None:
    """The case solved, as the office would after verifying it (the browser journey drives the real steps)."""
    case = db.session.get(Case, case_id)
    case.state, case.state_kind, case.outcome = "closed", "final", "resolved"
    case.closed_at = utcnow() - dt.timedelta(days=1)
    db.session.commit()


def test_the_reporter_reopens_once_and_says_how_satisfied(demo):
    client = demo.test_client()
    code = _report(client).headers["Location"].rsplit("/", 1)[1]
    page = client.get(f"/p/track/{code}").get_data(as_text=True)
    assert 'id="followup"' not in page  # nothing to answer before it is solved
    with demo.app_context():
        case_id = db.session.scalar(db.select(PublicReport.case_id).filter_by(code=code))
        _close(case_id)
    page = client.get(f"/p/track/{code}").get_data(as_text=True)
    assert 'id="followup"' in page and "已解决" in page
    assert "不满意" in page and "{'zh'" not in page and "&#39;zh&#39;" not in page  # labels, not their data
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    version = re.search(r'name="version" value="(\d+)"', page).group(1)
    answer = {"csrf_token": token, "version": version, "solved": "no", "satisfaction": "unsatisfied",
              "note": "货物还在"}
    assert client.post(f"/p/track/{code}/followup", data=answer).status_code == 303
    with demo.app_context():
        case = db.session.get(Case, case_id)
        report = db.session.scalar(db.select(PublicReport).filter_by(code=code))
        assert (case.state, case.reopen_count, case.closed_at) == ("assigned", 1, None)
        assert (report.confirmed, report.satisfaction) == ("reopened", "unsatisfied")
        assert case.events[-1].note and case.events[-1].user_id is None
    again = client.post(f"/p/track/{code}/followup", data=answer)  # once only
    assert again.status_code in (303, 400)
    with demo.app_context():
        assert db.session.get(Case, case_id).reopen_count == 1


def test_satisfaction_rate_is_a_metric_for_the_sheets(demo):
    from server.patrols.engine import Period

    client = demo.test_client()
    codes = [_report(client).headers["Location"].rsplit("/", 1)[1] for _ in range(3)]
    with demo.app_context():
        for code, answer in zip(codes, ["satisfied", "fairly_satisfied", "unsatisfied"], strict=True):
            report = db.session.scalar(db.select(PublicReport).filter_by(code=code))
            _close(report.case_id)
            service.answer_followup(report, True, answer)
        db.session.commit()
        shilong = db.session.scalar(db.select(Unit).filter_by(scheme_key="lidu", key="shilong"))
        other = db.session.scalar(db.select(Unit).filter_by(scheme_key="lidu", key="zhiyuan"))
        today = utcnow().date()
        month = Period("month", today.replace(day=1), today + dt.timedelta(days=1))
        rates = service.satisfaction_rates("lidu", {"id": "s"}, month, [shilong.id, other.id])
        assert rates[shilong.id] == pytest.approx(2 / 3) and rates[other.id] is None
        assert service.satisfaction_rates("lidu", {"id": "s", "categories": ["manhole"]}, month,
                                          [shilong.id])[shilong.id] is None
        days, praised = service.praised("lidu")
        assert [(r["unit"].key, r["count"]) for r in praised] == [("shilong", 2)]


def test_a_position_inside_an_area_or_near_a_road_finds_it(ctx):
    from server.org.service import area_at
    from tests.support.factories import load_shipped

    load_shipped("luzhang")
    roads = [a for a in db.session.scalars(db.select(Area).filter_by(scheme_key="luzhang"))
             if a.geometry and a.geometry.get("type") == "LineString"]
    assert roads, "the road-chief district ships road geometries"
    road = roads[0]
    lng, lat = road.geometry["coordinates"][0]
    assert area_at("luzhang", lat, lng) == road
    assert area_at("luzhang", lat + 0.0005, lng) in roads  # ~55 m off the centre line: still that road
    assert area_at("luzhang", lat + 0.5, lng) is None  # 55 km away: nowhere


def test_reporting_is_off_unless_the_scheme_turns_it_on(ctx):
    from tests.support.factories import load_shipped

    load_shipped("chengguan")  # a scheme without a `public` block: nothing is open
    client = ctx.test_client()
    assert client.get("/p/chengguan/report").status_code == 404
    assert client.get("/p/chengguan/exposed").status_code == 404


def test_security_headers_on_every_page(demo):
    client = demo.test_client()
    for path in ("/p/lidu/report", "/login", "/p/track"):
        headers = client.get(path).headers
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert "script-src 'self'" in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "same-origin"


def test_the_case_page_shows_the_reporters_contact_to_dispatchers_only(demo):
    client = demo.test_client()
    code = _report(client, reporter_name="王五", reporter_phone="13700001234").headers["Location"].rsplit("/", 1)[1]
    with demo.app_context():
        make_user("office", roles=(("lidu", "office_admin", None),))
        make_user("head", roles=(("lidu", "unit_head", "shilong"),))
        report = db.session.scalar(db.select(PublicReport).filter_by(code=code))
        _close(report.case_id)
        service.answer_followup(db.session.get(PublicReport, report.id), True, "fairly_satisfied")
        db.session.commit()
        case_id = report.case_id
    office, head = demo.test_client(), demo.test_client()
    login(office, "office")
    login(head, "head")
    dispatcher = office.get(f"/cases/case/{case_id}").get_data(as_text=True)
    assert "王五" in dispatcher and "13700001234" in dispatcher and "基本满意" in dispatcher
    community = head.get(f"/cases/case/{case_id}").get_data(as_text=True)
    assert "137****1234" in community and "13700001234" not in community and "王五" not in community
    assert code not in dispatcher and code not in community  # the code is the reporter's alone


def test_the_moderators_note_and_the_reporters_note_are_shown_to_staff(demo):
    client = demo.test_client()
    code = _report(client).headers["Location"].rsplit("/", 1)[1]
    with demo.app_context():
        office = make_user("office", roles=(("lidu", "office_admin", None),))
        report = db.session.scalar(db.select(PublicReport).filter_by(code=code))
        service.moderate(office, report, "approved", expose=True, note="<i>可公开</i>")
        _close(report.case_id)
        service.answer_followup(db.session.get(PublicReport, report.id), True, "satisfied", note="<b>谢谢</b>")
        db.session.commit()
        case_id = report.case_id
    staff = demo.test_client()
    login(staff, "office")
    queue = staff.get("/moderation/lidu/?state=approved").get_data(as_text=True)
    assert "&lt;i&gt;可公开&lt;/i&gt;" in queue and "已在曝光台公开" in queue
    case = staff.get(f"/cases/case/{case_id}").get_data(as_text=True)
    assert "&lt;b&gt;谢谢&lt;/b&gt;" in case


def test_the_official_reply_reaches_the_reporter_and_open311(demo):
    """What the handler wrote in a field the step's form marks public (整改情况) is the reply: on the tracking
    page and as Open311 status_notes, once a moderator approved the report; escaped like everything else."""
    from server.auth.models import User
    from server.workflow import service as cases
    from tests.support.clock import TODAY
    from tests.support.factories import formdata, photo

    client = demo.test_client()
    code = _report(client).headers["Location"].rsplit("/", 1)[1]
    with demo.test_request_context():
        report = db.session.scalar(db.select(PublicReport).filter_by(code=code))
        office = make_user("office", roles=(("lidu", "office_admin", None),))
        head = make_user("head", roles=(("lidu", "unit_head", "shilong"),))
        case = report.case
        for user, step, fields in (
                (office, "assign", {"target_unit": "shilong", "instructions": "请处理"}),
                (head, "rectify", {"action_taken": f"已清理完毕{XSS}", "photos_after": photo("after.jpg"),
                                   "finished_at": f"{TODAY}T00:10"})):
            result, page = cases.fire(user, case.id, step, case.version,
                                      formdata(_token=f"{step}-{case.id}", **fields))
            assert page is None, page.errors if page else None
            db.session.commit()
            case = db.session.get(Case, case.id)
        report_id = report.id
    page = client.get(f"/p/track/{code}").get_data(as_text=True)
    assert "已清理完毕" not in page  # not approved yet: the reply waits, like the photos after
    staff = demo.test_client()
    login(staff, "office")
    queue = staff.get("/moderation/lidu/").get_data(as_text=True)
    assert "已清理完毕" in queue and "<script>alert" not in queue  # the moderator sees what approval publishes
    with demo.test_request_context():
        service.moderate(make_user("moderator", roles=(("lidu", "office_admin", None),)),
                         db.session.get(PublicReport, report_id), "approved", expose=False)
        db.session.commit()
    page = client.get(f"/p/track/{code}").get_data(as_text=True)
    assert "已清理完毕" in page and "<script>alert" not in page and "&lt;script&gt;" in page
    one = client.get(f"/open311/v2/requests/{report_id}.json").get_json()
    assert one[0]["status_notes"] == f"已清理完毕{XSS}"  # JSON carries the text; escaping is the reader's page
    xml = client.get(f"/open311/v2/requests/{report_id}.xml").get_data(as_text=True)
    assert "<script>" not in xml and "已清理完毕" in xml
    # The office finds it not done and sends it back: the reply is withdrawn until a new one is written.
    with demo.test_request_context():
        office = db.session.scalar(db.select(User).filter_by(username="office"))
        case = db.session.get(PublicReport, report_id).case
        _case, page = cases.fire(office, case.id, "rework", case.version,
                                 formdata(_token=f"rework-{case.id}", verdict="failed", comment="还有垃圾"))
        assert page is None, page.errors if page else None
        db.session.commit()
    page = client.get(f"/p/track/{code}").get_data(as_text=True)
    assert "已清理完毕" not in page
    assert client.get(f"/open311/v2/requests/{report_id}.json").get_json()[0]["status_notes"] != f"已清理完毕{XSS}"


def test_a_refused_report_tells_its_reason(demo):
    """不予交办 asks why; the reason is the reply the reporter reads (once the report is approved)."""
    from server.workflow import service as cases
    from tests.support.factories import formdata

    client = demo.test_client()
    code = _report(client).headers["Location"].rsplit("/", 1)[1]
    with demo.test_request_context():
        report = db.session.scalar(db.select(PublicReport).filter_by(code=code))
        office = make_user("office", roles=(("lidu", "office_admin", None),))
        case = report.case
        _case, page = cases.fire(office, case.id, "reject", case.version, formdata(_token="r"))
        assert page is not None and "reason" in page.errors  # no reason, no refusal
        db.session.rollback()
        case = db.session.get(Case, case.id)
        _case, page = cases.fire(office, case.id, "reject", case.version,
                                 formdata(_token="r2", reason="该处为私人院落，不属城市管理范围"))
        assert page is None, page.errors if page else None
        service.moderate(office, db.session.get(PublicReport, report.id), "approved", expose=False)
        db.session.commit()
    page = client.get(f"/p/track/{code}").get_data(as_text=True)
    assert "不予受理" in page and "该处为私人院落，不属城市管理范围" in page


def _drawn(monkeypatch) -> list[int]:  # noqa: ANN001
    """Count the report page's drawings (a kept page is filled in, not drawn)."""
    from server.public import views

    drawn: list[int] = []
    real = views.render_page

    def counted(*args, **kwargs):  # noqa: ANN002, ANN003
        drawn.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(views, "render_page", counted)
    return drawn


def _early_in_ten_minutes(time_machine) -> None:  # noqa: ANN001
    """On to the first minute of the next ten (a kept page lasts ten minutes at most: none ends in the test)."""
    now = utcnow()
    time_machine.move_to(now.replace(second=0, microsecond=0) + dt.timedelta(minutes=11 - now.minute % 10))


def _without_tokens(html: str) -> str:
    html = re.sub(r'(name="(?:csrf_token|_token|_stamp)" value=")[^"]*', r"\1", html)
    return re.sub(r'(data-csrf=")[^"]*', r"\1", html)


def test_a_new_visitors_report_page_is_drawn_once_and_each_gets_their_own_tokens(demo, monkeypatch, time_machine):
    _early_in_ten_minutes(time_machine)
    drawn = _drawn(monkeypatch)
    first, second = demo.test_client(), demo.test_client()
    one, two = (c.get("/p/lidu/report?area=shilong_old_street") for c in (first, second))
    assert one.status_code == two.status_code == 200 and len(drawn) == 1  # the second was filled in
    assert _without_tokens(one.get_data(as_text=True)) == _without_tokens(two.get_data(as_text=True))
    assert 'value="shilong_old_street" selected' in two.get_data(as_text=True)  # the board's road, kept
    tokens = [dict(re.findall(r'name="(csrf_token|_token|_stamp)" value="([^"]+)"', r.get_data(as_text=True)))
              for r in (one, two)]
    assert all(tokens[0][name] != tokens[1][name] for name in ("csrf_token", "_token", "_stamp"))
    assert "\x00" not in two.get_data(as_text=True)
    # A report from the page that was filled in is taken: its tokens are its own and valid.
    response = _report(second)
    assert response.status_code == 303 and "/p/track/" in response.headers["Location"], re.findall(
        r"class=\"(?:field-error|flash[^\"]*|error)\"[^>]*>([^<]+)", response.get_data(as_text=True))
    assert len(drawn) == 1  # its form was filled in too: one drawing for every new visitor so far


def test_a_kept_report_page_follows_the_language_the_places_and_the_visitor(demo, monkeypatch, time_machine):
    _early_in_ten_minutes(time_machine)
    drawn = _drawn(monkeypatch)
    client = demo.test_client()
    assert "问题类别" in client.get("/p/lidu/report").get_data(as_text=True)
    english = demo.test_client()
    english.post("/lang/en", data={"csrf_token": _form(english, None)["csrf_token"], "next": "/p/lidu/report"})
    assert "What kind of problem" in english.get("/p/lidu/report").get_data(as_text=True)
    count = len(drawn)
    with demo.app_context():  # a road renamed (and audited): the page is drawn again with its new name
        from server.auth.models import User
        from server.org.engine import AreaValues
        from server.org.service import edit_area

        admin = make_user("renamer", roles=(("lidu", "office_admin", None),))
        road = db.session.scalar(db.select(Area).filter_by(scheme_key="lidu", key="zhiyuan_road"))
        edit_area(db.session.get(User, admin.id), road, AreaValues(
            road.key, road.kind, {"zh": "致远新路", "en": "Zhiyuan New Road"},
            road.parent.key if road.parent else None, road.unit.key if road.unit else None, road.range_from,
            road.range_to, road.length_m, road.geometry, road.description, road.active))
        db.session.commit()
    assert "致远新路" in demo.test_client().get("/p/lidu/report").get_data(as_text=True)
    assert len(drawn) == count + 1
    with demo.app_context():
        make_user("staffer", roles=(("lidu", "staff", "shilong"),))
    staff = demo.test_client()
    login(staff, "staffer")
    staff.get("/p/lidu/report")
    staff.get("/p/lidu/report")
    assert len(drawn) == count + 3  # a signed-in person's page is drawn for them, every time
