"""The assessment through its pages: open a period, an assessor's marks with an evidence photo, appeals,
publication, a correction as a new revision while the published one stays readable; who may do what."""

from __future__ import annotations

import io
import re

from server.assessment.models import AssessmentAppeal, AssessmentEntry, AssessmentPeriod
from server.extensions import db
from server.org.models import Unit
from tests.conftest import csrf_token
from tests.integration.test_assessment import OCTOBER, october  # noqa: F401 - the fixture
from tests.support.factories import give_missing_marks, login, make_user
from tests.support.images import jpeg
from tests.support.jobs import run_job_from, run_started, start


def _token(client, path: str) -> str:  # noqa: ANN001
    return csrf_token(client, path)


def test_period_through_the_pages(october, app):  # noqa: F811
    make_user("office", roles=(("lidu", "office_admin", None),))
    make_user("assessor", roles=(("lidu", "assessor", None),))
    make_user("head", roles=(("lidu", "unit_head", "shilong"),))
    shilong = db.session.scalar(db.select(Unit.id).filter_by(scheme_key="lidu", key="shilong"))
    office, assessor, head = app.test_client(), app.test_client(), app.test_client()
    login(office, "office")
    login(assessor, "assessor")
    login(head, "head")

    assert assessor.post("/assess/lidu/", data={"csrf_token": _token(assessor, "/assess/lidu/"),
                                                "sheet": "lidu_monthly", "day": "2026-10-01"}).status_code == 403
    response = office.post("/assess/lidu/", data={"csrf_token": _token(office, "/assess/lidu/"),
                                                  "sheet": "lidu_monthly", "day": "2026-10-01"})
    assert response.status_code == 303
    period = db.session.scalar(db.select(AssessmentPeriod))
    page = office.get(f"/assess/period/{period.id}").get_data(as_text=True)
    assert "石龙社区" in page and "88.00" in page

    marks = f"/assess/period/{period.id}/unit/{shilong}/hotspots"
    form = assessor.get(marks).get_data(as_text=True)
    assert 'name="r_below_quality"' in form and 'name="r_too_few"' not in form
    bad = assessor.post(marks, data={"csrf_token": _token(assessor, marks), "r_below_quality": "2", "reason": ""},
                        content_type="multipart/form-data")
    assert bad.status_code == 400 and 'value="2"' in bad.get_data(as_text=True)  # kept, with the error
    good = assessor.post(marks, data={"csrf_token": _token(assessor, marks), "r_below_quality": "2",
                                      "reason": "<b>资料不全</b>", "evidence": [(io.BytesIO(jpeg()), "e.jpg")]},
                         content_type="multipart/form-data")
    assert good.status_code == 303
    entry = db.session.scalar(db.select(AssessmentEntry))
    assert entry.values == {"below_quality": 2.0} and len(entry.evidence) == 1  # a blank field is not a 0
    photo = f"/f/uploads/{entry.evidence[0]}"
    assert assessor.get(photo).status_code == 200 and office.get(photo).status_code == 200
    assert head.get(photo).status_code == 200  # the unit sees the evidence behind its deduction
    outsider = app.test_client()
    make_user("other_head", roles=(("lidu", "unit_head", "zhiyuan"),))
    login(outsider, "other_head")
    assert outsider.get(photo).status_code == 403
    assert head.post(marks, data={"csrf_token": _token(head, marks), "r_below_quality": "0"},
                     content_type="multipart/form-data").status_code == 403
    assert "84.00" in office.get(f"/assess/period/{period.id}").get_data(as_text=True)

    page = f"/assess/period/{period.id}"
    version = re.search(r'name="version" type="hidden" value="(\d+)"', office.get(page).get_data(as_text=True))
    step = {"csrf_token": _token(office, page), "version": version.group(1) if version else ""}
    assert office.post(f"{page}/appeals", data=step).status_code == 303
    appeal = f"/assess/period/{period.id}/appeal/{shilong}"
    assert head.post(appeal, data={"csrf_token": _token(head, appeal), "item": "hotspots",
                                   "text": "案例已补充"}).status_code == 303
    db.session.expire_all()
    step["version"] = str(db.session.get(AssessmentPeriod, period.id).version)
    assert office.post(f"{page}/publish", data=step).status_code == 409  # an appeal is undecided
    appeal_id = db.session.scalar(db.select(AssessmentAppeal.id))
    assert office.post(f"/assess/appeal/{appeal_id}/decide", data={
        "csrf_token": _token(office, page), "decision": "rejected", "note": "未见补充材料"}).status_code == 303
    assert office.post(f"{page}/publish", data=step).status_code == 409  # the appeal window is still open
    from server.auth.models import User

    give_missing_marks(db.session.scalar(db.select(User).filter_by(username="office")), period)
    publishing = run_started(office, office.post(f"{page}/publish", data={**step, "close_appeals": "y"}))
    assert "已发布（第1版）" in publishing.page and f'href="{page}"' in publishing.page  # and back to the period
    published = office.get(page).get_data(as_text=True)
    assert "84.00" in published and "&lt;b&gt;" not in published

    # A correction publishes the district again: a job, whose page says so and leads back to the period.
    refused = office.post(marks, data={"csrf_token": _token(office, marks), "r_below_quality": "0", "reason": ""},
                          content_type="multipart/form-data")
    assert refused.status_code == 400 and "说明" in refused.get_data(as_text=True)  # why: asked at once
    correct = run_started(office, office.post(marks, data={"csrf_token": _token(office, marks),
                                                           "r_below_quality": "0", "reason": "复核后不扣分"},
                                              content_type="multipart/form-data"))
    assert "已更正，并已发布（第2版）" in correct.page and f'href="{page}"' in correct.page
    latest = office.get(page).get_data(as_text=True)
    first = office.get(f"{page}?revision=1").get_data(as_text=True)
    assert "88.00" in latest and "复核后不扣分" in latest
    assert "84.00" in first
    # A manual metric is corrected from the page too: no working mechanism after all (−5), revision 3.
    metric = f"/assess/period/{period.id}/unit/{shilong}/metric:mechanism_missing"
    assert metric in latest
    assert assessor.get(metric).status_code == 403  # published: only the office corrects
    assert assessor.post(metric, data={"csrf_token": _token(assessor, metric), "r_value": "1", "reason": "x"},
                         content_type="multipart/form-data").status_code == 403  # published: the office's
    fixed = run_started(office, office.post(metric, data={"csrf_token": _token(office, metric), "r_value": "1",
                                                          "reason": "抽查发现未建立机制"},
                                            content_type="multipart/form-data"))
    assert "已更正，并已发布（第3版）" in fixed.page
    assert "83.00" in office.get(page).get_data(as_text=True)
    assert "88.00" in office.get(f"{page}?revision=2").get_data(as_text=True)


