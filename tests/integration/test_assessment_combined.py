"""Seed 003's year score: the monthly average 60 % and the year-end check 40 %, from published periods."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from server.assessment import service
from server.assessment.models import AssessmentPeriod, AssessmentRevision, AssessmentScore
from server.extensions import db
from server.org.models import Unit
from tests.support.factories import load_shipped


def _published(sheet: str, key: str, start: dt.date, end: dt.date, totals: dict[str, str]) -> None:
    _row, _spec = service.sheet_of("chengguan", sheet)
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
    units = [u.key for u in service.assessed_units("chengguan", service.sheet_of("chengguan", "chengguan_monthly")[1])]
    first, second = units[0], units[1]
    _published("chengguan_monthly", "2026-01", dt.date(2026, 1, 1), dt.date(2026, 1, 31), {first: "90", second: "70"})
    _published("chengguan_monthly", "2026-02", dt.date(2026, 2, 1), dt.date(2026, 2, 28), {first: "85", second: "75"})
    _published("chengguan_year_end", "2026", dt.date(2026, 1, 1), dt.date(2026, 12, 31), {first: "80"})
    _published("chengguan_monthly", "2025-12", dt.date(2025, 12, 1), dt.date(2025, 12, 31), {first: "10"})  # not 2026
    span, rows = service.combined_scores("chengguan", "chengguan_monthly", "year_total", dt.date(2026, 6, 1))
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
    """Seed 003 篇3: −0.01 a pile found, −0.01 more a small pile left late, −0.02 a big one (filters)."""
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
    _period, results = service.score_period("chengguan", "chengguan_rubbish", dt.date(2026, 10, 1))
    result = next(r for r in results if r.unit.key == "xx_street")
    assert (result.metrics["piles_found"], result.metrics["late_small_piles"], result.metrics["late_big_piles"]) == (
        10, 2, 1)
    assert result.total == Decimal("99.86")  # 100 − 10 × 0.01 − 2 × 0.01 − 1 × 0.02


def test_dashboard_takes_each_sheets_latest_period(ctx):
    """Communities on the monthly sheet, the squad on its own rating: both show on the dashboard."""
    from tests.support.factories import make_user

    load_shipped("chengguan")
    leader = make_user("leader", roles=(("chengguan", "leader", None),))
    community = service.assessed_units("chengguan", service.sheet_of("chengguan", "chengguan_monthly")[1])[0].key
    _published("chengguan_monthly", "2026-10", dt.date(2026, 10, 1), dt.date(2026, 10, 31), {community: "91"})
    _published("chengguan_squad_rating", "2026-09", dt.date(2026, 9, 1), dt.date(2026, 9, 30), {"ting_squad": "83"})
    rows = {r.unit.key: r for r in service.dashboard(leader, "chengguan", dt.date(2026, 11, 2))}
    assert rows[community].score == Decimal(91) and rows[community].period.period_key == "2026-10"
    assert rows["ting_squad"].score == Decimal(83) and rows["ting_squad"].period.sheet_key == "chengguan_squad_rating"
