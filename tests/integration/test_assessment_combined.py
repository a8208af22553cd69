"""Seed 003's year score: the monthly average 60 % and the year-end check 40 %, from published periods."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from server.assessment import dashboard, scoring, service
from server.assessment.models import AssessmentPeriod, AssessmentRevision, AssessmentScore
from server.extensions import db
from server.org.models import Unit
from tests.support.clock import NOW
from tests.support.factories import load_shipped


def _published(sheet: str, key: str, start: dt.date, end: dt.date, totals: dict[str, str]) -> None:
    _row, _spec = scoring.sheet_of("chengguan", sheet)
    period = AssessmentPeriod(scheme_key="chengguan", sheet_key=sheet, definition_version=_row, period_key=key,
                              starts_on=start, ends_on=end, state="published", revision=1)
    revision = AssessmentRevision(period=period, number=1)
    for unit_key, total in totals.items():
        unit_id = db.session.scalar(db.select(Unit.id).filter_by(scheme_key="chengguan", key=unit_key))
        revision.scores.append(AssessmentScore(unit_id=unit_id, total=Decimal(total), grade=None, passing=True,
                                               ranks={}, flags=[], items={}, metrics={}))
    db.session.add_all([period, revision])
    db.session.flush()


def test_year_score_from_monthly_average_and_year_end(ctx):
    load_shipped("chengguan")
    units = [u.key for u in scoring.assessed_units("chengguan", scoring.sheet_of("chengguan", "chengguan_monthly")[1])]
    first, second = units[0], units[1]
    _published("chengguan_monthly", "2026-01", dt.date(2026, 1, 1), dt.date(2026, 1, 31), {first: "90", second: "70"})
    _published("chengguan_monthly", "2026-02", dt.date(2026, 2, 1), dt.date(2026, 2, 28), {first: "85", second: "75"})
    _published("chengguan_year_end", "2026", dt.date(2026, 1, 1), dt.date(2026, 12, 31), {first: "80"})
    _published("chengguan_monthly", "2025-12", dt.date(2025, 12, 1), dt.date(2025, 12, 31), {first: "10"})  # not 2026
    span, rows = scoring.combined_scores("chengguan", "chengguan_monthly", "year_total", dt.date(2026, 6, 1))
    by_unit = {r.unit.key: r for r in rows}
    assert span.key == "2026"
    # 0.6 × (90 + 85) / 2 + 0.4 × 80 = 52.5 + 32 = 84.5
    assert by_unit[first].averages == {"chengguan_monthly": Decimal("87.5"), "chengguan_year_end": Decimal(80)}
    assert by_unit[first].score == Decimal("84.5") and by_unit[first].grade.id is not None
    # No year-end check published for the second unit: no year score yet.
    assert by_unit[second].score is None and by_unit[second].averages["chengguan_monthly"] == Decimal(72.5)


def test_cli_combine(ctx, app):
    load_shipped("chengguan")
    result = app.test_cli_runner().invoke(args=["assess", "combine", "chengguan", "chengguan_monthly", "year_total",
                                                "--on", "2026-12-31"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1] == "unit\tchengguan_monthly\tchengguan_year_end\tscore\tgrade"


def test_rubbish_piles_counted_with_the_metric_filters(ctx):
    """Seed 003 篇3: a pile cleared in time costs nothing; one left late −0.01, and −0.01 more if small, −0.02
    more if big (filters)."""
    from server.workflow.models import Case
    from server.workflow.service import workflow_version

    load_shipped("chengguan")
    street = db.session.scalar(db.select(Unit).filter_by(scheme_key="chengguan", key="xx_street"))
    version = workflow_version("chengguan", "digital_city")
    at = dt.datetime(2026, 10, 12, 3, tzinfo=dt.UTC)
    sizes = [(1, False)] * 7 + [(1, True), (2.5, True), (5, True)]  # ten piles; three left late
    for size, late in sizes:
        db.session.add(Case(scheme_key="chengguan", workflow_key="digital_city", definition_version_id=version.id,
                            state="x", state_kind="open", data={"size_m3": size}, category="event_piled_rubbish",
                            unit_id=street.id, overdue=late, created_at=at))
    db.session.flush()
    _period, results = scoring.score_period("chengguan", "chengguan_rubbish", dt.date(2026, 10, 1))
    result = next(r for r in results if r.unit.key == "xx_street")
    assert (result.metrics["piles_found"], result.metrics["late_small_piles"], result.metrics["late_big_piles"]) == (
        3, 2, 1)
    assert result.total == Decimal("99.93")  # 100 − 3 × 0.01 − 2 × 0.01 − 1 × 0.02: the seven in time cost nothing


def test_dashboard_takes_each_sheets_latest_period(ctx):
    """Communities on the monthly sheet, the squad on its own rating: both show on the dashboard."""
    from tests.support.factories import make_user

    load_shipped("chengguan")
    leader = make_user("leader", roles=(("chengguan", "leader", None),))
    community = scoring.assessed_units("chengguan", scoring.sheet_of("chengguan", "chengguan_monthly")[1])[0].key
    _published("chengguan_monthly", "2026-10", dt.date(2026, 10, 1), dt.date(2026, 10, 31), {community: "91"})
    _published("chengguan_squad_rating", "2026-09", dt.date(2026, 9, 1), dt.date(2026, 9, 30), {"ting_squad": "83"})
    rows = {r.unit.key: r for r in dashboard.dashboard(leader, "chengguan", dt.date(2026, 11, 2), NOW)}
    assert rows[community].score == Decimal(91) and rows[community].period.period_key == "2026-10"
    assert rows["ting_squad"].score == Decimal(83) and rows["ting_squad"].period.sheet_key == "chengguan_squad_rating"


def _illegal_buildings(unit: Unit, per_month: dict[int, int], held_by: Unit | None = None) -> None:
    """Illegal buildings found in `unit`'s grid, handed to `held_by` (default the community itself)."""
    from server.org.models import Area
    from server.workflow.models import Case
    from server.workflow.service import workflow_version

    version = workflow_version("chengguan", "digital_city")
    grid = db.session.scalar(db.select(Area).filter_by(scheme_key="chengguan", unit_id=unit.id))
    for month, count in per_month.items():
        for _ in range(count):
            db.session.add(Case(scheme_key="chengguan", workflow_key="digital_city", definition_version_id=version.id,
                                state="x", state_kind="final", data={}, category="event_illegal_structure",
                                unit_id=(held_by or unit).id, area_id=grid.id,
                                created_at=dt.datetime(2026, month, 10, 3, tzinfo=dt.UTC)))
    db.session.flush()


