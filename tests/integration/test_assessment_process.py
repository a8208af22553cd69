"""An assessment period from opening to publication and correction: assessors' marks (several combined),
a manual metric, appeals, a frozen published revision and a correction that leaves it readable."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from server.assessment import appeals, bulletins, scoring, service
from server.assessment.models import AssessmentEntry, AssessmentScore
from server.core.errors import Conflict, DomainError, PermissionDenied
from server.extensions import db
from server.org.models import Unit
from server.workflow.models import Case
from tests.integration.test_assessment import OCTOBER, october  # noqa: F401 - the fixture
from tests.support.factories import give_missing_marks, make_user


def _unit(key: str) -> Unit:
    return db.session.scalar(db.select(Unit).filter_by(scheme_key="lidu", key=key))


@pytest.fixture
def people(october):  # noqa: F811
    return {
        "office": make_user("office", roles=(("lidu", "office_admin", None),)),
        "a1": make_user("assessor1", roles=(("lidu", "assessor", None),)),
        "a2": make_user("assessor2", roles=(("lidu", "assessor", None),)),
        "head": make_user("head", roles=(("lidu", "unit_head", "shilong"),)),
    }


def _totals(results) -> dict[str, Decimal]:  # noqa: ANN001
    return {r.unit.key: r.total for r in results}


def test_a_period_from_marks_to_a_corrected_publication(people):
    office, a1, a2, head = people["office"], people["a1"], people["a2"], people["head"]
    shilong = _unit("shilong")
    period = service.open_period(office, "lidu", "lidu_monthly", OCTOBER)
    assert (period.period_key, period.state, period.revision) == ("2026-10", "open", 0)
    assert period.definition_version.key == "lidu_monthly"
    with pytest.raises(Conflict):
        service.open_period(office, "lidu", "lidu_monthly", dt.date(2026, 10, 20))
    assert _totals(service.draft(period))["shilong"] == Decimal("88.00")  # from the data alone

    # One assessor: two hot-spot cases below quality (−2 each).
    service.enter_marks(a1, period, shilong, "hotspots", {"below_quality": 2}, "两个案例资料不全")
    assert _totals(service.draft(period))["shilong"] == Decimal("84.00")
    # A second assessor sees none below quality: the item is the mean of 16 and 20.
    service.enter_marks(a2, period, shilong, "hotspots", {"below_quality": 0})
    assert _totals(service.draft(period))["shilong"] == Decimal("86.00")
    # A manual metric: no working mechanism set up (−5 on the item that checks it).
    service.enter_marks(a1, period, shilong, "metric:mechanism_missing", {"value": 1}, "未建立长效机制")
    assert _totals(service.draft(period))["shilong"] == Decimal("81.00")

    with pytest.raises(DomainError):  # a deduction needs its reason
        service.enter_marks(a1, period, _unit("zhiyuan"), "hotspots", {"below_quality": 1}, "")
    with pytest.raises(DomainError):  # a rule computed from the data is not entered
        service.enter_marks(a1, period, shilong, "hotspots", {"too_few": 1}, "x")
    with pytest.raises(PermissionDenied):  # the unit's own head does not assess it
        service.enter_marks(head, period, shilong, "hotspots", {"below_quality": 0})

    # Units see their drafts and may appeal within the window; publication waits for the decision.
    appeals.open_appeals(office, period, period.version, today=dt.date(2026, 11, 2))
    assert period.state == "appeal" and period.appeal_until == dt.date(2026, 11, 4)  # Monday to Wednesday
    # Marks can still be put right while units appeal (an upheld appeal is applied before publication).
    service.enter_marks(a1, period, shilong, "hotspots", {"below_quality": 2}, "两个案例资料不全，复核确认")
    appeal = appeals.file_appeal(head, period, shilong, "mechanism_in_place", "机制已于9月建立，见附件",
                                 today=dt.date(2026, 11, 4))
    with pytest.raises(Conflict):
        appeals.file_appeal(head, period, shilong, "hotspots", "太晚了", today=dt.date(2026, 11, 6))
    give_missing_marks(office, period)  # the other units have no working mechanism missing either
    with pytest.raises(Conflict):
        service.publish(office, period, period.version)
    appeals.decide_appeal(office, appeal, "rejected", "未见制度文件")
    stale = period.version
    first = service.publish(office, period, period.version)
    db.session.commit()
    assert period.state == "published" and first.number == 1
    with pytest.raises(Conflict):  # a page opened before publication cannot publish again
        service.publish(office, period, stale)
    published = {s.unit.key: s for s in scoring.published_scores(period)}
    assert published["shilong"].total == Decimal("81.00") and published["shilong"].grade == "good"
    assert published["shilong"].items["hotspots"]["score"] == "18.00"
    with pytest.raises(Conflict):  # frozen: marks are not changed any more
        service.enter_marks(a1, period, shilong, "hotspots", {"below_quality": 0})

    # Cases closed after publication do not move anyone's score in a correction: its numbers stay frozen.
    duanqiao = _unit("duanqiao")
    db.session.execute(db.update(Case).where(Case.unit_id == duanqiao.id).values(outcome="resolved",
                                                                                state_kind="final"))
    # A correction is a new revision with who and why; the first stays readable as it was.
    second = service.correct(office, period, shilong, "metric:mechanism_missing", {"value": 0}, "复核发现制度已建立")
    db.session.commit()
    assert {s.unit.key: s.total for s in scoring.published_scores(period)}["duanqiao"] == Decimal("88.00")
    # The marks it replaced are kept (revision 1 was made with them), not deleted.
    kept = db.session.scalars(db.select(AssessmentEntry).filter_by(item_key="metric:mechanism_missing",
                                                                   unit_id=shilong.id)).all()
    assert sorted((e.values["value"], e.superseded_in) for e in kept) == [(0.0, None), (1.0, 1)]
    assert (second.number, second.reason, period.revision) == (2, "复核发现制度已建立", 2)
    assert {s.unit.key: s.total for s in scoring.published_scores(period)}["shilong"] == Decimal("86.00")
    assert {s.unit.key: s.total for s in scoring.published_scores(period, 1)}["shilong"] == Decimal("81.00")
    assert db.session.scalar(db.select(db.func.count(AssessmentScore.id))) == 2 * 8
    with pytest.raises(DomainError):
        service.correct(office, period, shilong, "hotspots", {"below_quality": 1}, "  ")


def test_only_the_office_runs_the_assessment(people):
    with pytest.raises(PermissionDenied):
        service.open_period(people["a1"], "lidu", "lidu_monthly", OCTOBER)
    period = service.open_period(people["office"], "lidu", "lidu_monthly", OCTOBER)
    with pytest.raises(Conflict):  # Lidu's sheet gives units three working days to appeal
        service.publish(people["office"], period)
    with pytest.raises(PermissionDenied):
        service.publish(people["head"], period)
    with pytest.raises(PermissionDenied):  # a community head appeals for their own community only
        appeals.open_appeals(people["office"], period, today=dt.date(2026, 11, 2))
        appeals.file_appeal(people["head"], period, _unit("zhiyuan"), "hotspots", "x", today=dt.date(2026, 11, 2))


def test_publication_records_streak_actions_vetoes_and_money(people, app):
    """A variant of Lidu's sheet with a streak, a veto and money, published for September and October."""
    from server.definitions.service import activate_scheme_version, load_scheme
    from tests.support.factories import demo_files

    files = dict(demo_files())
    name = next(n for n in files if n.endswith("score_sheet.yaml"))
    files[name] += ("\nstreaks:\n  - {id: twice_low, name: 连续两月低于89分, when: score < 89, times: 2, "
                    "action: 诫勉谈话}\nvetoes:\n  - {id: no_hotspot, name: 未治理热点难点问题, when: hotspots == 0, "
                    "period: month}\nfunding: {base_amount: 10000, base_score: 90, step_points: 1, "
                    "step_amount: 500, floor: 5000, cap: 12000}\n")
    version, _ = load_scheme(files)
    activate_scheme_version(version.id)
    office = people["office"]
    for day in (dt.date(2026, 9, 1), OCTOBER):
        period = service.open_period(office, "lidu", "lidu_monthly", day)
        give_missing_marks(office, period)
        service.publish(office, period, close_appeals=True)
    db.session.commit()
    scores = {s.unit.key: s for s in scoring.published_scores(period)}
    zhiyuan, shilong = scores["zhiyuan"], scores["shilong"]
    # Zhiyuan: 82 in October (and below 89 in September): the two-month streak's action is recorded.
    assert zhiyuan.total == Decimal("82.00") and [a["id"] for a in zhiyuan.actions] == ["twice_low"]
    # No hot-spot case: vetoed, so unqualified whatever the score; money: 90 − 8 points → 10000 − 4000.
    assert zhiyuan.vetoes == ["no_hotspot"] and zhiyuan.grade == "unqualified" and zhiyuan.passing is False
    assert zhiyuan.funding == Decimal("6000.00")
    # Shilong solved its hot spot: not vetoed; 88 → two points below the base: 9000.
    assert shilong.vetoes == [] and shilong.grade == "good" and shilong.funding == Decimal("9000.00")
    assert shilong.actions == [{"id": "twice_low", "name": "连续两月低于89分", "action": "诫勉谈话"}]
    # The consequence is on the bulletin and on the public list, not only on the period page.
    from server.assessment import bulletins

    (action, held), = bulletins.bulletin(period)["consequences"]
    assert action["id"] == "twice_low" and {"zhiyuan", "shilong"} <= {s.unit.key for s in held}
    public = bulletins.public_flags("lidu")
    assert any(a["id"] == "twice_low" and any(u.key == "shilong" for u in units)
               for board in public for a, units in board["consequences"])
    page = app.test_client().get("/assess/lidu/flags").get_data(as_text=True)
    assert "连续两月低于89分" in page and "诫勉谈话" in page


