"""The case queue: tabs with counts, search, filters, order, pages and htmx, within each user's reach; on both
databases."""

from __future__ import annotations

import datetime as dt

import pytest

from server.definitions.models import DefinitionVersion
from server.extensions import db
from server.org.models import Area, Unit
from server.workflow import inboxes, service
from server.workflow.models import Case, CaseDeadline
from tests.support.clock import NOW
from tests.support.factories import load_demo, login, make_user, unit_id

PLACES = ("shilong_old_street", "zhiyuan_road", "duanqiao_street")


@pytest.fixture
def queue(ctx):
    """120 open cases over three roads, half waiting for dispatch, with deadlines; and three closed ones."""
    load_demo()
    workflow = db.session.scalar(db.select(DefinitionVersion).filter_by(kind="workflow",
                                                                        key="discover_assign_rectify_close"))
    areas = {a.key: a for a in db.session.scalars(db.select(Area).filter_by(scheme_key="lidu"))}
    for n in range(123):
        area = areas[PLACES[n % 3]]
        closed = n >= 120
        case = Case(scheme_key="lidu", workflow_key=workflow.key, definition_version_id=workflow.id,
                    state="closed" if closed else ("reported" if n % 2 else "assigned"),
                    state_kind="final" if closed else "open", outcome="resolved" if closed else None,
                    data={"description": f"第{n}号 垃圾堆积" if n % 4 == 0 else f"问题 {n}"},
                    category="piled_rubbish" if n % 4 == 0 else "other", area_id=area.id, unit_id=area.unit_id,
                    source=("staff", "patrol", "public")[n % 3], created_at=NOW - dt.timedelta(minutes=n))
        db.session.add(case)
        db.session.flush()
        if not closed:  # the later the case, the sooner it is due: case 119 first
            db.session.add(CaseDeadline(case_id=case.id, key="rectify", started_at=NOW - dt.timedelta(days=1),
                                        due_at=NOW + dt.timedelta(hours=200 - n)))
    make_user("dispatcher", roles=(("lidu", "office_admin", None),))
    make_user("head", roles=(("lidu", "unit_head", "shilong"),))
    db.session.commit()
    return areas


def _page(username: str, **args: str) -> inboxes.QueuePage:
    from server.auth.models import User

    user = db.session.scalar(db.select(User).filter_by(username=username))
    page, _choices = service.case_queue(user, "lidu", inboxes.queue_query(args))
    return page


def test_tabs_count_and_pages_show_every_case(queue):
    page = _page("dispatcher", box="unit")
    assert page.counts == {"to_dispatch": 60, "mine": 0, "unit": 120, "due_soon": 0, "overdue": 0, "all": 123}
    assert page.total == 120 and page.pages == 3 and len(page.rows) == inboxes.PAGE_SIZE
    seen = {row.id for p in (1, 2, 3) for row in _page("dispatcher", box="unit", page=str(p)).rows}
    assert len(seen) == 120  # nothing silently cut off
    assert len(_page("dispatcher", box="unit", page="3").rows) == 20
    assert _page("dispatcher", box="unit", page="99").query.page == 3  # past the end: the last page
    assert {r.state for r in _page("dispatcher", box="to_dispatch").rows} == {"reported"}


def test_search_by_number_words_road_and_category(queue):
    first = db.session.scalar(db.select(Case).order_by(Case.id))
    assert [r.id for r in _page("dispatcher", box="all", q=f"#{first.id}").rows] == [first.id]
    assert _page("dispatcher", box="unit", q="垃圾").total == 30  # every fourth case says 垃圾堆积
    assert _page("dispatcher", box="unit", q="问题 7").total == 9  # 问题 7 and 问题 70–79 but 72 and 76 (垃圾)
    assert _page("dispatcher", box="unit", q="致远").total == 40  # the road's name
    assert _page("dispatcher", box="unit", q="Zhiyuan").total == 40  # in English too
    assert _page("dispatcher", box="unit", q="piled").total == 30  # the category's name (Piled rubbish)
    assert _page("dispatcher", box="unit", q="100%_").total == 0  # wildcards are plain characters


