"""A period's draft at a city's size: worked out by a job and kept, read a page at a time, shown with the time it
was worked out, worked out again when marks change or it grows old; and the same figures as a draft worked out
on each view. Here the demo district stands for a large one (`FANGAN_DRAFT_LIVE_UNITS` 0)."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from server.assessment import drafts, service
from server.assessment.models import AssessmentDraft, AssessmentDraftRow, AssessmentPeriod
from server.core.clock import utcnow
from server.extensions import db
from server.jobs.models import Job
from server.jobs.queue import run_queued
from server.org.models import Unit
from tests.conftest import csrf_token
from tests.integration.test_assessment import OCTOBER, october  # noqa: F401 - the fixture
from tests.support.factories import login, make_user

ROW = re.compile(r'<tr><td data-label="单位">([^<]+)</td><td data-label="得分">([\d.]+)</td>')


def _rows(page: str) -> dict[str, str]:
    return dict(ROW.findall(page))


@pytest.fixture
def large(app, monkeypatch):  # noqa: ANN001
    monkeypatch.setitem(app.config, "FANGAN_DRAFT_LIVE_UNITS", 0)
    return app


@pytest.fixture
def office_period(october, app):  # noqa: ANN001, F811
    user = make_user("office", roles=(("lidu", "office_admin", None),))
    period = service.open_period(user, "lidu", "lidu_monthly", OCTOBER)
    db.session.commit()
    office = app.test_client()
    login(office, "office")
    return office, period.id, user


def test_a_kept_draft_shows_what_the_live_one_does(office_period, large, monkeypatch):
    office, period_id, _user = office_period
    page = f"/assess/period/{period_id}"
    monkeypatch.setitem(large.config, "FANGAN_DRAFT_LIVE_UNITS", 10_000)
    live = office.get(page).get_data(as_text=True)
    assert 'data-testid="draft-status"' not in live  # small: worked out for the view, nothing kept
    assert db.session.scalar(db.select(db.func.count()).select_from(Job)) == 0
    monkeypatch.setitem(large.config, "FANGAN_DRAFT_LIVE_UNITS", 0)

    first = office.get(page).get_data(as_text=True)
    assert "正在计算" in first and 'hx-trigger="every 2s"' in first and not _rows(first)  # nothing kept yet
    again = office.get(page).get_data(as_text=True)  # a second view does not start a second job
    assert db.session.scalar(db.select(db.func.count()).select_from(Job).filter_by(kind=drafts.DRAFT)) == 1
    assert 'hx-trigger="every 2s"' in again
    status = office.get(f"{page}/draft", headers={"HX-Request": "true"})
    assert status.status_code == 200 and "HX-Refresh" not in status.headers  # still working: polled on
    assert run_queued(large) == 1
    status = office.get(f"{page}/draft", headers={"HX-Request": "true"})
    assert status.headers.get("HX-Refresh") == "true"  # done: the page is loaded again

    kept = office.get(page).get_data(as_text=True)
    assert _rows(kept) == _rows(live) and len(_rows(kept)) >= 4
    assert "88.00" in kept and "计算于" in kept and 'hx-trigger="every 2s"' not in kept
    assert run_queued(large) == 0  # fresh: no job started by the view
    stored = db.session.get(AssessmentDraft, period_id)
    assert stored.units == db.session.scalar(db.select(db.func.count()).select_from(AssessmentDraftRow)
                                             .filter_by(period_id=period_id))


def test_marks_entered_are_worked_out_again_meanwhile_the_kept_draft_shows(office_period, large):
    office, period_id, _user = office_period
    page = f"/assess/period/{period_id}"
    office.get(page)
    run_queued(large)
    shilong = db.session.scalar(db.select(Unit).filter_by(scheme_key="lidu", key="shilong"))
    assessor = make_user("assessor", roles=(("lidu", "assessor", None),))
    period = db.session.get(AssessmentPeriod, period_id)
    service.enter_marks(assessor, period, shilong, "hotspots", {"below_quality": 2}, reason="资料不全")
    db.session.commit()

    stale = office.get(page).get_data(as_text=True)
    assert _rows(stale)["石龙社区"] == "88.00"  # what was kept, said to be worked out again
    assert "正在重新计算" in stale and 'hx-trigger="every 2s"' in stale
    run_queued(large)
    fresh = office.get(page).get_data(as_text=True)
    assert _rows(fresh)["石龙社区"] == "84.00" and 'hx-trigger="every 2s"' not in fresh


def test_an_old_kept_draft_is_worked_out_again(office_period, large, time_machine):
    office, period_id, _user = office_period
    time_machine.move_to(utcnow())  # the suite's clock as it stands (it has run on since NOW), to move on from
    page = f"/assess/period/{period_id}"
    assert "正在计算" in office.get(page).get_data(as_text=True)
    run_queued(large)
    office.get(page)
    assert run_queued(large) == 0
    time_machine.shift(dt.timedelta(minutes=drafts.FRESH_MINUTES + 1))
    office = office.application.test_client()  # the session's idle time is over too
    login(office, "office")
    shown = office.get(page).get_data(as_text=True)
    assert "正在重新计算" in shown, shown[shown.find("<main"):][:3000]
    assert run_queued(large) == 1


def test_a_kept_draft_is_found_by_name_paged_and_kept_to_the_readers_units(office_period, large, monkeypatch):
    from server.assessment import views

    office, period_id, _user = office_period
    page = f"/assess/period/{period_id}"
    office.get(page)
    run_queued(large)
    whole = _rows(office.get(page).get_data(as_text=True))
    monkeypatch.setattr(views, "UNITS_SHOWN", 1)
    first = office.get(page).get_data(as_text=True)
    assert len(_rows(first)) == 1 and 'rel="next"' in first and f"共 {len(whole)} 项" in first.replace(",", "")
    last = office.get(f"{page}?page=999").get_data(as_text=True)
    assert len(_rows(last)) == 1 and 'rel="next"' not in last and _rows(last) != _rows(first)
    found = office.get(f"{page}?q=%E7%9F%B3%E9%BE%99").get_data(as_text=True)  # 石龙
    assert list(_rows(found)) == ["石龙社区"]
    assert not _rows(office.get(f"{page}?q=%25").get_data(as_text=True))  # % is a character, not a wildcard
    assert list(_rows(office.get(f"{page}?q=SHILONG").get_data(as_text=True))) == ["石龙社区"]  # any language

    monkeypatch.setattr(views, "UNITS_SHOWN", 100)
    make_user("head", roles=(("lidu", "unit_head", "shilong"),))
    head = office.application.test_client()
    login(head, "head")
    assert list(_rows(head.get(page).get_data(as_text=True))) == ["石龙社区"]  # their unit, not its rivals


def test_a_units_page_reads_the_kept_draft(office_period, large):
    office, period_id, _user = office_period
    shilong = db.session.scalar(db.select(Unit.id).filter_by(scheme_key="lidu", key="shilong"))
    office.get(f"/assess/period/{period_id}")
    run_queued(large)
    detail = office.get(f"/assess/period/{period_id}/unit/{shilong}").get_data(as_text=True)
    assert 'data-testid="worked-at"' in detail
    assert "问题整改率低于95%，每0.5个百分点扣2分: 20<br>" in detail


def test_what_is_missing_is_counted_over_the_kept_rows(office_period, large):
    office, period_id, _user = office_period
    period = db.session.get(AssessmentPeriod, period_id)
    office.get(f"/assess/period/{period_id}")
    run_queued(large)
    assert drafts.unfinished(period) == service.unfinished(period)
    assert any("尚缺" in reason for reason in drafts.unfinished(period))


def test_a_failed_try_is_not_made_again_on_every_view(office_period, large, monkeypatch):
    office, period_id, _user = office_period
    page = f"/assess/period/{period_id}"
    office.get(page)

    def broken(*_args, **_kwargs):  # noqa: ANN002, ANN003
        raise RuntimeError("planted")

    monkeypatch.setattr(service, "draft", broken)
    run_queued(large)
    shown = office.get(page).get_data(as_text=True)
    assert "无法计算" in shown and run_queued(large) == 0  # said, and not tried again by the view
    monkeypatch.undo()
    monkeypatch.setitem(large.config, "FANGAN_DRAFT_LIVE_UNITS", 0)
    again = office.post(f"{page}/draft", data={"csrf_token": csrf_token(office, page)})
    assert again.status_code == 303 and run_queued(large) == 1  # the office asks again
    assert "88.00" in office.get(page).get_data(as_text=True)


def test_only_the_office_asks_for_a_draft_again(office_period, large):
    office, period_id, _user = office_period
    page = f"/assess/period/{period_id}"
    make_user("head", roles=(("lidu", "unit_head", "shilong"),))
    head = office.application.test_client()
    login(head, "head")
    head.get(page)  # a reader's view may start the work (nothing kept yet)
    run_queued(large)
    token = csrf_token(office, page)
    assert head.post(f"{page}/draft", data={"csrf_token": token}).status_code in (400, 403)
    assert office.post(f"{page}/draft", data={}).status_code == 400  # no CSRF token
    assert office.post(f"{page}/draft", data={"csrf_token": token}).status_code == 303


def test_a_period_finds_its_job_among_many_and_a_unit_changed_works_it_out_again(office_period, large):
    office, period_id, user = office_period
    page = f"/assess/period/{period_id}"
    office.get(page)  # starts the period's job
    for n in range(60):  # other periods' jobs, started since
        db.session.add(Job(kind=drafts.DRAFT, scheme_key="lidu", user_id=user.id, state="queued",
                           params={"period": period_id + 1000 + n}))
    db.session.commit()
    office.get(page)
    mine = [j for j in db.session.scalars(db.select(Job).filter_by(kind=drafts.DRAFT)) if j.params["period"] ==
            period_id]
    assert len(mine) == 1  # found, not started again
    db.session.execute(db.delete(Job).where(Job.id != mine[0].id))
    db.session.commit()
    run_queued(large)
    assert 'hx-trigger="every 2s"' not in office.get(page).get_data(as_text=True)  # fresh
    from server.org.engine import UnitValues
    from server.org.service import edit_unit

    shilong = db.session.scalar(db.select(Unit).filter_by(scheme_key="lidu", key="shilong"))
    edit_unit(user, shilong, UnitValues(shilong.key, shilong.kind, {"zh": "石龙新区", "en": "Shilong New"},
                                        shilong.parent.key if shilong.parent else None, shilong.difficulty,
                                        shilong.active))
    db.session.commit()
    assert "正在重新计算" in office.get(page).get_data(as_text=True)  # who is assessed changed
    run_queued(large)
    assert "石龙新区" in office.get(page).get_data(as_text=True)


def test_a_job_that_read_the_marks_before_the_kept_draft_keeps_nothing(office_period, large):
    office, period_id, user = office_period
    office.get(f"/assess/period/{period_id}")
    run_queued(large)
    kept = db.session.get(AssessmentDraft, period_id)
    later = kept.worked_at + dt.timedelta(hours=1)  # as if a job that read the marks later had written since
    kept.worked_at = later
    db.session.execute(db.update(AssessmentDraftRow).where(AssessmentDraftRow.period_id == period_id)
                       .values(names="kept"))
    db.session.commit()
    drafts.work_out_again(user, db.session.get(AssessmentPeriod, period_id))
    db.session.commit()
    assert run_queued(large) == 1
    db.session.expire_all()
    assert db.session.get(AssessmentDraft, period_id).worked_at == later
    assert set(db.session.scalars(db.select(AssessmentDraftRow.names).filter_by(period_id=period_id))) == {"kept"}
    job = db.session.scalar(db.select(Job).filter_by(kind=drafts.DRAFT).order_by(Job.id.desc()))
    assert job.state == "done" and job.note == "已保留此后计算的草稿成绩。"