def test_a_new_sheet_version_tried_on_a_past_period(people, app):
    """Before activating a stricter sheet (no campaign −10), the office sees how October would change."""
    from server.definitions.service import load_scheme
    from tests.support.factories import demo_files

    office = people["office"]
    period = service.open_period(office, "lidu", "lidu_monthly", OCTOBER)
    give_missing_marks(office, period)
    service.publish(office, period, close_appeals=True)
    files = dict(demo_files())
    name = next(n for n in files if n.endswith("score_sheet.yaml"))
    files[name] = files[name].replace("label: {zh: 未开展专题治理，扣5分, en: \"No themed campaign: −5\"}\n"
                                      "            points: 5", "label: {zh: 未开展专题治理，扣10分, en: \"No themed "
                                      "campaign: −10\"}\n            points: 10")
    assert "扣10分" in files[name]
    stricter, _ = load_scheme(files)  # stored, not activated
    db.session.commit()
    rows = {r.unit.key: r for r in bulletins.compare_versions(office, period, stricter.id)}
    # Shilong ran its campaign: unchanged. Zhiyuan did not: 82 → 77, and from 良好 to 合格.
    assert (rows["shilong"].before, rows["shilong"].after) == (Decimal("88.00"), Decimal("88.00"))
    assert (rows["zhiyuan"].before, rows["zhiyuan"].after, rows["zhiyuan"].change) == (
        Decimal("82.00"), Decimal("77.00"), Decimal("-5.00"))
    assert (rows["zhiyuan"].grade_before.id, rows["zhiyuan"].grade_after.id) == ("good", "qualified")
    assert rows["shilong"].rank_after == 1 and rows["longqiao"].rank_after == 2  # 90 → 85, below Shilong
    # The published revision is untouched, and the page shows the same.
    assert {s.unit.key: s.total for s in scoring.published_scores(period)}["zhiyuan"] == Decimal("82.00")
    client = app.test_client()
    from tests.support.factories import login

    login(client, "office")
    page = client.get(f"/assess/period/{period.id}/compare?version={stricter.id}").get_data(as_text=True)
    assert "77.00" in page and "-5.00" in page
    with pytest.raises(PermissionDenied):
        bulletins.compare_versions(people["a1"], period, stricter.id)

    # A large district (here the demo taken for one): the dry run is a job, its workbook lists every unit.
    import io

    from openpyxl import load_workbook

    from tests.support.jobs import run_job_from

    app.config["FANGAN_DRAFT_LIVE_UNITS"] = 0
    try:
        compare = f"/assess/period/{period.id}/compare?version={stricter.id}"
        page = client.get(compare).get_data(as_text=True)
        assert "77.00" not in page and 'method="post"' in page  # nothing worked out in the request
        done = run_job_from(client, f"/assess/period/{period.id}/compare", {"version": str(stricter.id)},
                            token_from=compare)
        assert "得分有变化" in done.page and f'href="/assess/period/{period.id}/compare' in done.page
        sheet = load_workbook(io.BytesIO(done.content)).active
        table = {row[0]: row for row in sheet.iter_rows(min_row=2, values_only=True)}
        assert len(table) == len(rows)
        assert table["致远社区"][1:4] == (82, 77, -5) and table["致远社区"][6:] == ("良好", "合格")
        assert table["石龙社区"][1:4] == (88, 88, 0)
    finally:
        app.config.pop("FANGAN_DRAFT_LIVE_UNITS")