def test_year_veto_read_on_the_year_so_far_in_each_month_and_in_the_year_score(ctx):
    """篇8: more than 20 new illegal buildings in the 辖区 in the year fails every unit, whatever its score; the
    monthly sheet counts the year so far, and the year score is failed too."""
    load_shipped("chengguan")
    sheet = scoring.sheet_of("chengguan", "chengguan_monthly")[1]
    community, other = scoring.assessed_units("chengguan", sheet)[:2]
    squad = db.session.scalar(db.select(Unit).filter_by(scheme_key="chengguan", key="ting_squad"))
    _illegal_buildings(community, {1: 8, 2: 8})        # 8, then 16 in the street this year
    _illegal_buildings(other, {3: 4})                  # 20 by March: the limit itself is allowed …
    _illegal_buildings(other, {3: 1}, held_by=squad)   # … and one more, handed to the squad: 21, in the 辖区

    def result(day: dt.date, unit: Unit) -> scoring.UnitResult:
        return next(r for r in scoring.score_period("chengguan", "chengguan_monthly", day)[1] if r.unit == unit)

    february, march = result(dt.date(2026, 2, 1), community), result(dt.date(2026, 3, 1), community)
    assert february.vetoes == [] and february.grade.passing
    assert [v.id for v in march.vetoes] == ["illegal_buildings"]
    assert march.grade == service.engine.failing_grade(sheet) and march.total > 0  # the score itself stands
    assert not any(f.kind == "top" for f in march.flags)
    assert [v.id for v in result(dt.date(2026, 3, 1), other).vetoes] == ["illegal_buildings"]  # the street's total
    # Next year the count starts again.
    assert result(dt.date(2027, 1, 1), community).vetoes == []

    _published("chengguan_monthly", "2026-03", dt.date(2026, 3, 1), dt.date(2026, 3, 31),
               {community.key: "95", other.key: "95"})
    _published("chengguan_year_end", "2026", dt.date(2026, 1, 1), dt.date(2026, 12, 31),
               {community.key: "95", other.key: "95"})
    _span, rows = scoring.combined_scores("chengguan", "chengguan_monthly", "year_total", dt.date(2026, 12, 31))
    by_unit = {r.unit: r for r in rows}
    assert by_unit[community].score == Decimal(95)
    assert [v.id for v in by_unit[community].vetoes] == ["illegal_buildings"]
    assert by_unit[community].grade.passing is False
    assert [v.id for v in by_unit[other].vetoes] == ["illegal_buildings"] and not by_unit[other].grade.passing


