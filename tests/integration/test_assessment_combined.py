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
