"""Photos on a phone: a 12-megapixel photo is shrunk before it leaves the phone (its EXIF time kept), shown
as a thumbnail at once, and the form says it is sending, with a progress bar, until the record is there."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from server.extensions import db
from server.forms.models import Submission, Upload
from tests.browser.conftest import phone_context
from tests.browser.test_forms_journey import _login

pytestmark = pytest.mark.browser

TAKEN = "2026:11:19 08:30:00"


def _big_photo() -> dict:
    """A 4,000 × 3,000 camera photo with noise (a few MB, as phones make them) and its EXIF capture time."""
    image = Image.merge("RGB", [Image.effect_noise((4000, 3000), 40 + 10 * i) for i in range(3)])
    exif = Image.Exif()
    exif[0x0132] = TAKEN  # DateTime
    exif.get_ifd(0x8769)[0x9003] = TAKEN  # DateTimeOriginal
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=92, exif=exif)
    return {"name": "IMG_0001.jpg", "mimeType": "image/jpeg", "buffer": buffer.getvalue()}


def test_a_big_photo_is_shrunk_shown_and_sent_with_progress(browser, live_server):
    context = phone_context(browser, service_workers="block")
    page = context.new_page()
    page.set_default_timeout(30_000)
    _login(page, live_server)
    before = live_server.count(Submission)
    photo = _big_photo()
    assert len(photo["buffer"]) > 3_000_000
    page.goto(live_server.url + "/f/lidu/patrol_log/new")
    page.get_by_label("巡查区域").select_option("shilong_old_street")
    page.get_by_label("道路或网格").select_option("shilong_old_street_north")
    page.get_by_label("参加人数").fill("2")
    page.get_by_label("巡查情况").fill("拍了一张大照片")
    page.get_by_label("现场照片").set_input_files(photo)
    page.locator("[data-new-thumbs] img").wait_for()  # the thumbnail, at once
    page.locator("[data-new-thumbs]:not([aria-busy])").wait_for()  # shrinking done
    size = page.evaluate("document.querySelector('input[type=file]').files[0].size")
    assert size < len(photo["buffer"]) / 3  # what will be sent is the shrunk photo

    held = []

    def hold_submit(route, request):  # noqa: ANN001
        if request.method == "POST" and not request.headers.get("hx-request") and not held:
            held.append(route)  # a slow network: answered once the page has been looked at
        else:
            route.continue_()

    page.route("**/f/lidu/patrol_log/new", hold_submit)
    page.get_by_role("button", name="提交巡查日志").click()
    page.get_by_role("button", name="正在发送…").wait_for()
    assert page.locator("[data-progress] progress").count() == 1
    for _ in range(100):
        if held:
            break
        page.wait_for_timeout(50)
    held[0].continue_()
    page.wait_for_url(f"{live_server.url}/f/records/*")
    assert page.get_by_text("拍了一张大照片").is_visible()
    assert live_server.count(Submission) == before + 1
    with live_server.app.app_context():
        upload = db.session.scalars(db.select(Upload).order_by(Upload.id.desc())).first()
        assert max(upload.width, upload.height) == 1600 and upload.size < 1_500_000
        assert (upload.evidence or {}).get("taken_at") == "2026-11-19T08:30:00"  # EXIF kept through the shrinking
        db.session.remove()
    context.close()