def test_raters_mark_only_the_sheets_and_items_their_roles_are_named_for(ctx):
    """Seed 003 篇1 考核方法4: the communities rate the station and the squad; the office marks the communities.
    A community rater reaches the whole district, yet never marks a rival community."""
    import pytest

    from server.core.errors import PermissionDenied
    from tests.support.factories import make_user

    load_shipped("chengguan")
    office = make_user("cg_office", roles=(("chengguan", "office_admin", None),))
    assessor = make_user("cg_assessor", roles=(("chengguan", "office_assessor", None),))
    rater = make_user("cg_rater", roles=(("chengguan", "community_rater", None),))
    brigade = make_user("cg_brigade", roles=(("chengguan", "brigade_assessor", None),))
    day = dt.date(2026, 10, 1)
    monthly = service.open_period(office, "chengguan", "chengguan_monthly", day)
    station = service.open_period(office, "chengguan", "chengguan_sanitation_rating", day)
    squad = service.open_period(office, "chengguan", "chengguan_squad_rating", day)
    community = scoring.assessed_units("chengguan", service.sheet_spec_of(monthly))[0]
    sanitation = scoring.assessed_units("chengguan", service.sheet_spec_of(station))[0]
    squad_unit = scoring.assessed_units("chengguan", service.sheet_spec_of(squad))[0]

    with pytest.raises(PermissionDenied):
        service.enter_marks(rater, monthly, community, "metric:no_dedicated_worker", {"value": 1}, "x")
    assert service.markable(rater, monthly, community) == [] and not service.assesses(rater, monthly, community)
    entry = service.enter_marks(assessor, monthly, community, "metric:no_dedicated_worker", {"value": 1}, "未配备")
    assert entry.role_key == "office_assessor"
    assert "metric:no_dedicated_worker" in dict(service.markable(assessor, monthly, community))

    service.enter_marks(rater, station, sanitation, "sweeping", {"problems": 1}, "路面不洁")
    with pytest.raises(PermissionDenied):  # the station's items name the community raters only
        service.enter_marks(assessor, station, sanitation, "sweeping", {"problems": 0})
    # The squad's weighted sheet: its weighted roles mark it, each entry in the role it counts for.
    squad_item = next(key for key, _name in service.markable(rater, squad, squad_unit))
    rule = service.entered_rules(squad, squad_item)[0][0]
    assert service.enter_marks(rater, squad, squad_unit, squad_item, {rule: 0}).role_key == "community_rater"
    assert service.enter_marks(brigade, squad, squad_unit, squad_item, {rule: 0}).role_key == "brigade_assessor"
    with pytest.raises(PermissionDenied):
        service.enter_marks(assessor, squad, squad_unit, squad_item, {rule: 0})
    assert db.session.scalar(db.select(db.func.count()).select_from(service.AssessmentEntry)) == 4


def test_two_live_entries_for_one_assessor_are_refused_by_the_database(ctx):
    import pytest
    from sqlalchemy.exc import IntegrityError

    from tests.support.factories import make_user

    load_shipped("chengguan")
    office = make_user("cg_office", roles=(("chengguan", "office_admin", None),))
    period = service.open_period(office, "chengguan", "chengguan_monthly", dt.date(2026, 10, 1))
    unit = scoring.assessed_units("chengguan", service.sheet_spec_of(period))[0]
    service.enter_marks(office, period, unit, "metric:no_dedicated_worker", {"value": 0})
    db.session.commit()
    twin = service.AssessmentEntry(period_id=period.id, unit_id=unit.id, item_key="metric:no_dedicated_worker",
                                   assessor_id=office.id, values={"value": 1})
    db.session.add(twin)
    with pytest.raises(IntegrityError):
        db.session.flush()
    db.session.rollback()
    # A superseded one beside the live one is how a correction keeps history: allowed.
    db.session.add(service.AssessmentEntry(period_id=period.id, unit_id=unit.id, item_key="metric:no_dedicated_worker",
                                           assessor_id=office.id, values={"value": 1}, superseded_in=1))
    db.session.flush()


