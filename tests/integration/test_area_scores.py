"""Sheets scored per area (`per_area`): each segment on its own cases and records, rolled up into its road,
then into the community responsible, which is graded, ranked and published like any unit; on both databases."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import yaml

from server.api import service as api
from server.assessment import scoring, service
from server.assessment.models import AssessmentPeriod
from server.definitions.errors import DefinitionsInvalid
from server.definitions.models import DefinitionVersion
from server.definitions.service import activate_scheme_version, load_scheme
from server.extensions import db
from server.org.models import Area
from server.workflow.models import Case
from tests.support.clock import NOW, TODAY
from tests.support.factories import demo_files, login, make_user

SHEET = {
    "kind": "score_sheet", "id": "segment_sheet", "name": {"zh": "路段考核", "en": "Segment assessment"},
    "period": "month", "total": 100, "assessed": {"unit_kinds": ["community"]},
    "per_area": {"kind": "segment", "roll_up": [{"kind": "road", "aggregate": "mean"}], "aggregate": "mean"},
    "metrics": [{"id": "problems", "name": "问题数", "source": "case_count"},
                {"id": "rubbish", "name": "垃圾", "source": "case_count", "filter": "case.category == 'rubbish'"}],
    "sections": [{"id": "clean", "name": "整洁", "points": 100, "items": [
        {"id": "order", "name": "秩序", "points": 60, "rules": [
            {"id": "per_problem", "type": "per_occurrence", "points": 10, "count": "problems"}]},
        {"id": "tidy", "name": "整洁", "points": 40, "rules": [
            {"id": "per_rubbish", "type": "per_occurrence", "points": 5, "count": "rubbish"}]}]}],
    "grades": [{"id": "good", "name": "好", "min": 90}, {"id": "fair", "name": "中", "min": 60},
               {"id": "poor", "name": "差", "min": 0, "passing": False}],
}
# Zhiyuan Road gets two segments of its own; Shilong Old Street has north and south (the demo's), plus
# Shilong's market zone, which is no segment and is not scored.
ZHIYUAN_SEGMENTS = """
    children:
      - id: zhiyuan_east
        kind: segment
        name: {zh: 致远路东段, en: Zhiyuan Road (east)}
      - id: zhiyuan_west
        kind: segment
        name: {zh: 致远路西段, en: Zhiyuan Road (west)}
