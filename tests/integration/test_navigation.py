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
