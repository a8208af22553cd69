"""Lidu's monthly sheet scored from October 2026's data: patrol compliance, themed campaigns, hot-spot
cases and case rates become metrics, the metrics become deductions, and units get grades, ranks and flags."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from server.assessment import scoring
from server.extensions import db
from server.org.models import Unit
from server.org.posts import appoint
from server.workflow.models import Case
from server.workflow.service import workflow_version
from tests.integration.test_patrols import ZONE, record
from tests.support.factories import load_demo, make_user

OCTOBER = dt.date(2026, 10, 1)


def cases(unit: str, found: int, rectified: int) -> None:
    version = workflow_version("lidu")
    unit_id = db.session.scalar(db.select(Unit.id).filter_by(scheme_key="lidu", key=unit))
    at = dt.datetime(2026, 10, 10, 10, tzinfo=ZONE)
    for i in range(found):
        done = i < rectified
        db.session.add(Case(scheme_key="lidu", workflow_key=version.key, definition_version_id=version.id,
                            state="closed" if done else "assigned", state_kind="final" if done else "open",
                            outcome="resolved" if done else None, data={}, unit_id=unit_id, created_at=at))
    db.session.flush()


@pytest.fixture
def october(ctx):
    load_demo()
    head, dept = make_user("shilong_head"), make_user("dept_head")
    since = dt.date(2026, 1, 1)
    appoint("lidu", "community_head", "石龙书记", area_key="shilong_town", since=since, username="shilong_head")
    appoint("lidu", "community_head", "致远书记", unit_key="zhiyuan", since=since)  # no account: never counted
    appoint("lidu", "department_head", "平安办主任", unit_key="safety_office", since=since, username="dept_head")
    # Shilong's head patrols every week but the one of 12–18 October; the weeks ending in October count.
    for day in (dt.date(2026, 10, 2), dt.date(2026, 10, 9), dt.date(2026, 10, 20), dt.date(2026, 10, 27)):
        record("lidu", "patrol_log", head, day, area="shilong_old_street")
    record("lidu", "patrol_log", dept, dt.date(2026, 10, 5), area="zhiyuan_road")
    record("lidu", "themed_campaign", head, dt.date(2026, 10, 9), unit="shilong")
    record("lidu", "hotspot_case", head, dt.date(2026, 10, 30), unit="shilong")
    record("lidu", "hotspot_case", dept, dt.date(2026, 10, 12), unit="safety_office")
    cases("shilong", 20, 18)     # 90 %: ten half-point steps below 95 %, more than the item's 10 points
    cases("duanqiao", 200, 189)  # 94.5 %: exactly one step below
    db.session.commit()


def test_october_scored_from_the_data(october):
    period, results = scoring.score_period("lidu", "lidu_monthly", OCTOBER)
    assert (period.key, period.start, period.end) == ("2026-10", dt.date(2026, 10, 1), dt.date(2026, 10, 31))
    by_unit = {r.unit.key: r for r in results}
    assert set(by_unit) == {"town_office", "party_office", "safety_office", "economy_office", "zhiyuan",
                            "duanqiao", "shilong", "longqiao"}

    shilong = by_unit["shilong"]
    assert shilong.metrics["community_head_missed_weeks"] == 1 and shilong.metrics["campaigns"] == 1
    assert shilong.metrics["rectification_rate"] == 0.9
    assert shilong.score.items["leadership"].deducted == 2      # one person-week short
    assert shilong.score.items["on_the_spot"].deducted == 10    # capped at the item's points
    assert shilong.total == Decimal("88.00") and shilong.grade.id == "good"

    zhiyuan = by_unit["zhiyuan"]
    assert zhiyuan.metrics["community_head_missed_weeks"] == 4
    # four person-weeks −8, no themed campaign −5, no hot-spot case −5; no cases: no rate to deduct
    assert zhiyuan.metrics["rectification_rate"] is None
    assert zhiyuan.total == Decimal("82.00")

    duanqiao = by_unit["duanqiao"]
    assert duanqiao.score.items["on_the_spot"].deducted == 2    # 94.5 %: one step, not 0.999… of one
    assert duanqiao.total == Decimal("88.00")                    # −2, −5 campaign, −5 hot spot

    safety = by_unit["safety_office"]
    # The department head patrolled in the week of 5–11 October only: 3 weeks short.
    assert safety.metrics["department_head_missed_weeks"] == 3 and safety.metrics["hotspots"] == 1
    assert safety.total == Decimal("89.00")                      # −6 patrols, −5 no campaign

    # Longqiao has no community head appointed, so no patrol is owed there: −5 campaign, −5 hot spot.
    assert by_unit["longqiao"].total == Decimal("90.00")
    # Ranked within their groups; the top two of each group get the red flag (ties share it).
    ranks = {key: r.ranks for key, r in by_unit.items()}
    assert ranks["longqiao"] == {"town_communities": 1} and ranks["zhiyuan"] == {"town_communities": 4}
    assert ranks["shilong"] == ranks["duanqiao"] == {"town_communities": 2}
    red = {key for key, r in by_unit.items() if any(f.id == "red_flag" for f in r.flags)}
    # Departments: town, party and economy offices 90 (no campaign, no hot spot); safety office 89.
    assert red == {"longqiao", "shilong", "duanqiao", "town_office", "party_office", "economy_office"}
    assert safety.ranks == {"departments": 4} and not safety.flags  # 89 is not below the yellow flag's 70


def test_cli_dry_run(october, app):
    result = app.test_cli_runner().invoke(args=["assess", "score", "lidu", "lidu_monthly", "--on", "2026-10-15"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("# lidu_monthly 2026-10")
    assert "shilong\t88.00\tgood\ttown_communities:2\tred_flag" in lines
