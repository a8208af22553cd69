"""A leader reads the dashboard, on a desktop and on a phone: the month's figures, the charts drawn by ECharts
with every label whole, the overdue cases and who is short of patrols."""

from __future__ import annotations

import pytest

from tests.browser.conftest import Live

pytestmark = pytest.mark.browser


def _leader(browser, live: Live, viewport: dict):  # noqa: ANN001, ANN202
    context = browser.new_context(viewport=viewport, locale="zh-CN", service_workers="block")
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(live.url + "/login")
    page.get_by_label("用户名").fill("office")
    page.get_by_label("密码").fill(live.password)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(live.url + "/")
    return context, page


@pytest.mark.parametrize("viewport", [{"width": 1366, "height": 900}, {"width": 390, "height": 844}],
                         ids=["desktop", "phone"])
def test_the_leader_reads_the_dashboard(browser, live_server, viewport):
    context, page = _leader(browser, live_server, viewport)
    page.locator("[data-figure='found'] .value").wait_for()  # the home page has the month's figures too
    page.get_by_role("link", name="工作看板").first.click()
    page.wait_for_url("**/dashboard")
    for key in ("found", "rectified", "rectification_rate", "on_time_rate", "public", "overdue"):
        assert page.locator(f"#figures [data-figure='{key}']").is_visible()
    assert "上月同期" in page.locator("#figures [data-figure='found']").inner_text()
    page.locator("[data-chart][data-drawn='echarts']").first.wait_for()  # ECharts replaced the SVG
    assert page.locator("[data-chart]").count() == page.locator("[data-chart][data-drawn='echarts']").count()
    assert page.get_by_role("heading", name="超期案件").is_visible()
    assert page.get_by_role("heading", name="巡查未达标").is_visible()
    # Nothing runs off the side of the page, on a phone either.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    page.get_by_role("link", name="巡查达标情况").click()
    page.wait_for_url("**/patrols/lidu/")
    context.close()
