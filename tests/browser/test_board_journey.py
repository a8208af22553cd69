"""The public scans a board: a phone opens the board, reads its QR code and follows it; text stays text."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tests.browser.conftest import phone_context

pytestmark = pytest.mark.browser


def test_board_on_a_phone_and_its_qr_link(browser, live_server):
    import zxingcpp

    context = phone_context(browser, service_workers="block")
    page = context.new_page()
    page.set_default_timeout(10_000)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(live_server.url + "/b/lidu/shilong_old_street")
    assert page.get_by_role("heading", name="石龙老街路长公示牌").is_visible()
    assert page.get_by_text("张三").first.is_visible()
    assert page.get_by_text("<img src=x onerror=alert(1)>每天巡查").is_visible()  # shown as text
    assert not dialogs
    png = page.locator(".qr").screenshot()
    codes = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert len(codes) == 1
    page.goto(codes[0].text)
    assert page.url == live_server.url + "/b/lidu/shilong_old_street"
    assert page.get_by_role("heading", name="石龙老街路长公示牌").is_visible()
    context.close()


def test_the_blue_theme_style_sheet_builds_on_the_default_one(browser, live_server):
    """The blue theme's CSS imports the default's and overrides its colours, under the app's security policy."""
    context = phone_context(browser, service_workers="block")
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.goto(live_server.url + "/b/lidu/shilong_old_street")
    assert page.eval_on_selector(".topbar", "e => getComputedStyle(e).backgroundColor") == "rgb(181, 18, 27)"
    # Swap the page's style sheet for the blue theme's (as a district that chose it is served).
    page.evaluate("""() => new Promise(done => {
        document.querySelector('link[rel=stylesheet]').remove();
        const link = document.createElement('link');
        Object.assign(link, {rel: 'stylesheet', href: '/themes/blue/fangan.css', onload: done});
        document.head.append(link);
    })""")
    page.wait_for_function("getComputedStyle(document.querySelector('.topbar')).display === 'flex'")  # default's rule
    assert page.eval_on_selector(".topbar", "e => getComputedStyle(e).backgroundColor") == "rgb(0, 58, 140)"
    assert page.eval_on_selector(".board-head", "e => getComputedStyle(e).backgroundColor") == "rgb(0, 58, 140)"
    context.close()


def test_the_office_prints_every_board_as_a_job(browser, live_server):
    """公示牌 in the navigation, the print button, the job's page following the work, then the file."""
    from pypdf import PdfReader

    from tests.browser.conftest import logged_in

    context, page = logged_in(browser, live_server, "office")
    page.get_by_role("navigation").get_by_role("link", name="公示牌").click()
    page.get_by_label("尺寸").select_option("a3")
    page.get_by_role("button", name="打印全部公示牌（一个 PDF）").click()
    assert "/jobs/" in page.url and page.get_by_role("heading", name="打印公示牌").is_visible()
    download = page.get_by_role("link", name="下载 boards-lidu-a3.pdf")  # appears when the worker is done
    download.wait_for()
    assert page.get_by_text("已完成。").is_visible()
    response = page.request.get(live_server.url + download.get_attribute("href"))
    assert response.status == 200 and response.headers["content-type"] == "application/pdf"
    assert len(PdfReader(io.BytesIO(response.body())).pages) == 4  # the demo's four roads
    page.get_by_role("link", name="我的任务").click()
    assert page.get_by_role("link", name="打印公示牌").is_visible()
    context.close()