def test_combined_scores_page_with_the_year_veto(ctx, app):
    from tests.support.factories import login, make_user

    load_shipped("chengguan")
    sheet = scoring.sheet_of("chengguan", "chengguan_monthly")[1]
    community, other = scoring.assessed_units("chengguan", sheet)[:2]
    _illegal_buildings(community, {5: 21})
    _published("chengguan_monthly", "2026-05", dt.date(2026, 5, 1), dt.date(2026, 5, 31),
               {community.key: "96", other.key: "90"})
    _published("chengguan_year_end", "2026", dt.date(2026, 1, 1), dt.date(2026, 12, 31),
               {community.key: "91", other.key: "80"})
    make_user("cg_office", roles=(("chengguan", "office_admin", None),))
    make_user("cg_staff", roles=(("chengguan", "community_staff", community.key),))
    db.session.commit()
    client = app.test_client()
    login(client, "cg_office")
    listing = client.get("/assess/chengguan/").get_data(as_text=True)
    assert "/assess/chengguan/combined/chengguan_monthly/year_total" in listing
    page = client.get("/assess/chengguan/combined/chengguan_monthly/year_total?on=2026-12-31")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    # 0.6 × 96 + 0.4 × 91 = 94.00 and 0.6 × 90 + 0.4 × 80 = 86.00; the first is vetoed for the year.
    assert "94.00" in html and "86.00" in html
    assert "全年新增违法建设超过20起" in html
    assert html.index("94.00") < html.index("86.00")  # ranked by score
    assert client.get("/assess/chengguan/combined/chengguan_monthly/year_total?on=2026-13-01").status_code == 400
    assert client.get("/assess/chengguan/combined/chengguan_monthly/nothing").status_code == 404
    staff = app.test_client()
    login(staff, "cg_staff")
    assert staff.get("/assess/chengguan/combined/chengguan_monthly/year_total").status_code == 403


def test_a_rater_sees_the_units_it_marks_and_not_the_communities(ctx, app):
    from tests.conftest import csrf_token
    from tests.support.factories import login, make_user

    load_shipped("chengguan")
    office = make_user("cg_office", roles=(("chengguan", "office_admin", None),))
    make_user("cg_rater", roles=(("chengguan", "community_rater", None),))
    day = dt.date(2026, 10, 1)
    monthly = service.open_period(office, "chengguan", "chengguan_monthly", day)
    station = service.open_period(office, "chengguan", "chengguan_sanitation_rating", day)
    community = scoring.assessed_units("chengguan", service.sheet_spec_of(monthly))[0]
    sanitation = scoring.assessed_units("chengguan", service.sheet_spec_of(station))[0]
    db.session.commit()
    client = app.test_client()
    login(client, "cg_rater")
    rivals = client.get(f"/assess/period/{monthly.id}").get_data(as_text=True)
    assert service.tr(community.name) not in rivals
    rated = client.get(f"/assess/period/{station.id}").get_data(as_text=True)
    assert service.tr(sanitation.name) in rated
    assert f"/assess/period/{station.id}/unit/{sanitation.id}/sweeping" in rated
    rival = f"/assess/period/{monthly.id}/unit/{community.id}/metric:no_dedicated_worker"
    assert client.get(rival).status_code == 403
    token = csrf_token(client, f"/assess/period/{station.id}/unit/{sanitation.id}/sweeping")
    assert client.post(rival, data={"csrf_token": token, "r_value": "1", "reason": "x"},
                       content_type="multipart/form-data").status_code == 403
    assert db.session.scalar(db.select(db.func.count()).select_from(service.AssessmentEntry)) == 0
    assert client.get("/assess/chengguan/combined/chengguan_monthly/year_total").status_code == 403


def _chengguan_with(*combos: str) -> dict[str, str]:
    from tests.support.factories import scheme_files

    files = dict(scheme_files("chengguan"))
    name = next(n for n in files if n.endswith("monthly.yaml"))
    assert "\ncombine:\n" in files[name]
    files[name] = files[name].replace("\ncombine:\n", "\ncombine:\n" + "".join(f"  - {c}\n" for c in combos), 1)
    return files


SHARE = "{id: share, name: 四成, period: quarter, formula: chengguan_monthly * 0.4"