def test_bulletin_page_and_pdf(october, app):  # noqa: F811
    import pypdf

    from server.assessment import service

    office_user = make_user("office", roles=(("lidu", "office_admin", None),))
    make_user("head", roles=(("lidu", "unit_head", "shilong"),))
    for day in (OCTOBER.replace(month=9), OCTOBER):
        period = service.open_period(office_user, "lidu", "lidu_monthly", day)
        give_missing_marks(office_user, period)
        service.publish(office_user, period, close_appeals=True)
    db.session.commit()
    office = app.test_client()
    login(office, "office")
    page = office.get(f"/assess/period/{period.id}/bulletin").get_data(as_text=True)
    assert "场镇所在社区" in page and "<svg" in page and "石龙社区" in page
    assert "+6.00" in page  # Shilong: 82 in September, 88 in October
    bulletin = f"/assess/period/{period.id}/bulletin"
    printed = run_job_from(office, f"{bulletin}.pdf", {"revision": "1"}, token_from=bulletin)  # the page's button
    assert printed.mimetype == "application/pdf" and printed.name == "bulletin-lidu_monthly-2026-10-r1.pdf"
    text = "".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(printed.content)).pages)
    compact = text.replace(" ", "").replace("\n", "")
    assert "李渡街道城镇综合管理马路办公推进落实工作考核" in compact and "2026-10" in compact
    assert compact.count("场镇所在社区") >= 2  # the table's heading and the chart's title (drawn as SVG text)
    assert "石龙社区" in compact and "88.00" in compact and "良好" in compact
    from tests.unit.test_pdf import embedded_fonts

    assert any(f.startswith("embedded:") and ("WenQuanYi" in f or "CJK" in f) for f in embedded_fonts(printed.content))
    # A unit's head sees its own scores, not the whole bulletin.
    head = app.test_client()
    login(head, "head")
    assert head.get(f"/assess/period/{period.id}/bulletin").status_code == 403
    assert start(head, f"{bulletin}.pdf", token_from="/account/password").status_code == 403  # nor its PDF


