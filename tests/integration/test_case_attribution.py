"""Where a case counts (`counts_for`) and roll-ups along the unit tree (`include_below`), on both databases.

A street whose cases are handled by its communities must not score as if it had none; a community that
reported a case keeps the credit after the case moved to the office."""

from __future__ import annotations

import datetime as dt

import pytest

from server.assessment.sources import METRIC_SOURCES
from server.definitions.errors import DefinitionsInvalid
from server.definitions.models import DefinitionVersion
from server.definitions.service import load_scheme
from server.extensions import db
from server.forms.models import Submission
from server.org.models import Area
from server.patrols.engine import Period
from server.workflow import escalation
from server.workflow.engine import EscalationSpec
from server.workflow.models import Case, CaseDeadline, CaseEvent
from server.workflow.service import workflow_of
from tests.support.clock import NOW, TODAY
from tests.support.factories import demo_files, load_demo, unit_id

PERIOD = Period("month", TODAY.replace(day=1), (TODAY.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
                - dt.timedelta(days=1))
UNITS = ("lidu_street", "shilong", "zhiyuan", "town_office")


@pytest.fixture
def cases(ctx):
    """Three cases this month: two held by Shilong, one moved up to the town office; a fourth last month."""
    version = load_demo()
    workflow = db.session.scalar(db.select(DefinitionVersion).filter_by(kind="workflow",
                                                                        key="discover_assign_rectify_close"))
    form = db.session.scalar(db.select(DefinitionVersion).filter_by(kind="form"))
    road = db.session.scalar(db.select(Area).filter_by(scheme_key="lidu", key="shilong_old_street"))
    assert road.unit_id == unit_id("lidu", "shilong")

    def report(area: Area | None) -> int:
        # A record belongs to its place's unit, whoever made it: the reporter's own unit is the case's.
        row = Submission(scheme_key="lidu", form_key=form.key, definition_version_id=form.id, token=f"t-{_n()}",
                         unit_id=area.unit_id if area else None, data={}, submitted_at=NOW)
        db.session.add(row)
        db.session.flush()
        return row.id

    def case(holder: str, state: str, area: Area | None, reported_by: str | None, at: dt.datetime = NOW) -> None:
        kind, outcome = ("final", "resolved") if state == "closed" else ("open", None)
        db.session.add(Case(scheme_key="lidu", workflow_key=workflow.key, definition_version_id=workflow.id,
                            state=state, state_kind=kind, outcome=outcome, data={}, unit_id=unit_id("lidu", holder),
                            area_id=area.id if area else None, created_at=at, submission_id=report(area),
                            reporter_unit_id=unit_id("lidu", reported_by) if reported_by else None))

    case("shilong", "closed", road, "zhiyuan")
    case("town_office", "assigned", road, "shilong")  # reported by Shilong, moved up to the office
    case("shilong", "closed", None, None)
    case("shilong", "closed", road, "shilong", at=NOW - dt.timedelta(days=40))  # another month
    db.session.flush()
    return version


_counter = iter(range(10**6))


def _n() -> int:
    return next(_counter)


def _values(source: str, **metric) -> dict[str, object]:
    ids = {unit_id("lidu", key): key for key in UNITS}
    got = METRIC_SOURCES[source].compute("lidu", {"id": "m", "source": source, **metric}, PERIOD, list(ids))
    return {ids[u]: value for u, value in got.items()}


def test_a_case_counts_for_its_holder_by_default(cases):
    assert _values("case_count") == {"lidu_street": 0, "shilong": 2, "zhiyuan": 0, "town_office": 1}
    assert _values("case_count", counts_for="holder") == _values("case_count")


def test_a_street_counts_its_communities_cases_with_include_below(cases):
    assert _values("case_count", include_below=True) == {"lidu_street": 3, "shilong": 2, "zhiyuan": 0,
                                                         "town_office": 1}
    rates = _values("case_rate", rate="rectified", include_below=True)
    assert rates["lidu_street"] == pytest.approx(2 / 3) and rates["shilong"] == 1 and rates["town_office"] == 0
    assert rates["zhiyuan"] is None  # no case: no rate, not 100
    plain = _values("case_rate", rate="rectified")
    assert plain["lidu_street"] is None and plain["shilong"] == 1


def test_a_case_counts_for_the_unit_of_its_place(cases):
    assert _values("case_count", counts_for="place") == {"lidu_street": 0, "shilong": 2, "zhiyuan": 0,
                                                         "town_office": 0}
    rates = _values("case_rate", rate="rectified", counts_for="place")
    assert rates["shilong"] == pytest.approx(1 / 2) and rates["town_office"] is None


def test_the_reporting_unit_keeps_the_credit_after_the_case_moved(cases):
    assert _values("case_count", counts_for="reporter") == {"lidu_street": 0, "shilong": 1, "zhiyuan": 1,
                                                            "town_office": 0}
    assert _values("case_count", counts_for="reporter", include_below=True)["lidu_street"] == 2
    filtered = _values("case_count", counts_for="reporter", filter="case.state_kind == 'open'")
    assert filtered == {"lidu_street": 0, "shilong": 1, "zhiyuan": 0, "town_office": 0}


def _moved(case_id: int, left: str, to: str) -> None:
    db.session.add(CaseEvent(case_id=case_id, kind="transition", at=NOW, from_unit_id=unit_id("lidu", left),
                             to_unit_id=unit_id("lidu", to)))


def test_a_unit_that_passed_a_case_up_keeps_the_credit(cases):
    moved_up = db.session.scalar(db.select(Case).filter_by(state="assigned"))  # now held by the town office
    _moved(moved_up.id, "shilong", "lidu_street")
    _moved(moved_up.id, "shilong", "lidu_street")  # passed up twice: still one case for Shilong
    _moved(moved_up.id, "lidu_street", "town_office")  # sideways (a sibling, not above): no credit
    down = db.session.scalar(db.select(Case).filter_by(state="closed", area_id=None))
    _moved(down.id, "lidu_street", "shilong")  # dispatched down: no credit
    db.session.flush()
    assert _values("case_count", counts_for="escalator") == {"lidu_street": 0, "shilong": 1, "zhiyuan": 0,
                                                             "town_office": 0}
    assert _values("case_rate", rate="rectified", counts_for="escalator")["shilong"] == 0
    assert _values("case_count", counts_for="escalator", include_below=True)["lidu_street"] == 1


def test_a_case_passed_up_twice_inside_a_street_counts_once_for_the_street(cases):
    moved = db.session.scalar(db.select(Case).filter_by(state="assigned"))
    _moved(moved.id, "shilong", "lidu_street")   # Shilong passes it up
    _moved(moved.id, "lidu_street", "zhiyuan")   # the street hands it down to Zhiyuan
    _moved(moved.id, "zhiyuan", "lidu_street")   # Zhiyuan passes it up again
    db.session.flush()
    below = _values("case_count", counts_for="escalator", include_below=True)
    assert below == {"lidu_street": 1, "shilong": 1, "zhiyuan": 1, "town_office": 0}
    rates = _values("case_rate", rate="rectified", counts_for="escalator", include_below=True)
    assert rates["lidu_street"] == 0 and rates["shilong"] == 0 and rates["town_office"] is None


def test_an_escalation_that_reassigns_up_records_the_move(cases):
    case = db.session.scalar(db.select(Case).filter_by(state="closed", area_id=None))  # held by Shilong
    deadline = CaseDeadline(case=case, key="rectify", started_at=NOW, due_at=NOW)
    db.session.add(deadline)
    escalation._escalate(case, deadline, EscalationSpec("up", "rectify", "overdue", ("reassign_up",)),
                         workflow_of(case), NOW)
    db.session.flush()
    event = case.events[-1]
    assert (event.from_unit_id, event.to_unit_id) == (unit_id("lidu", "shilong"), unit_id("lidu", "lidu_street"))
    assert case.unit_id == unit_id("lidu", "lidu_street")
    assert _values("case_count", counts_for="escalator")["shilong"] == 1


def test_a_filter_reads_where_a_case_came_from(cases):
    public = db.session.scalar(db.select(Case).filter_by(state="assigned"))
    public.source = "public"
    db.session.flush()
    assert _values("case_count", filter="case.source == 'public'")["town_office"] == 1
    assert _values("case_count", filter="case.source == 'staff'") == {"lidu_street": 0, "shilong": 2, "zhiyuan": 0,
                                                                      "town_office": 0}


def test_missed_patrols_roll_up_with_include_below(cases, monkeypatch):
    from types import SimpleNamespace

    from server.assessment import sources

    missed = [SimpleNamespace(subject={"unit_id": unit_id("lidu", key)}) for key in ("shilong", "shilong", "zhiyuan")]
    monkeypatch.setattr(sources, "_missed_verdicts", lambda *_args: missed)
    metric = {"patrol_rule": "community_head_weekly"}
    assert _values("patrol_compliance", **metric) == {"lidu_street": 0, "shilong": 2, "zhiyuan": 1, "town_office": 0}
    assert _values("patrol_compliance", **metric, include_below=True)["lidu_street"] == 3


def test_a_report_records_its_reporters_own_unit(ctx):
    """A community's staff reporting on a road: the case records their unit (not the record's place); a report
    by someone with no unit of their own (the public, a district-wide role) records none."""
    from server.forms import service as forms
    from server.forms.engine import form_spec
    from server.workflow.service import open_case, reporting_unit_id
    from tests.support.factories import formdata, make_user, photo

    load_demo()
    staff = make_user("staff", roles=(("lidu", "staff", "zhiyuan"),))
    office = make_user("office", roles=(("lidu", "office_admin", None),))
    with ctx.test_request_context():
        version = forms.form_version("lidu", "problem_report")
        record = forms.post_form(staff, "lidu", form_spec(version.data), version, formdata(
            _token="r1", category="piled_rubbish", area="zhiyuan_road", description="垃圾堆积", photos_before=photo(),
            size_m3="1", urgency="normal"))
        assert isinstance(record, Submission), record.errors
        case = open_case(staff, "lidu", record)
    assert case.reporter_unit_id == unit_id("lidu", "zhiyuan")
    assert reporting_unit_id(office, record) is None and reporting_unit_id(None, record) is None


def test_an_unknown_counts_for_is_refused_with_its_path(ctx):
    files = demo_files()
    name = next(n for n in files if n.endswith("score_sheet.yaml"))
    text = files[name]
    assert "source: case_rate" in text
    files[name] = text.replace("source: case_rate", "source: case_rate\n    counts_for: assignee", 1)
    with pytest.raises(DefinitionsInvalid) as caught:
        load_scheme(files)
    assert any("counts_for" in e.path and e.file == name for e in caught.value.errors), caught.value.errors