def test_only_the_assessed_units_people_appeal_and_never_against_their_own_marks(people):
    """The office, leaders and assessors see every unit's draft but appeal for none; a unit's own head does; a
    role the sheet names in `appeal_roles` may; and someone who marked an item does not appeal against it."""
    from server.auth import permissions

    office, a1, head = people["office"], people["a1"], people["head"]
    leader = make_user("leader", roles=(("lidu", "leader", None),))
    # A community head who is also one of the district's assessors (a small street's double hat).
    both = make_user("both", roles=(("lidu", "unit_head", "shilong"), ("lidu", "assessor", None)))
    shilong = _unit("shilong")
    period = service.open_period(office, "lidu", "lidu_monthly", OCTOBER)
    service.enter_marks(both, period, shilong, "hotspots", {"below_quality": 1}, "一个案例资料不全")
    appeals.open_appeals(office, period, period.version, today=dt.date(2026, 11, 2))
    for outsider in (office, a1, leader):
        assert permissions.can_view_unit_scores(outsider, shilong)  # they see it…
        with pytest.raises(PermissionDenied):  # …but do not appeal for it
            appeals.file_appeal(outsider, period, shilong, "mechanism_in_place", "x", today=dt.date(2026, 11, 2))
    assert appeals.file_appeal(head, period, shilong, "hotspots", "资料已补齐", today=dt.date(2026, 11, 2))
    with pytest.raises(DomainError):  # "you may not appeal against your own marks"
        appeals.file_appeal(both, period, shilong, "hotspots", "资料已补齐", today=dt.date(2026, 11, 2))
    assert appeals.file_appeal(both, period, shilong, "mechanism_in_place", "机制已建立", today=dt.date(2026, 11, 2))
    # A sheet's appeal_roles let a role that reaches the unit appeal for it (here: leaders, district-wide).
    assert not permissions.can_appeal(leader, shilong)
    assert permissions.can_appeal(leader, shilong, ("leader",))
    assert not permissions.can_appeal(leader, shilong, ("office_admin",))


