"""A problem from report to closing, with a failed check and rework; a stale page is refused with a message."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from server.workflow.models import Case
from tests.browser.conftest import logged_in

pytestmark = pytest.mark.browser


def _photo(name: str) -> dict:
    buffer = io.BytesIO()
    Image.new("RGB", (320, 240), "brown").save(buffer, "JPEG")
    return {"name": name, "mimeType": "image/jpeg", "buffer": buffer.getvalue()}


def _as(browser, live, username: str):  # noqa: ANN001, ANN202
    return logged_in(browser, live, username)


def _do(page, case_url: str, action: str) -> None:  # noqa: ANN001
    page.goto(case_url)
    page.get_by_role("link", name=action, exact=True).click()


def test_report_dispatch_rectify_fail_rework_close_and_a_stale_page(browser, live_server):
    url = live_server.url
    reporter_ctx, reporter = _as(browser, live_server, "reporter")
    reporter.goto(url + "/cases/lidu/report")
    reporter.get_by_label("问题类别").select_option("piled_rubbish")
    reporter.get_by_label("所在道路（区域）").select_option("shilong_old_street")
    reporter.get_by_label("问题描述").fill("老街北段垃圾堆积")
    reporter.get_by_label("整改前照片").set_input_files(_photo("before.jpg"))
    reporter.get_by_role("button", name="上报问题").click()
    reporter.wait_for_url(f"{url}/cases/case/*")
    case_url = reporter.url
    case_id = int(case_url.rstrip("/").rsplit("/", 1)[1])
    assert reporter.get_by_text("已发现（待交办）").first.is_visible()

    office_ctx, office = _as(browser, live_server, "office")
    _do(office, case_url, "交办")
    office.get_by_label("承办单位").select_option("shilong")
    office.get_by_role("button", name="交办").click()
    office.wait_for_url(case_url)
    assert office.get_by_text("已交办（整改中）").first.is_visible()

    chief_ctx, chief = _as(browser, live_server, "chief")
    for round_ in (1, 2):
        _do(chief, case_url, "整改完成")
        chief.get_by_label("整改情况").fill(f"第{round_}次清理")
        chief.get_by_label("整改后照片").set_input_files(_photo(f"after{round_}.jpg"))
        chief.get_by_role("button", name="提交整改结果").click()
        chief.wait_for_url(case_url)
        if round_ == 1:
            _do(office, case_url, "核查不通过，返工")
            office.get_by_label("不通过（返工）").check()
            office.get_by_label("核查意见").fill("还有残留")
            office.get_by_role("button", name="提交核查结果").click()
            office.wait_for_url(case_url)
            assert office.get_by_text("返工 1 次").is_visible()

    # Two pages open on the same step: the first closes the case, the second is refused.
    second_ctx, second = _as(browser, live_server, "office")
    _do(office, case_url, "核查通过，销号")
    _do(second, case_url, "核查通过，销号")
    office.get_by_label("通过（销号）").check()
    office.get_by_role("button", name="提交核查结果").click()
    office.wait_for_url(case_url)
    assert office.get_by_text("已销号").first.is_visible()
    # Acting on the stale page (here: answering the verdict, which already asks the server) is refused.
    # (click, not check: the server's answer reloads the page, and the radio is unchecked again by then)
    second.get_by_label("通过（销号）").click()
    second.wait_for_url(case_url)
    assert second.get_by_text("您查看期间案件已有变化").is_visible()
    assert second.get_by_text("Office 于").is_visible()
    with live_server.app.app_context():
        from server.extensions import db

        case = db.session.get(Case, case_id)
        assert case.state == "closed" and case.rework_count == 1
        assert [e.transition for e in case.events] == [None, "assign", "rectify", "rework", "rectify", "close"]
        db.session.remove()
    # before and after photos on the case page, side by side
    assert office.locator(".timeline img").count() >= 2
    assert office.locator(".before-after img").count() == 2
    for context in (reporter_ctx, office_ctx, chief_ctx, second_ctx):
        context.close()


def test_the_category_picker_is_grouped_and_searchable(browser, live_server):
    """The national list and Lidu's own in one picker, by 大类, each problem once; typing narrows it."""
    context, page = _as(browser, live_server, "reporter")
    page.goto(live_server.url + "/cases/lidu/report")
    picker = page.locator("select#category")
    assert picker.locator("optgroup[label='市容环境类事件'] option").count() >= 3
    assert picker.locator("option", has_text="暴露垃圾").count() == 1  # Lidu's, not the list's as well
    search = page.get_by_placeholder("搜索问题类别")
    search.fill("垃圾")
    shown = [t.strip() for t in picker.locator("option:not([hidden])").all_inner_texts() if t.strip()]
    assert "暴露垃圾" in shown and "积存垃圾" in shown and "路灯" not in shown
    assert picker.locator("optgroup[label='公用设施类']").get_attribute("hidden") is not None
    search.fill("")
    assert picker.locator("option", has_text="路灯").evaluate("o => o.hidden") is False
    picker.select_option("piled_rubbish")
    assert picker.input_value() == "piled_rubbish"
    context.close()
