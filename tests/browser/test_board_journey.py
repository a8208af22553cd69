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