def test_public_flags_page(october, app):  # noqa: F811
    from server.assessment import service
    from server.definitions.service import activate_scheme_version, load_scheme
    from tests.support.factories import demo_files

    anonymous = app.test_client()
    files = dict(demo_files())
    name = next(n for n in files if n.endswith("scheme.yaml"))
    assert "  flags_list: true\n" in files[name]
    files[name] = files[name].replace("  flags_list: true\n", "  flags_list: false\n")
    version, _ = load_scheme(files)
    activate_scheme_version(version.id)
    assert anonymous.get("/assess/lidu/flags").status_code == 404  # a district that does not publish them
    activate_scheme_version(load_scheme(demo_files())[0].id)  # Lidu does
    office = make_user("office", roles=(("lidu", "office_admin", None),))
    period = service.open_period(office, "lidu", "lidu_monthly", OCTOBER)
    give_missing_marks(office, period)
    service.publish(office, period, close_appeals=True)
    db.session.commit()
    page = anonymous.get("/assess/lidu/flags").get_data(as_text=True)
    assert "红旗" in page and "石龙社区" in page and "2026-10" in page
    assert "88.00" not in page  # flags only, no scores


def test_dashboard_and_drill_down(october, app):  # noqa: F811
    from server.assessment import service

    office_user = make_user("office", roles=(("lidu", "office_admin", None),))
    make_user("leader", roles=(("lidu", "leader", None),))
    make_user("staff", roles=(("lidu", "staff", "shilong"),))
    period = service.open_period(office_user, "lidu", "lidu_monthly", OCTOBER)
    give_missing_marks(office_user, period)
    service.publish(office_user, period, close_appeals=True)
    db.session.commit()
    leader = app.test_client()
    login(leader, "leader")
    page = leader.get("/assess/lidu/dashboard").get_data(as_text=True)
    assert "石龙社区" in page and "88.00" in page and "<svg" in page
    shilong = db.session.scalar(db.select(Unit.id).filter_by(scheme_key="lidu", key="shilong"))
    detail = leader.get(f"/assess/period/{period.id}/unit/{shilong}").get_data(as_text=True)
    assert "问题整改率低于95%，每0.5个百分点扣2分: 20<br>" in detail  # before the item's cap of 10
    assert detail.count("/cases/case/") == 2  # the two cases not rectified
    assert "社区主要干部每周不少于1次" in detail and "2026-10-12" in detail  # the week the head missed
    staff = app.test_client()
    login(staff, "staff")
    assert staff.get("/assess/lidu/dashboard").status_code == 403


def test_public_scores_page(october, app):  # noqa: F811
    from server.assessment import service
    from server.org.models import Unit

    anonymous = app.test_client()
    assert anonymous.get("/assess/lidu/scores").get_data(as_text=True).count("<table") == 0  # nothing yet
    office = make_user("office", roles=(("lidu", "office_admin", None),))
    period = service.open_period(office, "lidu", "lidu_monthly", OCTOBER)
    give_missing_marks(office, period)
    service.publish(office, period, close_appeals=True)
    hidden = db.session.scalar(db.select(Unit).filter_by(scheme_key="lidu", key="party_office"))
    hidden.public = False  # a unit the district keeps off public pages
    db.session.commit()
    page = anonymous.get("/assess/lidu/scores").get_data(as_text=True)
    assert "石龙社区" in page and "88.00" in page and "良好" in page and "2026-10" in page
    assert "党政办公室" not in page and "平安建设办公室" in page
    assert anonymous.get("/assess/chengguan/scores").status_code == 404  # a district that does not publish them


def test_a_period_page_is_found_by_name_and_paged(october, app, monkeypatch):  # noqa: F811
    """Ten thousand units are not one page: the rows are shown a page at a time, and found by name."""
    from server.assessment import views

    make_user("office", roles=(("lidu", "office_admin", None),))
    office = app.test_client()
    login(office, "office")
    office.post("/assess/lidu/", data={"csrf_token": _token(office, "/assess/lidu/"), "sheet": "lidu_monthly",
                                       "day": "2026-10-01"})
    period = db.session.scalar(db.select(AssessmentPeriod))
    rows = lambda page: page.count('<td data-label="得分">')  # noqa: E731 - one a row
    whole = office.get(f"/assess/period/{period.id}").get_data(as_text=True)
    monkeypatch.setattr(views, "UNITS_SHOWN", 1)
    first = office.get(f"/assess/period/{period.id}").get_data(as_text=True)
    assert rows(whole) >= 4 and rows(first) == 1 and 'rel="next"' in first
    last = office.get(f"/assess/period/{period.id}?page=999").get_data(as_text=True)  # past the end: the last
    assert rows(last) == 1 and 'rel="prev"' in last and 'rel="next"' not in last
    found = office.get(f"/assess/period/{period.id}?q=%E7%9F%B3%E9%BE%99").get_data(as_text=True)  # 石龙
    assert rows(found) == 1 and "石龙社区" in found and 'value="石龙"' in found