def test_filters_and_order(queue):
    shilong = str(unit_id("lidu", "shilong"))
    assert _page("dispatcher", box="unit", unit=shilong).total == 40
    assert _page("dispatcher", box="unit", source="public").total == 40
    assert _page("dispatcher", box="unit", category="piled_rubbish", state="reported").total == 0  # n % 4 == 0: even
    assert _page("dispatcher", box="unit", category="piled_rubbish", state="assigned").total == 30
    soonest = _page("dispatcher", box="unit").rows
    assert soonest[0].data["description"] == "问题 119" and soonest[0].due_at < soonest[1].due_at
    assert _page("dispatcher", box="unit", sort="newest").rows[0].data["description"] == "第0号 垃圾堆积"
    # Nonsense falls back to the defaults rather than failing.
    odd = _page("dispatcher", box="<script>", unit="x", page="-3", sort="drop", source="evil", state="' or 1=1")
    assert odd.query.box == "mine" and odd.query.page == 1 and odd.total == 0


def test_each_user_sees_their_reach(queue):
    head = _page("head", box="unit")
    street = db.session.scalar(db.select(Area).filter_by(scheme_key="lidu", key="shilong_old_street"))
    assert head.total == 40 and {str(r.area) for r in head.rows} == {str(street.name)}
    assert head.counts["all"] == 41 and head.counts["to_dispatch"] == 20


def test_the_page_and_its_htmx_part(queue, client):
    login(client, "dispatcher")
    full = client.get("/cases/lidu/?box=unit&q=%3Cb%3E")
    html = full.get_data(as_text=True)
    assert full.status_code == 200 and "<html" in html and 'id="queue"' in html and "&lt;b&gt;" in html
    part = client.get("/cases/lidu/?box=to_dispatch&page=2", headers={"HX-Request": "true", "HX-Target": "queue"})
    body = part.get_data(as_text=True)
    assert part.status_code == 200 and "<html" not in body and 'id="queue"' in body
    assert 'rel="prev"' in body and 'rel="next"' not in body  # page 2 of the 60 waiting for dispatch
    assert body.count('href="/cases/case/') == 10


def test_rows_show_the_workflows_line_and_flags(queue, client):
    """The workflow's `queue:` says which field is a row's line and which choices tag it (紧急); without it the
    report form's first field of several lines is the line."""
    urgent, normal = db.session.scalars(db.select(Case).filter_by(state="reported").order_by(Case.id).limit(2))
    urgent.data = {**urgent.data, "urgency": "urgent", "description": "占道堆放建筑垃圾"}
    normal.data = {**normal.data, "urgency": "normal"}
    db.session.commit()
    rows = {r.id: r for r in _page("dispatcher", box="to_dispatch", q="#" + str(urgent.id)).rows}
    assert [f["zh"] for f in rows[urgent.id].flags] == ["紧急"] and rows[urgent.id].line == "占道堆放建筑垃圾"
    assert _page("dispatcher", box="all", q=f"#{normal.id}").rows[0].flags == ()
    login(client, "dispatcher")
    html = client.get(f"/cases/lidu/?box=all&q=%23{urgent.id}").get_data(as_text=True)
    assert '<span class="tag removed">紧急</span>' in html and "占道堆放建筑垃圾" in html
    definition = db.session.get(DefinitionVersion, urgent.definition_version_id).data
    plain = service.engine.workflow_spec({k: v for k, v in definition.items() if k != "queue"})
    report = service.form_spec_of(service.forms.form_version("lidu", plain.report_form))
    look = service._row_look(plain, report)
    assert look.line == "description" and look.flags == ()  # the first textarea, not the one-line address


def test_search_reads_values_and_counts_follow_it(queue):
    assert _page("dispatcher", box="unit", q="description").total == 0  # a field's name is not its text
    assert _page("dispatcher", box="unit", q='"').total == 0
    searched = _page("dispatcher", box="unit", q="垃圾")
    assert searched.counts["unit"] == searched.total == 30 and searched.counts["to_dispatch"] == 0
    assert _page("dispatcher", box="unit", q="\x00问题").query.q == "问题"  # no NUL reaches the database


