"""A chief's patrol on a phone finds a problem that is not settled on the spot: a case opens from it, with
the problem's photo, and the leaders' compliance page lists who is still short."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image

from server.workflow.models import Case
from tests.browser.conftest import phone_context

pytestmark = pytest.mark.browser


def _photo(name: str, colour: str) -> dict:
    buffer = io.BytesIO()
    Image.new("RGB", (640, 480), colour).save(buffer, "JPEG")
    return {"name": name, "mimeType": "image/jpeg", "buffer": buffer.getvalue()}


def test_patrol_finding_opens_a_case_and_compliance_shows_who_is_short(browser, live_server):
    url = live_server.url
    context = phone_context(browser, geolocation={"latitude": 29.771, "longitude": 107.244, "accuracy": 12},
                            permissions=["geolocation"])
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.goto(url + "/login")
    page.get_by_label("用户名").fill("chief")
    page.get_by_label("密码").fill(live_server.password)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(url + "/")
    cases_before = live_server.count(Case)

    page.goto(url + "/f/lidu/patrol_log/new")
    page.get_by_label("巡查区域").select_option("shilong_old_street")
    page.get_by_role("button", name="使用当前位置").click()
    page.get_by_text("已定位").wait_for()
    page.get_by_label("现场照片").set_input_files(_photo("patrol.jpg", "green"))
    page.get_by_label("巡查情况").fill("老街巡查")
    page.get_by_label("是", exact=True).check()
    page.locator("#f-problems").wait_for(state="visible")
    page.get_by_label("问题类别").select_option("random_piling")
    page.get_by_label("问题描述").fill("<b>商户</b>占道堆放货物")
    page.get_by_label("问题照片").set_input_files(_photo("pile.jpg", "orange"))
    page.get_by_role("button", name="提交巡查日志").click()
    page.wait_for_url(f"{url}/f/records/*")
    record_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
    assert live_server.count(Case) == cases_before + 1

    # The case is in the community's inbox, pre-filled from the patrol, with the problem's photo.
    page.goto(url + "/cases/lidu/?box=unit")
    page.locator("table a", has_text="#").first.click()
    page.wait_for_url(f"{url}/cases/case/*")
    assert page.get_by_text(f"由记录 #{record_id} 立案").is_visible()
    assert page.get_by_text("<b>商户</b>占道堆放货物").is_visible()  # shown as text, not markup
    photo = page.locator(".thumbs img").first
    assert photo.evaluate("img => img.complete && img.naturalWidth > 0")

    # The compliance page: the community has not yet run this month's themed campaign.
    page.goto(url + "/patrols/lidu/")
    campaign = page.locator("#rule-themed_campaign_monthly")
    assert "石龙社区" in campaign.inner_text()
    assert re.search(r"差\s*1\s*次", campaign.inner_text())
    context.close()