"""


def _files(sheet: dict | None = None) -> dict[str, str]:
    files = demo_files()
    scheme = files["schemes/lidu/scheme.yaml"]
    scheme = scheme.replace("score_sheets: [lidu_monthly]", "score_sheets: [lidu_monthly, segment_sheet]")
    anchor = "    to: {zh: 致远广场, en: Zhiyuan Square}\n    length_m: 1200\n"
    assert anchor in scheme
    files["schemes/lidu/scheme.yaml"] = scheme.replace(anchor, anchor + ZHIYUAN_SEGMENTS.lstrip("\n"))
    files["schemes/lidu/segment_sheet.yaml"] = yaml.safe_dump(sheet or SHEET, allow_unicode=True)
    return files


@pytest.fixture
def district(ctx):
    version, _ = load_scheme(_files())
    activate_scheme_version(version.id)
    workflow = db.session.scalar(db.select(DefinitionVersion).filter_by(kind="workflow",
                                                                        key="discover_assign_rectify_close"))
    areas = {a.key: a for a in db.session.scalars(db.select(Area).filter_by(scheme_key="lidu"))}

    def case(area: str, category: str = "other", at: dt.datetime = NOW) -> None:
        db.session.add(Case(scheme_key="lidu", workflow_key=workflow.key, definition_version_id=workflow.id,
                            state="assigned", state_kind="open", data={}, category=category,
                            unit_id=areas[area].unit_id, area_id=areas[area].id, created_at=at))

    # North: 3 problems, 2 of them rubbish; south: none. A case on the road itself is on no segment.
    case("shilong_old_street_north", "rubbish")
    case("shilong_old_street_north", "rubbish")
    case("shilong_old_street_north")
    case("shilong_old_street")
    case("shilong_old_street_south", at=NOW - dt.timedelta(days=45))  # another month
    case("zhiyuan_east")  # Zhiyuan: one problem on the east segment
    db.session.commit()
    return areas


def _by_unit(day: dt.date = TODAY) -> dict[str, scoring.UnitResult]:
    _period, results = scoring.score_period("lidu", "segment_sheet", day)
    return {r.unit.key: r for r in results}


def test_each_segment_is_scored_and_rolled_up_into_its_road_and_unit(district):
    results = _by_unit()
    shilong = results["shilong"]
    rows = {r.area.key: r for r in shilong.areas}
    # North: 100 − 3 × 10 − 2 × 5 = 60; south: 100. The road is their mean, 80; the unit has one road.
    assert rows["shilong_old_street_north"].total == Decimal(60)
    assert rows["shilong_old_street_south"].total == Decimal(100)
    assert rows["shilong_old_street"].total == Decimal(80) and rows["shilong_old_street"].depth == 1
    assert rows["shilong_old_street_north"].parent.key == "shilong_old_street"
    assert shilong.total == Decimal(80) and shilong.grade.id == "fair"
    # The parts still add up: each item's score is the mean of the segments' too.
    assert shilong.score.items["order"].score == Decimal(45) and shilong.score.items["tidy"].score == Decimal(35)
    # A unit's numbers are its segments' sums (a case on the road itself lies on no segment).
    assert shilong.metrics == {"problems": 3, "rubbish": 2}
    assert [r.area.key for r in shilong.areas] == ["shilong_old_street", "shilong_old_street_north",
                                                   "shilong_old_street_south"]
    zhiyuan = results["zhiyuan"]
    assert zhiyuan.total == Decimal(95) and zhiyuan.grade.id == "good"  # (90 + 100) / 2
    # Units with no segment are not assessed; the ranking is among the communities that have one.
    assert set(results) == {"shilong", "zhiyuan"}
    sheet = scoring.sheet_of("lidu", "segment_sheet")[1]
    assert {u.key for u in scoring.assessed_units("lidu", sheet)} == {"shilong", "zhiyuan"}
    assert zhiyuan.ranks == {"all": 1} and shilong.ranks == {"all": 2}


def test_sums_roll_up_as_sums(district):
    sheet = {**SHEET, "per_area": {"kind": "segment", "roll_up": [{"kind": "road", "aggregate": "sum"}],
                                   "aggregate": "sum"}}
    version, _ = load_scheme(_files(sheet))
    activate_scheme_version(version.id)
    results = _by_unit()
    assert results["shilong"].total == Decimal(160)  # 60 + 100
    assert results["shilong"].score.items["order"].deducted == Decimal(30)


def test_without_roll_up_the_unit_takes_its_segments_directly(district):
    sheet = {**SHEET, "per_area": {"kind": "segment"}}
    version, _ = load_scheme(_files(sheet))
    activate_scheme_version(version.id)
    shilong = _by_unit()["shilong"]
    assert shilong.total == Decimal(80) and {r.depth for r in shilong.areas} == {0}


def test_published_scores_keep_the_areas_and_a_correction_keeps_their_numbers(district, client):
    admin = make_user("office", admin=True)
    period = service.open_period(admin, "lidu", "segment_sheet", TODAY)
    service.publish(admin, period, provisional=True)
    db.session.commit()
    period = db.session.get(AssessmentPeriod, period.id)
    score = next(s for s in scoring.published_scores(period) if s.unit.key == "shilong")
    rows = {row["area"]: row for row in score.areas}
    assert rows["shilong_old_street"] == {"area": "shilong_old_street", "kind": "road", "depth": 1, "parent": None,
                                          "total": "80.00", "items": {"order": "45.00", "tidy": "35.00"}}
    assert rows["shilong_old_street_north"]["metrics"] == {"problems": 3, "rubbish": 2}
    assert rows["shilong_old_street_north"]["parent"] == "shilong_old_street"
    # The page behind the score names each area with its score.
    login(client, "office")
    page = client.get(f"/assess/period/{period.id}/unit/{score.unit_id}").get_data(as_text=True)
    assert "石龙老街北段" in page and "60.00" in page and "80.00" in page
    # …and the cases it counted, by their place (the segment has no unit of its own: the cases have none).
    north = db.session.scalars(db.select(Case.id).filter_by(area_id=district["shilong_old_street_north"].id)).all()
    assert len(north) == 3 and all(f"#{case_id}<" in page for case_id in north)
    # The period page and the bulletin list the communities that have segments, with their totals.
    listed = client.get(f"/assess/period/{period.id}").get_data(as_text=True)
    assert "石龙社区" in listed and "80.00" in listed and "95.00" in listed
    bulletin = client.get(f"/assess/period/{period.id}/bulletin")
    assert bulletin.status_code == 200 and "80.00" in bulletin.get_data(as_text=True)
    # The API gives the same rows, totals as numbers.
    _client, token = api.create_client("office-system", "office")
    db.session.commit()
    answer = client.get(f"/api/v1/assessment/periods/{period.id}/scores",
                        headers={"Authorization": f"Bearer {token}"}).get_json()
    shown = next(s for s in answer["scores"] if s["unit"] == "shilong")
    assert shown["total"] == 80 and shown["areas"][0] == {"area": "shilong_old_street", "kind": "road", "depth": 1,
                                                          "parent": None, "total": 80, "items": {"order": 45,
                                                                                                 "tidy": 35}}
    # A case found afterwards on the south segment does not move a corrected revision: its numbers stay.
    db.session.add(Case(scheme_key="lidu", workflow_key="discover_assign_rectify_close",
                        definition_version_id=db.session.scalar(db.select(DefinitionVersion.id).filter_by(
                            kind="workflow", key="discover_assign_rectify_close")),
                        state="assigned", state_kind="open", data={}, category="other",
                        unit_id=district["shilong_old_street_south"].unit_id,
                        area_id=district["shilong_old_street_south"].id, created_at=NOW))
    db.session.commit()
    after = period.ends_on + dt.timedelta(days=1)
    service.publish(admin, period, reason="final", today=after)  # after a provisional one: read again
    db.session.commit()
    final = next(s for s in scoring.published_scores(period) if s.unit.key == "shilong")
    assert Decimal(final.total) == Decimal(75)  # south now 90: (60 + 90) / 2
    db.session.add(Case(scheme_key="lidu", workflow_key="discover_assign_rectify_close",
                        definition_version_id=final.revision.period.definition_version_id,
                        state="assigned", state_kind="open", data={}, category="other",
                        unit_id=district["shilong_old_street_south"].unit_id,
                        area_id=district["shilong_old_street_south"].id, created_at=NOW))
    db.session.commit()
    district["shilong_old_street_south"].active = False  # retired since: the correction still scores it
    service.publish(admin, period, reason="a correction", today=after)
    db.session.commit()
    corrected = next(s for s in scoring.published_scores(period) if s.unit.key == "shilong")
    assert Decimal(corrected.total) == Decimal(75)  # the numbers taken at publication stay


@pytest.mark.parametrize(("change", "message"), [
    ({"per_area": {"kind": "street_corner"}}, "unknown area kind 'street_corner'"),
    ({"per_area": {"kind": "road", "roll_up": [{"kind": "segment"}]}},
     "an area of kind 'segment' never contains one of kind 'road'"),
    ({"per_area": {"kind": "segment", "roll_up": [{"kind": "road"}, {"kind": "road"}]}},
     "'road' would roll up into its own kind"),
    ({"metrics": [{"id": "problems", "name": "x", "source": "case_rate", "rate": "rectified"}]},
     "has no value per area"),
    ({"metrics": [{"id": "problems", "name": "x", "source": "case_count", "counts_for": "holder"}]},
     "'counts_for' can never take effect"),
    ({"metrics": [{"id": "problems", "name": "x", "source": "manual"}]}, "has no value per area"),
])
def test_a_per_area_sheet_that_cannot_work_is_refused(ctx, change, message):
    sheet = {**SHEET, **change}
    if "metrics" in change:  # keep the rules' names defined
        sheet["metrics"] = [*change["metrics"], {"id": "rubbish", "name": "垃圾", "source": "case_count"}]
    with pytest.raises(DefinitionsInvalid) as raised:
        load_scheme(_files(sheet))
    assert message in str(raised.value), str(raised.value)


def test_a_rule_entered_by_hand_is_refused_on_a_per_area_sheet(ctx):
    sheet = {**SHEET, "sections": [{"id": "clean", "name": "整洁", "points": 100, "items": [
        {"id": "order", "name": "秩序", "points": 100, "rules": [
            {"id": "by_hand", "type": "per_occurrence", "points": 10},
            {"id": "per_problem", "type": "per_occurrence", "points": 10, "count": "problems + rubbish"}]}]}]}
    with pytest.raises(DefinitionsInvalid) as raised:
        load_scheme(_files(sheet))
    assert "sections[0].items[0].rules[0]" in str(raised.value) or "rules.0" in str(raised.value) or \
        "a rule an assessor enters by hand" in str(raised.value)
    assert "a rule an assessor enters by hand" in str(raised.value)


def test_a_place_counts_once_for_the_innermost_scored_area(ctx):
    """Where areas of the scored kind lie inside one another, a case counts for the innermost around its place."""
    from server.assessment.sources import _within

    outer, inner, other = Area(id=1, path="/1/"), Area(id=2, path="/1/2/"), Area(id=3, path="/3/")
    counts = {"/1/": 1, "/1/2/": 2, "/1/2/5/": 4, "/1/6/": 8, "/12/": 16, "/3/": 32}
    assert _within([outer, inner, other], counts) == {1: 9, 2: 6, 3: 32}  # "/12/" is inside none of them
