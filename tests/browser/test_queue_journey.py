"""The dispatcher's queue in Chromium: search, filter and page without a full reload, then dispatch a case from
it; the tab's count follows."""

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
MARK = "队列样例"


def _seed(live) -> None:  # noqa: ANN001
    """60 cases waiting for dispatch on Zhiyuan Road, a third of them from the public."""
    with live.app.app_context():
        workflow = db.session.scalar(db.select(DefinitionVersion).filter_by(kind="workflow",
                                                                            key="discover_assign_rectify_close"))
        road = db.session.scalar(db.select(Area).filter_by(scheme_key="lidu", key="zhiyuan_road"))
        if db.session.scalar(db.select(db.func.count(Case.id)).where(Case.data["description"].as_string()
                                                                      .like(f"{MARK}%"))):
            return
        for n in range(60):
            case = Case(scheme_key="lidu", workflow_key=workflow.key, definition_version_id=workflow.id,
                        state="reported", state_kind="open", data={"description": f"{MARK}{n:02d}"},
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


def test_the_dispatcher_finds_filters_pages_and_dispatches(browser, live_server):
    _seed(live_server)
    context, page = logged_in(browser, live_server, "office")
    page.goto(live_server.url + "/cases/lidu/?box=to_dispatch")
    page.evaluate("window.__stayed = true")  # gone if the page reloads as a whole
    _live(page)
    page.get_by_label("搜索").fill(MARK)
    page.wait_for_url("**q=*")
    page.get_by_text("共 60 件").wait_for()
    _live(page)
    assert page.get_by_role("link", name=f"{MARK}00").count() == 0  # the number is the link; the line is text
    assert page.locator("table.queue tbody tr").count() == 50
    page.get_by_role("link", name="下一页").click()
    page.get_by_text("第 2 / 2 页").wait_for()
    _live(page)
    assert page.locator("table.queue tbody tr").count() == 10
    page.get_by_label("来源").select_option("public")
    page.wait_for_url("**source=public*")
    page.get_by_text("共 20 件").wait_for()
    _live(page)
    assert page.evaluate("window.__stayed === true")  # every change reloaded the queue alone
    # The address followed each change: back goes to the second page, forward to the filter again.
    page.go_back()
    page.wait_for_url(lambda url: "page=2" in url and "source=public" not in url)
    page.get_by_text("第 2 / 2 页").wait_for()
    page.go_forward()
    page.get_by_text("共 20 件").wait_for()
    _live(page)
    # The least time left first: case 00 is due soonest. Dispatch it from the queue.
    first = page.locator("table.queue tbody tr").first
    assert MARK + "00" in first.inner_text()
    first.get_by_role("link").first.click()
    page.wait_for_url("**/cases/case/*")
    page.get_by_role("link", name="交办", exact=True).click()  # down to the form on the case page itself
    page.wait_for_url("**#step-form")
    page.get_by_label("承办单位").select_option("zhiyuan")
    page.get_by_role("button", name="交办").click()
    page.wait_for_url(lambda url: "/cases/case/" in url and "#" not in url)  # sent, and back on the case
    page.goto(live_server.url + f"/cases/lidu/?box=to_dispatch&q={MARK}&source=public")
    page.get_by_text("共 19 件").wait_for()
    context.close()
