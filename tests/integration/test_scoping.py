"""Role plus area scope: district roles see everything, subtree roles their unit down, posted roles their posts."""

from __future__ import annotations

import datetime as dt

import pytest

from server.auth.permissions import can_manage_scheme, can_view_unit, compute_scope
from server.extensions import db
from server.org.models import Area, Post, Unit
from tests.support.clock import TODAY
from tests.support.factories import load_demo, login, make_user, unit_id


@pytest.fixture
def demo(ctx):
    return load_demo()


def _unit(key: str) -> Unit:
    return db.session.get(Unit, unit_id("lidu", key))


def test_admin_sees_the_whole_district(demo):
    admin = make_user("boss", admin=True)
    scope = compute_scope(admin, "lidu")
    assert scope.district_wide and can_manage_scheme(admin, "lidu")


def test_district_role(demo):
    office = make_user("office", roles=(("lidu", "office_admin", None),))
    assert compute_scope(office, "lidu").district_wide
    assert can_manage_scheme(office, "lidu")


def test_subtree_role_sees_own_unit_and_below_only(demo):
    head = make_user("head", roles=(("lidu", "unit_head", "shilong"),))
    scope = compute_scope(head, "lidu")
    assert scope.unit_ids == {unit_id("lidu", "shilong")}
    assert can_view_unit(head, _unit("shilong")) and not can_view_unit(head, _unit("zhiyuan"))
    assert not can_manage_scheme(head, "lidu")
    # areas of the unit come with it
    road = db.session.scalar(db.select(Area).filter_by(key="shilong_old_street"))
    assert scope.covers_area(road.id, road.unit_id)


def test_subtree_of_the_root_is_everything_below(demo):
    head = make_user("street", roles=(("lidu", "unit_head", "lidu_street"),))
    units = db.session.scalars(db.select(Unit.id).filter_by(scheme_key="lidu")).all()
    assert compute_scope(head, "lidu").unit_ids == set(units)


def test_posted_role_comes_from_a_post_held_today(demo):
    keeper = make_user("keeper")
    area = db.session.scalar(db.select(Area).filter_by(key="zhiyuan_road"))
    today = TODAY
    db.session.add(Post(scheme_key="lidu", tier_key="segment_keeper", user=keeper, holder_name="Keeper",
                        area=area, started_on=today - dt.timedelta(days=10)))
    db.session.commit()
    scope = compute_scope(keeper, "lidu", today)
    assert scope.has("patrol.file")
    assert scope.area_ids == {area.id}
    assert not scope.covers_area(db.session.scalar(db.select(Area.id).filter_by(key="longqiao_road")))
    # a post that ended gives nothing
    post = keeper.posts[0]
    post.ended_on = today - dt.timedelta(days=1)
    db.session.commit()
    assert compute_scope(keeper, "lidu", today).capabilities == frozenset()


def test_user_without_roles_sees_no_district(demo, client):
    make_user("nobody")
    login(client, "nobody")
    page = client.get("/").get_data(as_text=True)
    assert "李渡" not in page
    assert client.get("/org/lidu/units").status_code == 403
    assert client.get("/district/lidu").status_code == 403


def test_out_of_scope_unit_page_is_refused(demo, client):
    make_user("head2", roles=(("lidu", "unit_head", "shilong"),))
    login(client, "head2")
    assert client.get(f"/org/units/{unit_id('lidu', 'shilong')}").status_code == 200
    assert client.get(f"/org/units/{unit_id('lidu', 'zhiyuan')}").status_code == 403
    listing = client.get("/org/lidu/units").get_data(as_text=True)
    assert "石龙社区" in listing and "致远社区" not in listing


def test_scheme_admin_pages_need_scheme_manage(demo, client):
    make_user("head3", roles=(("lidu", "unit_head", "shilong"),))
    login(client, "head3")
    assert client.get("/admin/schemes").status_code == 403
    assert client.get("/admin/schemes/upload").status_code == 403
    assert client.get("/admin/audit/").status_code == 403


def test_each_capability_reaches_only_as_far_as_its_own_role(demo):
    both = make_user("both", roles=(("lidu", "unit_head", "shilong"), ("lidu", "assessor", None)))
    scope = compute_scope(both, "lidu")
    assert scope.only("assessment.enter").district_wide
    handle = scope.only("case.handle")
    assert handle.covers_unit(unit_id("lidu", "shilong")) and not handle.covers_unit(unit_id("lidu", "zhiyuan"))
    # org.view comes from both roles: the district-wide one wins for viewing
    assert scope.only("org.view").district_wide


def test_a_subtree_role_without_a_unit_is_refused(demo):
    from server.auth.service import grant_role
    from server.core.errors import Conflict

    user = make_user("unitless")
    with pytest.raises(Conflict):
        grant_role(user, "lidu", "unit_head", None)


def test_a_post_over_a_road_reaches_its_segments_and_gives_its_role_and_tier_there(demo):
    """A segment keeper posted over Shilong Old Street sees, and acts on, a case on its north segment: the
    post's reach covers the areas inside its area, its tier's role counts in a transition's `who.roles`, and
    its tier counts in `who.tiers`."""
    from server.auth import permissions
    from server.definitions.models import DefinitionVersion
    from server.org.posts import appoint
    from server.workflow.models import Case
    from server.workflow.service import actor_for

    keeper = make_user("keeper")
    appoint("lidu", "segment_keeper", "张三", area_key="shilong_old_street", username="keeper", since=TODAY)
    north = db.session.scalar(db.select(Area).filter_by(scheme_key="lidu", key="shilong_old_street_north"))
    elsewhere = db.session.scalar(db.select(Area).filter_by(scheme_key="lidu", key="zhiyuan_road"))
    workflow = db.session.scalar(db.select(DefinitionVersion).filter_by(kind="workflow"))
    cases = {}
    for name, area in (("north", north), ("elsewhere", elsewhere)):
        case = Case(scheme_key="lidu", workflow_key=workflow.key, definition_version_id=workflow.id, state="assigned",
                    state_kind="open", data={}, area_id=area.id, unit_id=area.unit_id)
        db.session.add(case)
        cases[name] = case
    db.session.flush()
    assert north.id in compute_scope(keeper, "lidu", TODAY).only("case.handle").area_ids
    assert permissions.can_view_case(keeper, cases["north"])
    assert not permissions.can_view_case(keeper, cases["elsewhere"])
    assert permissions.roles_over_case(keeper, cases["north"]) == {"staff"}
    assert permissions.roles_over_case(keeper, cases["elsewhere"]) == frozenset()
    assert "segment_keeper" in actor_for(keeper, cases["north"]).tiers
    assert "segment_keeper" not in actor_for(keeper, cases["elsewhere"]).tiers
