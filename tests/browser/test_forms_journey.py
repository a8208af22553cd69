"""A chief fills the patrol log on a phone: photo, location, a constraint error, data kept, one record."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image
from playwright.sync_api import expect

from server.forms.models import Submission
from tests.browser.conftest import phone_context

pytestmark = pytest.mark.browser


def _photo() -> dict:
    buffer = io.BytesIO()
    Image.new("RGB", (640, 480), "green").save(buffer, "JPEG")
    return {"name": "scene.jpg", "mimeType": "image/jpeg", "buffer": buffer.getvalue()}


def _login(page, live) -> None:  # noqa: ANN001
    page.goto(live.url + "/login")
    page.get_by_label("用户名").fill("chief")
    page.get_by_label("密码").fill(live.password)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(live.url + "/")


def _located_chief(browser, live):  # noqa: ANN001, ANN202
    """The chief, logged in on a phone that knows where it is (on Shilong old street)."""
    context = phone_context(browser, geolocation={"latitude": 29.771, "longitude": 107.244, "accuracy": 12},
                            permissions=["geolocation"])
    page = context.new_page()
    page.set_default_timeout(20_000)
    _login(page, live)
    return context, page


def _fill_patrol_log(page, live, javascript: bool) -> None:  # noqa: ANN001
    before = live.count(Submission)
    page.goto(live.url + "/f/lidu/patrol_log/new")
    page.get_by_label("巡查区域").select_option("shilong_old_street")
    if javascript:
        page.get_by_role("button", name="使用当前位置").click()
        page.get_by_text("已定位").wait_for()
    else:
        assert not page.get_by_role("button", name="使用当前位置").is_visible()
        page.get_by_label("道路或网格").select_option("shilong_old_street_north")
    page.get_by_label("参加人数").fill("0")
    page.get_by_label("现场照片").set_input_files(_photo())
    page.get_by_label("巡查情况").fill("老街北段有占道经营")
    page.get_by_role("button", name="提交巡查日志").click()

    # Rejected: the summary at the top, the error next to the field, everything still there.
    summary = page.get_by_role("alert")
    summary.wait_for()
    assert "参加人数" in summary.inner_text()
    assert "参加人数至少为1人" in page.locator("#f-participants .field-error").inner_text()
    assert page.get_by_label("参加人数").input_value() == "0"
    assert page.get_by_label("巡查情况").input_value() == "老街北段有占道经营"
    assert page.get_by_label("巡查区域").input_value() == "shilong_old_street"
    assert page.locator(".thumbs img").count() == 1  # the photo is kept, shown, not asked for again
    assert live.count(Submission) == before

    page.get_by_label("参加人数").fill("2")
    page.get_by_role("button", name="提交巡查日志").dblclick()
    # The second click's navigation aborts the first's: wait for where the page ends up, not for one navigation.
    expect(page).to_have_url(re.compile(re.escape(live.url) + r"/f/records/\d+"), timeout=20_000)
    assert page.get_by_text("老街北段有占道经营").is_visible()
    assert page.locator("dl.record img").count() == 1
    assert live.count(Submission) == before + 1


def test_patrol_log_with_javascript(browser, live_server):
    context, page = _located_chief(browser, live_server)
    # htmx: choosing "yes" shows the problems section without a reload
    page.goto(live_server.url + "/f/lidu/patrol_log/new")
    assert not page.locator("#f-problems").is_visible()
    page.get_by_label("是", exact=True).check()
    page.locator("#f-problems").wait_for(state="visible")
    page.get_by_label("否", exact=True).check()
    page.locator("#f-problems").wait_for(state="hidden")
    _fill_patrol_log(page, live_server, javascript=True)
    record = page.locator("dl.record").inner_text()
    assert "29.771" in record and "107.244" in record
    context.close()


def test_patrol_log_without_javascript(browser, live_server):
    context = phone_context(browser, java_script_enabled=False)
    page = context.new_page()
    page.set_default_timeout(10_000)
    _login(page, live_server)
    _fill_patrol_log(page, live_server, javascript=False)
    context.close()


def test_patrol_log_filled_without_signal_is_sent_once_when_it_returns(browser, live_server):
    context = phone_context(browser, service_workers="block")
    page = context.new_page()
    page.set_default_timeout(10_000)
    _login(page, live_server)
    before = live_server.count(Submission)
    page.goto(live_server.url + "/f/lidu/patrol_log/new")
    page.evaluate("window.fanganOutbox.ready")
    page.get_by_label("巡查区域").select_option("shilong_old_street")
    page.get_by_label("现场照片").set_input_files(_photo())
    page.get_by_label("巡查情况").fill("没有信号时填写")
    context.set_offline(True)
    page.get_by_role("button", name="提交巡查日志").click()
    page.get_by_text("已保存在手机上").wait_for()
    assert page.evaluate("window.fanganOutbox.count()") == 1
    assert page.locator("#outbox").is_visible()
    assert live_server.count(Submission) == before
    context.set_offline(False)
    page.evaluate("window.fanganOutbox.flush()")
    page.wait_for_function("window.fanganOutbox.count().then(n => n === 0)")
    assert live_server.count(Submission) == before + 1
    page.evaluate("window.fanganOutbox.flush()")  # a second flush sends nothing again
    assert live_server.count(Submission) == before + 1
    context.close()


def test_a_location_found_while_a_slow_refresh_is_on_its_way_is_kept(browser, live_server):
    context, page = _located_chief(browser, live_server)
    held = []

    def hold_refresh(route, request):  # noqa: ANN001
        if request.method == "POST" and request.headers.get("hx-request") and not held:
            held.append(route)  # answered below, after the location is found: a slow network
        else:
            route.continue_()

    page.route("**/f/lidu/patrol_log/new", hold_refresh)
    page.goto(live_server.url + "/f/lidu/patrol_log/new")
    page.get_by_label("巡查情况").fill("老街")
    page.get_by_label("是", exact=True).check()  # asks the server for the form again
    for _ in range(200):
        if held:
            break
        page.wait_for_timeout(50)
    assert held, "the refresh was not sent"
    page.get_by_role("button", name="使用当前位置").click()
    page.get_by_text("已定位").wait_for()
    page.get_by_label("巡查情况").fill("老街北段")
    page.evaluate("document.addEventListener('htmx:afterSettle', () => { window.settled = true; })")
    held[0].continue_()
    page.wait_for_function("() => window.settled === true")
    assert page.locator("#f-problems").is_visible()  # the body the server sent is in place
    assert page.get_by_label("巡查情况").input_value() == "老街北段"
    assert page.locator("[data-geo-lat]").input_value() == "29.771000"
    assert page.locator("[data-geo-lng]").input_value() == "107.244000"
    assert "已定位" in page.locator("[data-geo-status]").inner_text()
    context.close()