def test_a_paused_deadline_is_not_late(queue):
    late = db.session.scalar(db.select(CaseDeadline).order_by(CaseDeadline.id))
    late.due_at, late.paused_at = NOW - dt.timedelta(hours=1), NOW - dt.timedelta(hours=2)  # waiting on the reporter
    db.session.commit()
    assert _page("dispatcher", box="overdue").total == 0
    late.paused_at = None
    db.session.commit()
    assert _page("dispatcher", box="overdue").total == 1


def test_cases_waiting_for_dispatch_after_registration_count_too(ctx):
    """Where a workflow registers a case before dispatching it (数字化城管), both states wait for the dispatcher."""
    from ruamel.yaml import YAML

    from server.workflow import engine
    from tests.support.factories import ROOT

    flow = engine.workflow_spec(YAML(typ="safe").load((ROOT / "workflow_definitions/digital_city.yaml")
                                                      .read_text("utf-8")))
    waiting = {state for _key, state in service.waiting_for_dispatch({"digital_city": flow})}
    assert {flow.initial, "registered"} <= waiting and "handling" not in waiting


def test_a_city_of_units_offers_its_upper_levels_and_finds_the_rest_by_name(queue, monkeypatch):
    """Past UNITS_OFFERED the unit filter lists the upper levels (and the unit chosen); any unit's cases are
    found by its name in the search."""
    from server.auth.models import User
    from server.org import service as org_service
    from server.org.models import Unit
    from server.web.i18n import tr

    units = list(db.session.scalars(db.select(Unit).filter_by(scheme_key="lidu", active=True)))
    depth = {u.id: u.path.count("/") for u in units}
    monkeypatch.setattr(org_service, "UNITS_OFFERED", sum(1 for d in depth.values() if d == min(depth.values())))
    dispatcher = db.session.scalar(db.select(User).filter_by(username="dispatcher"))
    holder = db.session.get(Area, queue["zhiyuan_road"].id).unit
    assert depth[holder.id] > min(depth.values())  # a unit below the top level holds cases

    choices = service.queue_choices(dispatcher, "lidu")
    assert choices.more_units and {u.id for u in choices.units} == {
        i for i, d in depth.items() if d == min(depth.values())}
    chosen = service.queue_choices(dispatcher, "lidu", holder.id)
    assert holder.id in {u.id for u in chosen.units}  # the one chosen stays in the list
    monkeypatch.setattr(org_service, "UNITS_OFFERED", 0)  # even when the upper level alone is cut short
    assert [u.id for u in service.queue_choices(dispatcher, "lidu", holder.id).units] == [holder.id]
    monkeypatch.setattr(org_service, "UNITS_OFFERED", len(choices.units))

    held = db.session.scalar(db.select(db.func.count(Case.id)).filter_by(unit_id=holder.id))
    page = _page("dispatcher", box="all", q=tr(holder.name))
    listed = {c.unit_id for c in db.session.scalars(db.select(Case).where(Case.id.in_([r.id for r in page.rows])))}
    assert held and page.total == held and listed == {holder.id}
    monkeypatch.setattr(org_service, "UNITS_OFFERED", len(units))
    everything = service.queue_choices(dispatcher, "lidu")
    assert not everything.more_units and len(everything.units) == len(units) > len(choices.units)


def test_a_unit_renamed_is_found_by_its_new_name_at_once(queue):
    """The district's names are kept between searches: a unit renamed is found by its new name, not its old."""
    from server.auth.models import User
    from server.org.engine import UnitValues
    from server.org.service import edit_unit

    assert _page("dispatcher", box="unit", q="石龙社区").total == 40  # the unit's name: its cases
    shilong = db.session.get(Unit, unit_id("lidu", "shilong"))
    office = db.session.scalar(db.select(User).filter_by(username="dispatcher"))
    parent = shilong.parent.key if shilong.parent else None
    edit_unit(office, shilong, UnitValues(shilong.key, shilong.kind, {"zh": "石龙新区", "en": "Shilong New"}, parent,
                                          shilong.difficulty, shilong.active))
    db.session.commit()
    assert _page("dispatcher", box="unit", q="石龙新区").total == 40
    assert _page("dispatcher", box="unit", q="石龙社区").total == 0
