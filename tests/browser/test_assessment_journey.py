"""An assessment in the browser: the office opens October, an assessor enters a manual item with an evidence
photo, the office publishes (a job, followed on its page), the bulletin PDF (a job too) shows the ranking and a
chart, and a later correction makes a new revision while the published one stays readable."""

from __future__ import annotations

import io

import pypdf
import pytest
from PIL import Image

from tests.browser.conftest import logged_in

pytestmark = pytest.mark.browser


def _photo() -> dict:
    buffer = io.BytesIO()
    Image.new("RGB", (640, 480), "purple").save(buffer, "JPEG")
    return {"name": "evidence.jpg", "mimeType": "image/jpeg", "buffer": buffer.getvalue()}


def _as(browser, live, username: str):  # noqa: ANN001, ANN202
    return logged_in(browser, live, username)


def test_assess_publish_bulletin_and_correct(browser, live_server):
    url = live_server.url
    office_ctx, office = _as(browser, live_server, "office")
    office.get_by_role("link", name="考核").first.click()
    office.get_by_label("考核评分表").select_option("lidu_monthly")
    office.get_by_label("考核期内的任一日期").fill("2026-10-01")
    office.get_by_role("button", name="打开").click()
    office.wait_for_url(f"{url}/assess/period/*")
    period_url = office.url
    shilong = office.locator("tr", has_text="石龙社区")
    assert "90.00" in shilong.inner_text()  # no campaign −5, no hot-spot case −5

    assessor_ctx, assessor = _as(browser, live_server, "assessor")
    assessor.goto(period_url)
    assessor.locator("tr", has_text="石龙社区").get_by_role("link", name="未建立工作机制（是填1，否填0）").click()
    assessor.get_by_label("未建立工作机制（是填1，否填0）").fill("1")
    assessor.get_by_label("理由").fill("现场检查未见长效机制制度文件")
    assessor.get_by_label("佐证照片").set_input_files(_photo())
    assessor.get_by_role("button", name="保存").click()
    assessor.wait_for_url(period_url)
    assert "85.00" in assessor.locator("tr", has_text="石龙社区").inner_text()

    office.goto(period_url)
    office.get_by_label("立即发布并结束申诉期").check()  # no appeals were opened: publish anyway
    # Only Shilong has its hand-entered mark: published now, the results are provisional, and the page says so.
    assert "手工填报的分值" in office.get_by_test_id("unfinished").inner_text()
    office.get_by_label("我已知晓：将这些分数作为暂定结果发布").check()
    asked: list[str] = []
    office.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    office.get_by_role("button", name="发布").click()  # publishing asks first: the office says yes
    # Publishing is a job: its page follows it, says what it did and leads back to the period.
    office.wait_for_url(f"{url}/jobs/*")
    assert asked and "不可更改" in asked[0]
    office.get_by_text("已发布为暂定结果（第1版）。").wait_for()  # when the worker is done
    office.get_by_role("link", name="返回考核期").click()
    office.wait_for_url(period_url)
    assert office.locator(".provisional").first.is_visible()
    office.get_by_role("link", name="通报").click()
    office.wait_for_url(f"{url}/assess/period/*/bulletin*")
    # ECharts (vendored) replaces the server-drawn SVG on the page; the PDF keeps the SVG.
    office.locator(".chart-box[data-drawn='echarts'] svg").first.wait_for()
    assert "石龙社区" in office.locator("section.group").first.inner_text()
    office.get_by_role("button", name="PDF").click()  # drawn by a job, whose page then offers the file
    office.wait_for_url(f"{url}/jobs/*")
    download = office.get_by_role("link", name="下载 bulletin-lidu_monthly-2026-10-r1.pdf")
    download.wait_for()
    pdf = office.request.get(url + download.get_attribute("href"))
    assert pdf.ok and pdf.headers["content-type"] == "application/pdf"
    text = "".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf.body())).pages).replace(" ", "")
    assert "石龙社区" in text and "85.00" in text and text.replace("\n", "").count("场镇所在社区") >= 2

    # A correction: the office's marks on a published period publish revision 2; revision 1 stays readable.
    office.goto(period_url)
    office.locator("tr", has_text="石龙社区").get_by_role("link", name="更正 领导有力").click()
    office.locator("input[name='r_not_in_place']").fill("1")
    office.get_by_label("理由").fill("复核发现巡查资料缺失")
    office.get_by_role("button", name="保存").click()  # the district published again: a job, then back
    office.wait_for_url(f"{url}/jobs/*")
    office.get_by_text("已更正，并已发布（第2版）。").wait_for()
    office.get_by_role("link", name="返回考核期").click()
    office.wait_for_url(period_url)
    assert "83.00" in office.locator("tr", has_text="石龙社区").inner_text()
    assert office.get_by_text("复核发现巡查资料缺失").first.is_visible()
    office.get_by_role("link", name="第1版").click()
    assert "85.00" in office.locator("tr", has_text="石龙社区").inner_text()
    for context in (office_ctx, assessor_ctx):
        context.close()


def test_an_assessor_marks_every_unit_in_one_grid(browser, live_server):
    url = live_server.url
    office_ctx, office = _as(browser, live_server, "office")
    office.get_by_role("link", name="考核").first.click()
    office.get_by_label("考核评分表").select_option("lidu_monthly")
    office.get_by_label("考核期内的任一日期").fill("2026-09-01")
    office.get_by_role("button", name="打开").click()
    office.wait_for_url(f"{url}/assess/period/*")
    period_url = office.url

    assessor_ctx, assessor = _as(browser, live_server, "assessor")
    assessor.goto(period_url)
    assessor.get_by_role("link", name="批量打分（所有单位）").click()
    assessor.wait_for_url("**/marks")
    row = assessor.locator("tr", has_text="石龙社区")
    total = row.locator("td.total")
    assert total.inner_text().strip() == "0"
    row.locator("input.mark").first.fill("1")
    row.locator("td.total", has_text="−").wait_for()  # worked out by the server as it is typed
    row.get_by_role("textbox").last.fill("现场检查未见长效机制制度文件")
    assessor.get_by_role("button", name="全部保存").click()
    assessor.get_by_text("已保存").wait_for()
    assert row.locator("input.mark").first.input_value() == "1"
    for context in (office_ctx, assessor_ctx):
        context.close()
