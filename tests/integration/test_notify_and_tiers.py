"""Notifications to a fixed unit or to a tier's holder over the case's place, and the nearest tier holder above
a case's place for routing; the scheme check of the units and tiers a workflow names."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.definitions.bundle import check_files, library_files
from server.definitions.errors import DefinitionsInvalid
from server.definitions.models import DefinitionVersion
from server.extensions import db
from server.org.models import Area
from server.org.posts import appoint
from server.workflow import engine, routing, service
from server.workflow.models import Case, Notification
from tests.support.clock import TODAY
from tests.support.factories import demo_files, load_demo, make_user, unit_id

ROOT = Path(__file__).resolve().parents[2]


def _case_on(area_key: str) -> Case:
    area = db.session.scalar(db.select(Area).filter_by(scheme_key="lidu", key=area_key))
    workflow = db.session.scalar(db.select(DefinitionVersion).filter_by(kind="workflow"))
    case = Case(scheme_key="lidu", workflow_key=workflow.key, definition_version_id=workflow.id, state="assigned",
                state_kind="open", data={}, area_id=area.id, unit_id=area.unit_id)
    db.session.add(case)
    db.session.flush()
    return case


def test_notify_names_become_recipients():
    assert engine.recipients(["assignee", {"unit": "town_office"}, {"tier": "segment_keeper"}]) == (
        "assignee", "unit:town_office", "tier:segment_keeper")


def test_notifications_reach_a_fixed_unit_and_the_tier_holders_over_the_place(ctx):
    load_demo()
    keeper = make_user("keeper")
    appoint("lidu", "segment_keeper", "张三", area_key="shilong_old_street", username="keeper", since=TODAY)
    appoint("lidu", "community_head", "李书记", area_key="shilong_town", since=TODAY)  # no account: its unit
    case = _case_on("shilong_old_street_north")
    service.notify(case, {"unit:town_office", "tier:segment_keeper", "tier:community_head", "tier:main_leader"},
                   "有新案件")
    db.session.flush()
    got = {(n.user_id, n.unit_id) for n in db.session.scalars(db.select(Notification).filter_by(case_id=case.id))}
    assert got == {(None, unit_id("lidu", "town_office")), (keeper.id, None), (None, unit_id("lidu", "shilong"))}


def test_the_nearest_holder_above_the_place(ctx):
    load_demo()
    appoint("lidu", "segment_keeper", "张三", area_key="shilong_old_street", since=TODAY)
    appoint("lidu", "segment_keeper", "王五", area_key="shilong_old_street_north", since=TODAY)
    north, south = _case_on("shilong_old_street_north"), _case_on("shilong_old_street_south")
    assert [p.holder_name for p in routing.tier_holders(north, "segment_keeper")] == ["王五"]
    assert [p.holder_name for p in routing.tier_holders(south, "segment_keeper")] == ["张三"]
    assert routing.tier_holders(_case_on("zhiyuan_road"), "segment_keeper") == []


def _with_workflow_notify(item: str, *, into_library: bool) -> list[str]:
    library = library_files(ROOT)
    name = "workflow_definitions/discover_assign_rectify_close.yaml"
    text = library[name].replace("      - notify: [reporter]\n", f"      - notify: [reporter, {item}]\n", 1)
    assert text != library[name]
    files = demo_files()
    if into_library:
        library = {**library, name: text}
    else:
        files = {**files, "lidu/discover_assign_rectify_close.yaml": text}
    try:
        check_files(files, library)
    except DefinitionsInvalid as exc:
        return [f"{e.path}: {e.message}" for e in exc.errors]
    return []


def test_the_units_and_tiers_a_workflow_notifies_are_checked(ctx):
    assert _with_workflow_notify("{unit: town_office}", into_library=False) == []
    assert _with_workflow_notify("{tier: segment_keeper}", into_library=False) == []
    errors = _with_workflow_notify("{unit: town_ofice}", into_library=False)
    assert any("unknown unit 'town_ofice'" in e and "notify[1].unit" in e for e in errors), errors
    errors = _with_workflow_notify("{tier: segment_keeper}", into_library=True)
    assert any("built-in workflow cannot name a district's tier" in e for e in errors), errors
    with pytest.raises(AssertionError):
        assert _with_workflow_notify("{unit: town_ofice}", into_library=False) == []