def test_a_combination_off_the_sheets_scale_needs_its_own_grades(ctx):
    from server.definitions.errors import DefinitionsInvalid
    from server.definitions.service import check_scheme_files

    try:
        check_scheme_files(_chengguan_with(SHARE + "}"))
    except DefinitionsInvalid as exc:
        errors = [e for e in exc.errors if e.path == "combine[0].grades"]
    else:
        errors = []
    assert errors and "reaches 40" in errors[0].message and errors[0].file.endswith("monthly.yaml"), errors
    with_sum = SHARE.replace("* 0.4", "* 1") + ", aggregate: sum}"
    try:
        check_scheme_files(_chengguan_with(with_sum))
    except DefinitionsInvalid as exc:
        assert any(e.path == "combine[0].grades" and "sum" in e.message for e in exc.errors), exc.errors
    else:
        raise AssertionError("a sum graded with the monthly bands was accepted")
    check_scheme_files(_chengguan_with(SHARE + ", grades: none}"))  # no grade: fine
    check_scheme_files(_chengguan_with(SHARE + ", grades: [{id: ok, name: 达标, min: 30}]}"))


def test_a_combination_is_graded_with_its_own_bands_and_sums_when_asked(ctx):
    from server.definitions.service import activate_scheme_version, load_scheme

    bands = "[{id: ok, name: 达标, min: 30}, {id: short, name: 未达标, min: 0, passing: false}]"
    version, _ = load_scheme(_chengguan_with(SHARE + f", grades: {bands}}}",
                                             "{id: total, name: 合计, period: quarter, formula: chengguan_monthly, "
                                             "aggregate: sum, grades: none}"))
    activate_scheme_version(version.id)
    units = [u.key for u in scoring.assessed_units("chengguan", scoring.sheet_of("chengguan", "chengguan_monthly")[1])]
    first, second = units[0], units[1]
    _published("chengguan_monthly", "2026-10", dt.date(2026, 10, 1), dt.date(2026, 10, 31), {first: "90", second: "60"})
    _published("chengguan_monthly", "2026-11", dt.date(2026, 11, 1), dt.date(2026, 11, 30), {first: "80", second: "70"})
    _span, rows = scoring.combined_scores("chengguan", "chengguan_monthly", "share", dt.date(2026, 11, 15))
    by_unit = {r.unit.key: r for r in rows}
    # 0.4 × 85 = 34 passes its own 30; 0.4 × 65 = 26 does not. With the monthly bands both would fail.
    assert by_unit[first].score == Decimal(34) and by_unit[first].grade.id == "ok"
    assert by_unit[second].score == Decimal(26) and by_unit[second].grade.id == "short"
    _span, rows = scoring.combined_scores("chengguan", "chengguan_monthly", "total", dt.date(2026, 11, 15))
    by_unit = {r.unit.key: r for r in rows}
    assert by_unit[first].score == Decimal(170) and by_unit[first].grade is None  # summed, not graded
    assert by_unit[second].score == Decimal(130)


def test_a_combination_is_ranked_flagged_and_funded_directly(ctx):
    from server.definitions.service import activate_scheme_version, load_scheme

    version, _ = load_scheme(_chengguan_with(
        "{id: quarter, name: 季度, period: quarter, formula: chengguan_monthly, "
        "flags: [{id: q_red, name: 季度红旗, kind: top, count: 1}, "
        "{id: q_last, name: 季度末位, kind: bottom, count: 1, caps_grade: qualified}], "
        "funding: {base_amount: 1000, base_score: 80, step_points: 1, step_amount: 100, floor: 0}}"))
    activate_scheme_version(version.id)
    sheet = scoring.sheet_of("chengguan", "chengguan_monthly")[1]
    units = [u.key for u in scoring.assessed_units("chengguan", sheet)]
    first, second, third = units[:3]
    _published("chengguan_monthly", "2026-10", dt.date(2026, 10, 1), dt.date(2026, 10, 31),
               {first: "96", second: "93", third: "91"})
    _published("chengguan_monthly", "2026-11", dt.date(2026, 11, 1), dt.date(2026, 11, 30),
               {first: "94", second: "91", third: "91"})
    _span, rows = scoring.combined_scores("chengguan", "chengguan_monthly", "quarter", dt.date(2026, 11, 15))
    by_unit = {r.unit.key: r for r in rows}
    # 95, 92, 91: the first holds the quarter's red flag, the last its own flag (not the months' flags).
    assert [f.id for f in by_unit[first].flags] == ["q_red"] and by_unit[second].flags == []
    assert [f.id for f in by_unit[third].flags] == ["q_last"]
    # 91 is 优秀 by the bands, but a last place is capped at 合格.
    assert by_unit[second].grade.id == "excellent" and by_unit[third].grade.id == "qualified"
    assert by_unit[first].funding == Decimal(2500) and by_unit[third].funding == Decimal(2100)  # 1000 + 100/point
    assert all(r.flags == [] and r.funding is None for r in rows if r.score is None)


