"""The dispatcher's queue in Chromium, on a phone and at a desktop: among 300 cases waiting, search, filter and
page without a full reload, then dispatch a case from it; the tab's count follows."""

from __future__ import annotations

import datetime as dt

import pytest

from server.definitions.models import DefinitionVersion
from server.extensions import db
from server.org.models import Area
from server.workflow.models import Case, CaseDeadline
from tests.browser.conftest import logged_in
from tests.support.clock import NOW

pytestmark = pytest.mark.browser
CASES = 300


def _seed(live, mark: str) -> None:  # noqa: ANN001
    """300 cases waiting for dispatch on Zhiyuan Road, a third of them from the public, their text marked."""
    with live.app.app_context():
        workflow = db.session.scalar(db.select(DefinitionVersion).filter_by(kind="workflow",
                                                                            key="discover_assign_rectify_close"))
        road = db.session.scalar(db.select(Area).filter_by(scheme_key="lidu", key="zhiyuan_road"))
        if db.session.scalar(db.select(db.func.count(Case.id)).where(Case.data["description"].as_string()
                                                                      .like(f"{mark}%"))):
            return
        for n in range(CASES):
            case = Case(scheme_key="lidu", workflow_key=workflow.key, definition_version_id=workflow.id,
                        state="reported", state_kind="open", data={"description": f"{mark}{n:03d}"},
                        category="piled_rubbish", area_id=road.id, unit_id=None,
                        source="public" if n % 3 == 0 else "staff", created_at=NOW - dt.timedelta(minutes=n))
            db.session.add(case)
            db.session.flush()
            db.session.add(CaseDeadline(case_id=case.id, key="dispatch", started_at=NOW,
                                        due_at=NOW + dt.timedelta(hours=1 + n)))
        db.session.commit()
        db.session.remove()


def _live(page) -> None:  # noqa: ANN001
    """Wait until htmx has taken up the queue it just swapped in (as a person would, a moment later)."""
    page.wait_for_function("() => { const f = document.querySelector('form.queue-filters');"
                           " return f && f['htmx-internal-data'] !== undefined; }")


@pytest.mark.parametrize(("viewport", "mark"), [({"width": 390, "height": 844}, "队列样例"),
                                              ({"width": 1366, "height": 900}, "桌面样例")], ids=["phone", "desktop"])
def test_the_dispatcher_finds_filters_pages_and_dispatches(browser, live_server, viewport, mark):
    _seed(live_server, mark)
    context, page = logged_in(browser, live_server, "office")
    page.set_viewport_size(viewport)
    page.goto(live_server.url + "/cases/lidu/?box=to_dispatch")
    page.evaluate("window.__stayed = true")  # gone if the page reloads as a whole
    _live(page)
    page.get_by_label("搜索").fill(mark)
    page.wait_for_url("**q=*")
    page.get_by_text(f"共 {CASES} 件").wait_for()
    _live(page)
    assert page.get_by_role("link", name=f"{mark}000").count() == 0  # the number is the link; the line is text
    assert page.locator("table.queue tbody tr").count() == 50
    page.get_by_role("link", name="下一页").click()
    page.get_by_text("第 2 / 6 页").wait_for()
    _live(page)
    assert page.locator("table.queue tbody tr").count() == 50
    page.get_by_label("来源").select_option("public")
    page.wait_for_url("**source=public*")
    page.get_by_text(f"共 {CASES // 3} 件").wait_for()
    _live(page)
    assert page.evaluate("window.__stayed === true")  # every change reloaded the queue alone
    # The address followed each change: back goes to the second page, forward to the filter again.
    page.go_back()
    page.wait_for_url(lambda url: "page=2" in url and "source=public" not in url)
    page.get_by_text("第 2 / 6 页").wait_for()
    page.go_forward()
    page.get_by_text(f"共 {CASES // 3} 件").wait_for()
    _live(page)
    # The least time left first: case 000 is due soonest. Dispatch it from the queue.
    first = page.locator("table.queue tbody tr").first
    assert mark + "000" in first.inner_text()
    first.get_by_role("link").first.click()
    page.wait_for_url("**/cases/case/*")
    page.get_by_role("link", name="交办", exact=True).click()  # down to the form on the case page itself
    page.wait_for_url("**#step-form")
    page.get_by_label("承办单位").select_option("zhiyuan")
    page.get_by_role("button", name="交办").click()
    page.wait_for_url(lambda url: "/cases/case/" in url and "#" not in url)  # sent, and back on the case
    page.goto(live_server.url + f"/cases/lidu/?box=to_dispatch&q={mark}&source=public")
    page.get_by_text(f"共 {CASES // 3 - 1} 件").wait_for()
    context.close()
