"""Public notice boards: who is in charge, only public details, escaped text, a PDF with CJK fonts and a QR code."""

from __future__ import annotations

import datetime as dt
import io
import subprocess

import pytest
from pypdf import PdfReader

from server.boards import service
from server.extensions import db
from server.org.posts import appoint
from tests.support.factories import load_demo, login, make_user
from tests.unit.test_pdf import embedded_fonts

XSS = "<script>alert('x')</script>每天巡查"


@pytest.fixture
def chiefs(ctx):
    load_demo()
    today = dt.date.today()
    appoint("lidu", "main_leader", "王主任", unit_key="lidu_street", since=today - dt.timedelta(days=60))
    appoint("lidu", "community_head", "李书记", area_key="shilong_town", phone="13800000001",
            since=today - dt.timedelta(days=60))
    appoint("lidu", "segment_keeper", "张三", area_key="shilong_old_street", phone="13900000002",
            duties=[XSS], since=today - dt.timedelta(days=40))
    db.session.commit()
    return today


def test_public_board_page(chiefs, client):
    response = client.get("/b/lidu/shilong_old_street")
    page = response.get_data(as_text=True)
    assert response.status_code == 200  # no login
    assert "石龙老街路长公示牌" in page and "石龙桥头" in page
    assert "王主任" in page and "李书记" in page and "张三" in page
    assert "13900000002" in page  # the segment keeper's phone is public in the scheme
    assert "13800000001" not in page  # the community head's is not
    assert "<script>alert" not in page and "&lt;script&gt;alert" in page
    assert "<svg" in page  # the QR code


def test_a_change_of_chief_keeps_history(chiefs, client):
    appoint("lidu", "segment_keeper", "赵六", area_key="shilong_old_street", since=chiefs - dt.timedelta(days=10))
    db.session.commit()
    area = service.get_area("lidu", "shilong_old_street")
    names = lambda on: [c["name"] for r in service.board_for("lidu", area, on)["rows"] for c in r["chiefs"]]  # noqa: E731
    assert "赵六" in names(chiefs) and "张三" not in names(chiefs)
    assert "张三" in names(chiefs - dt.timedelta(days=20)) and "赵六" not in names(chiefs - dt.timedelta(days=20))
    # The page and the poster of a past day show who was in charge then.
    past = (chiefs - dt.timedelta(days=20)).isoformat()
    page = client.get(f"/b/lidu/shilong_old_street?on={past}").get_data(as_text=True)
    assert "张三" in page and "赵六" not in page and past in page
    now = client.get("/b/lidu/shilong_old_street").get_data(as_text=True)
    assert "赵六" in now and "张三" not in now
    assert client.get("/b/lidu/shilong_old_street?on=not-a-date").status_code in (200, 400)


def test_printed_board_pdf_text_fonts_and_qr(chiefs, client, tmp_path):
    import zxingcpp
    from PIL import Image

    response = client.get("/b/lidu/shilong_old_street.pdf?size=standard")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    pdf = response.data
    page = PdfReader(io.BytesIO(pdf)).pages[0]
    millimetres = (round(float(page.mediabox.width) / 72 * 25.4), round(float(page.mediabox.height) / 72 * 25.4))
    assert millimetres == (600, 900)
    text = page.extract_text()
    assert "张三" in text and "每天巡查" in text and "王主任" in text
    assert any("WenQuanYi" in font or "CJK" in font for font in embedded_fonts(pdf))
    (tmp_path / "board.pdf").write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", "60", "-png", "-singlefile", str(tmp_path / "board.pdf"),
                    str(tmp_path / "board")], check=True)
    codes = zxingcpp.read_barcodes(Image.open(tmp_path / "board.png"))
    assert [c.text for c in codes] == ["http://localhost/b/lidu/shilong_old_street"]
    a3 = PdfReader(io.BytesIO(client.get("/b/lidu/shilong_old_street.pdf?size=a3").data)).pages[0]
    assert round(float(a3.mediabox.width) / 72 * 25.4) == 297


def test_batch_pdf_is_for_board_managers(chiefs, app):
    client = app.test_client()
    assert client.get("/b/lidu/all.pdf").status_code == 302  # login first
    make_user("staffer", roles=(("lidu", "staff", "shilong"),))
    login(client, "staffer")
    assert client.get("/b/lidu/all.pdf").status_code == 403
    admin = app.test_client()
    make_user("root", admin=True)
    login(admin, "root")
    pdf = admin.get("/b/lidu/all.pdf?size=a3").data
    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) >= 4  # one poster per road
    assert "石龙老街" in "".join(p.extract_text() for p in reader.pages)


def test_unknown_road_is_404(chiefs, client):
    assert client.get("/b/lidu/nowhere").status_code == 404
