"""A citizen scans a board's QR code, reports a problem with a photo on a phone and gets a code; the case
reaches the road's community; the office and the community handle it; the public status page follows it to
solved, and the citizen answers the follow-up."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image

from server.extensions import db
from server.public.models import PublicReport
from tests.browser.conftest import logged_in, phone_context

pytestmark = pytest.mark.browser


def _photo(name: str, colour: str) -> dict:
    buffer = io.BytesIO()
    Image.new("RGB", (640, 480), colour).save(buffer, "JPEG")
    return {"name": name, "mimeType": "image/jpeg", "buffer": buffer.getvalue()}


def _do(page, case_url: str, action: str) -> None:  # noqa: ANN001
    page.goto(case_url)
    page.get_by_role("link", name=action, exact=True).click()


def test_a_report_from_a_boards_qr_code_followed_to_solved(browser, live_server):
    url = live_server.url
    live_server.app.config["FANGAN_MIN_FILL_SECONDS"] = 1
    before = live_server.count(PublicReport)
    citizen_ctx = phone_context(browser)
    citizen = citizen_ctx.new_page()
    citizen.set_default_timeout(20_000)
    errors: list[str] = []
    citizen.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

    # The QR code of the board leads to the board's page; it offers to report a problem on this road.
    citizen.goto(url + "/b/lidu/shilong_old_street")
    citizen.get_by_role("link", name="我要举报").click()
    citizen.wait_for_url(re.compile(r".*/p/lidu/report\?area=shilong_old_street$"))
    assert citizen.locator("select[name='location-area']").input_value() == "shilong_old_street"
    citizen.get_by_label("问题类别").select_option("street_stalls")
    citizen.get_by_label("问题描述").fill("<b>早餐摊</b>占用人行道")
    citizen.get_by_label("现场照片").set_input_files(_photo("stall.jpg", "orange"))
    citizen.get_by_label("电话").fill("13812345678")
    citizen.wait_for_timeout(1100)  # a person takes a moment; a script posting at once is refused
    citizen.get_by_role("button", name="提交举报").click()
    citizen.wait_for_url(re.compile(r".*/p/track/[0-9A-Z]{10}$"))
    code = citizen.url.rsplit("/", 1)[1]
    assert citizen.get_by_text(code).first.is_visible()
    assert citizen.get_by_text("已受理", exact=True).is_visible()
    assert live_server.count(PublicReport) == before + 1
    assert not [e for e in errors if "Content Security Policy" in e], errors

    # The office sees it in the moderation queue (with the phone, to call back) and approves it.
    office_ctx, office = logged_in(browser, live_server, "office")
    office.goto(url + "/moderation/lidu/")
    with live_server.app.app_context():  # the queue shows the report's number, never its tracking code
        number = db.session.scalar(db.select(PublicReport.id).filter_by(code=code))
        db.session.remove()
    card = office.locator("article", has_text=f"举报 #{number}")
    assert "13812345678" in card.inner_text() and code not in card.inner_text()
    card.get_by_label("处理结果").select_option("approved")
    card.get_by_role("button", name="保存").click()
    office.wait_for_url(url + "/moderation/lidu/")

    # The community's inbox has the case; the office assigns it, the community rectifies, the office closes.
    chief_ctx, chief = logged_in(browser, live_server, "chief")
    chief.goto(url + "/cases/lidu/?box=unit")
    chief.locator("table a", has_text="#").first.click()
    chief.wait_for_url(f"{url}/cases/case/*")
    case_url = chief.url
    assert chief.get_by_text("<b>早餐摊</b>占用人行道").is_visible()
    _do(office, case_url, "交办")
    office.get_by_label("承办单位").select_option("shilong")
    office.get_by_role("button", name="交办").click()
    office.wait_for_url(case_url)

    citizen.reload()
    assert citizen.get_by_text("处理中").first.is_visible()
    assert citizen.get_by_text("<b>早餐摊</b>占用人行道").is_visible()  # approved: shown, as text
    citizen.wait_for_function("() => [...document.querySelectorAll('.thumbs img')]"
                              ".some(img => img.complete && img.naturalWidth > 0)")  # the photo loads

    _do(chief, case_url, "整改完成")
    chief.get_by_label("整改情况").fill("已劝离")
    chief.get_by_label("整改后照片").set_input_files(_photo("after.jpg", "grey"))
    chief.get_by_role("button", name="提交整改结果").click()
    chief.wait_for_url(case_url)
    _do(office, case_url, "核查通过，销号")
    office.get_by_label("通过（销号）").check()
    office.get_by_role("button", name="提交核查结果").click()
    office.wait_for_url(case_url)

    # Solved: the status page says so, shows the photo after, and asks the citizen once.
    citizen.reload()
    assert citizen.get_by_text("已解决").first.is_visible()
    assert citizen.locator(".thumbs img").count() == 2
    citizen.get_by_label("问题是否已解决？").select_option("yes")
    citizen.get_by_label("您对处理情况是否满意？").select_option("satisfied")
    citizen.get_by_role("button", name="提交回复").click()
    citizen.wait_for_url(re.compile(r".*/p/track/" + code))
    assert citizen.get_by_text("感谢您的回复。").is_visible()
    assert citizen.get_by_text("您的回复：已解决。").is_visible()
    assert citizen.locator("#followup").count() == 0
    for context in (citizen_ctx, office_ctx, chief_ctx):
        context.close()