def test_a_combination_carries_a_last_place_across_its_periods(ctx, app):
    from server.definitions.service import activate_scheme_version, load_scheme
    from tests.support.factories import login, make_user

    version, _ = load_scheme(_chengguan_with(
        "{id: quarter, name: 季度, period: quarter, formula: chengguan_monthly, "
        "flags: [{id: q_last, name: 季度末位, kind: bottom, count: 1}], "
        "streaks: [{id: twice_last, name: 连续两季度末位, when: \"'q_last' in flags\", times: 2, action: 约谈}]}"))
    activate_scheme_version(version.id)
    sheet = scoring.sheet_of("chengguan", "chengguan_monthly")[1]
    first, second, third = [u.key for u in scoring.assessed_units("chengguan", sheet)][:3]
    _published("chengguan_monthly", "2026-09", dt.date(2026, 9, 1), dt.date(2026, 9, 30),
               {first: "95", second: "90", third: "80"})                     # Q3: the third is last
    _published("chengguan_monthly", "2026-10", dt.date(2026, 10, 1), dt.date(2026, 10, 31),
               {first: "70", second: "90", third: "85"})                     # Q4: the first is last
    _span, rows = scoring.combined_scores("chengguan", "chengguan_monthly", "quarter", dt.date(2026, 10, 15))
    assert {r.unit.key: [a.id for a in r.actions] for r in rows if r.score is not None} == {
        first: [], second: [], third: []}
    _published("chengguan_monthly", "2026-07", dt.date(2026, 7, 1), dt.date(2026, 7, 31),
               {first: "95", second: "90", third: "80"})
    _published("chengguan_monthly", "2026-11", dt.date(2026, 11, 1), dt.date(2026, 11, 30),
               {first: "95", second: "90", third: "60"})                     # Q4 now: the third is last again
    _span, rows = scoring.combined_scores("chengguan", "chengguan_monthly", "quarter", dt.date(2026, 11, 15))
    by_unit = {r.unit.key: r for r in rows}
    assert [a.id for a in by_unit[third].actions] == ["twice_last"] and by_unit[first].actions == []
    assert by_unit[first].rank == 2 and by_unit[third].rank == 3
    make_user("office", roles=(("chengguan", "office_admin", None),))
    db.session.commit()
    client = app.test_client()
    login(client, "office")
    page = client.get("/assess/chengguan/combined/chengguan_monthly/quarter?on=2026-11-15").get_data(as_text=True)
    assert "连续两季度末位" in page and "约谈" in page


def test_a_combinations_flags_carry_money_groups_and_a_yearly_bar(ctx):
    from server.definitions.service import activate_scheme_version, load_scheme

    version, _ = load_scheme(_chengguan_with(
        "{id: quarter, name: 季度, period: quarter, formula: chengguan_monthly, "
        "flags: [{id: q_red, name: 季度流动红旗, kind: top, count: 1, amount: 2000, bars_honours: year}], "
        "funding: {base_amount: 1000, base_score: 80, step_points: 1, step_amount: 100, "
        "groups: {communities: {base_amount: 9000}}}}"))
    activate_scheme_version(version.id)
    sheet = scoring.sheet_of("chengguan", "chengguan_monthly")[1]
    first, second, third = [u.key for u in scoring.assessed_units("chengguan", sheet)][:3]
    for month in (1, 4):  # a month of Q1 and of Q2: the first unit is best both times
        _published("chengguan_monthly", f"2026-{month:02d}", dt.date(2026, month, 1), dt.date(2026, month, 28),
                   {first: "95", second: "90", third: "85"})
    _span, q1 = scoring.combined_scores("chengguan", "chengguan_monthly", "quarter", dt.date(2026, 1, 15))
    q1 = {r.unit.key: r for r in q1}
    assert [f.id for f in q1[first].flags] == ["q_red"]
    # A community is in the `communities` group: 9,000 base, +15 points × 100, and the flag's 2,000.
    assert [(m["kind"], m["amount"]) for m in q1[first].money] == [("funding", "10500.00"), ("flag", "2000.00")]
    assert q1[first].money_total == Decimal(12500) and q1[second].money_total == Decimal(10000)
    _span, q2 = scoring.combined_scores("chengguan", "chengguan_monthly", "quarter", dt.date(2026, 4, 15))
    q2 = {r.unit.key: r for r in q2}
    # The first won the banner in Q1: barred for the rest of the year, the next in line takes it.
    assert q2[first].flags == [] and [f.id for f in q2[second].flags] == ["q_red"]
