"""The district's sections under the top bar: what this person may open, the page's own marked; none for
the public."""

from __future__ import annotations

import re

from tests.support.factories import load_demo, login, make_user


def _sections(html: str) -> list[tuple[str, bool]]:
    nav = re.search(r'<nav class="sectionnav".*?</nav>', html, re.S)
    if nav is None:
        return []
    return [(label, 'class="active"' in attrs) for attrs, label in re.findall(r"<a ([^>]*)>([^<]+)</a>", nav.group(0))]


def test_each_person_sees_their_sections(ctx, client):
    load_demo()
    assert _sections(client.get("/").get_data(as_text=True)) == []  # the public: none
    make_user("office", roles=(("lidu", "office_admin", None),))
    login(client, "office")
    queue = _sections(client.get("/cases/lidu/").get_data(as_text=True))
    assert ("案件", True) in queue and {"巡查", "考核", "组织架构"} <= {label for label, _a in queue}
    dashboard = _sections(client.get("/assess/lidu/dashboard").get_data(as_text=True))
    assert [label for label, active in dashboard if active] == ["工作看板"]
    staff = client.application.test_client()
    make_user("staffer", roles=(("lidu", "staff", "shilong"),))
    login(staff, "staffer")
    mine = {label for label, _a in _sections(staff.get("/").get_data(as_text=True))}
    assert "案件" in mine and "考核" not in mine and "工作看板" not in mine


def test_the_home_page_counts_each_persons_cases(ctx, client):
    """A dispatcher's home says how many cases wait for dispatch; a handler's, their own and the late ones."""
    from server.extensions import db
    from server.workflow import service
    from tests.integration.test_cases import report

    load_demo()
    reporter = make_user("reporter", roles=(("lidu", "staff", "shilong"),))
    make_user("office", roles=(("lidu", "office_admin", None),))
    with client.application.test_request_context():
        report(reporter)
        report(reporter, 2.0)
    db.session.commit()
    login(client, "office")
    home = client.get("/").get_data(as_text=True)
    assert re.search(r'box=to_dispatch"><strong>2</strong>', home)
    handler = client.application.test_client()
    login(handler, "reporter")
    theirs = handler.get("/").get_data(as_text=True)
    assert "box=to_dispatch" not in theirs and re.search(r'box=mine"><strong>2</strong>', theirs)
    assert service.queue_counts(reporter, "lidu")["mine"] == 2


def test_a_chiefs_home_shows_their_patrols_and_a_leaders_the_figures(ctx, client):
    """The community head sees each rule they owe in the periods running today, with what is done; a leader sees
    the month's figures."""
    from server.extensions import db
    from server.org.posts import appoint
    from tests.support.clock import TODAY

    load_demo()
    make_user("chief", roles=(("lidu", "unit_head", "shilong"),))
    appoint("lidu", "community_head", "王社区", unit_key="shilong", username="chief",
            since=TODAY.replace(day=1))
    make_user("leader", roles=(("lidu", "leader", None),))
    db.session.commit()
    login(client, "chief")
    home = client.get("/").get_data(as_text=True)
    mine = home.split("我的巡查", 1)[1].split("</section>", 1)[0]
    items = {re.sub(r"\s+", " ", re.sub("<[^>]+>", " ", li)).strip() for li in re.findall(r"<li.*?</li>", mine, re.S)}
    weekly = next(i for i in items if i.startswith("社区主要干部每周不少于1次"))
    assert "· 0 / 1" in weekly and "填写" in weekly  # owed this week, nothing yet: a link to fill it
    assert any(i.startswith("每月开展“马路办公”专题治理 石龙社区") for i in items)  # the community's own rule
    assert 'data-figure="found"' not in home  # no dashboard for a unit head in Lidu
    leader = client.application.test_client()
    login(leader, "leader")
    theirs = leader.get("/").get_data(as_text=True)
    assert 'data-figure="found"' in theirs and 'data-figure="overdue"' in theirs


def test_deep_pages_say_where_they_sit(ctx, client):
    """A case page: Home › Cases › Case #n, and the district's sections although its address names no district."""
    from server.extensions import db
    from tests.integration.test_cases import report
    from tests.support.factories import load_shipped

    load_demo()
    load_shipped("chengguan")
    reporter = make_user("reporter", roles=(("lidu", "staff", "shilong"),))
    make_user("office", roles=(("lidu", "office_admin", None), ("chengguan", "office_admin", None)))
    with client.application.test_request_context():
        case = report(reporter)
    db.session.commit()
    login(client, "office")
    page = client.get(f"/cases/case/{case.id}").get_data(as_text=True)
    trail = re.search(r'<nav class="crumbs".*?</nav>', page, re.S).group(0)
    assert re.findall(r">([^<>]+)</(?:a|span)>", trail) == ["首页", "案件", f"案件 #{case.id}"]
    assert 'href="/cases/lidu/"' in trail
    assert ("案件", True) in _sections(page)  # the office works in two districts: the case's is shown