def test_the_money_ledger_funding_by_group_flag_rewards_and_charges(people, app):
    """One money ledger per unit and period: the group's funding, the red flag's reward, a charge per week a
    community head missed — stored at publication, on the period page, the bulletin and in the API."""
    from server.assessment import bulletins
    from server.definitions.service import activate_scheme_version, load_scheme
    from tests.support.factories import demo_files, login

    files = dict(demo_files())
    name = next(n for n in files if n.endswith("score_sheet.yaml"))
    assert "    kind: top\n    count: 2\n" in files[name]
    top = "    kind: top\n    count: 2\n"
    files[name] = files[name].replace(top, top + "    amount: 1000\n")
    files[name] += ("\nfunding: {base_amount: 10000, base_score: 90, step_points: 1, step_amount: 500, floor: 5000, "
                    "cap: 12000, groups: {town_communities: {base_amount: 8000}}}\n"
                    "charges:\n  - {id: missed_week, name: 路长缺巡, metric: community_head_missed_weeks, "
                    "amount: 50}\n")
    version, _ = load_scheme(files)
    activate_scheme_version(version.id)
    office = people["office"]
    period = service.open_period(office, "lidu", "lidu_monthly", OCTOBER)
    give_missing_marks(office, period)
    service.publish(office, period, close_appeals=True)
    db.session.commit()
    scores = {s.unit.key: s for s in scoring.published_scores(period)}
    checked = 0
    for key, score in scores.items():
        lines = {line["kind"] + ":" + line["id"]: line for line in score.ledger}
        community = score.unit.kind == "community"
        base = Decimal(8000 if community else 10000)
        points = int((Decimal(score.total) - 90) if score.total >= 90 else -((90 - Decimal(score.total)) // 1))
        expected = min(max(base + points * 500, Decimal(5000)), Decimal(12000))
        assert Decimal(lines["funding:funding"]["amount"]) == expected, (key, score.total, lines)
        assert ("flag:red_flag" in lines) == ("red_flag" in score.flags)
        if "red_flag" in score.flags:
            assert lines["flag:red_flag"]["amount"] == "1000.00"
        missed = score.metrics.get("community_head_missed_weeks") or 0
        if missed:
            assert lines["charge:missed_week"]["count"] == missed
            assert Decimal(lines["charge:missed_week"]["amount"]) == -50 * Decimal(missed)
            checked += 1
        assert score.money_total == sum(Decimal(line["amount"]) for line in score.ledger)
    assert any("red_flag" in s.flags for s in scores.values()) and checked > 0
    shilong = scores["shilong"]
    bulletin = bulletins.bulletin(period)
    assert any(s.unit.key == "shilong" and s.ledger for s in bulletin["scores"])
    client = app.test_client()
    login(client, "office")
    page = client.get(f"/assess/period/{period.id}").get_data(as_text=True)
    assert f"{shilong.money_total:.2f}" in page or shilong.ledger[0]["amount"] in page
    bulletin_page = client.get(f"/assess/period/{period.id}/bulletin").get_data(as_text=True)
    assert f"{shilong.money_total:.2f}" in bulletin_page
    from server.api import service as api

    _client, token = api.create_client("office-system", "office")
    db.session.commit()
    answer = app.test_client().get(f"/api/v1/assessment/periods/{period.id}/scores",
                                   headers={"Authorization": f"Bearer {token}"}).get_json()
    rows = answer["scores"]
    mine = next(r for r in rows if r["unit"] == "shilong")
    assert mine["money"]["total"] == float(shilong.money_total)
    assert [line["kind"] for line in mine["money"]["lines"]] == [line["kind"] for line in shilong.ledger]
