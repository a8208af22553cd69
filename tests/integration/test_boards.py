"""Public notice boards: who is in charge, only public details, escaped text, a PDF with CJK fonts and a QR code,
the printed date, a street's batch, and the theme a district or a board chooses."""

from __future__ import annotations

import datetime as dt
import io
import re
import subprocess
from pathlib import Path

import pytest
from flask import template_rendered
from pypdf import PdfReader

from server.boards import service
from server.definitions.service import activate_scheme_version, load_scheme
from server.extensions import db
from server.jobs.models import Job
from server.org.posts import appoint
from tests.conftest import csrf_token
from tests.support.clock import TODAY
from tests.support.factories import ROOT, demo_files, load_demo, load_shipped, login, make_user
from tests.unit.test_pdf import embedded_fonts

XSS = "<script>alert('x')</script>每天巡查"


def appoint_lidu_chiefs() -> dt.date:
    today = TODAY
    appoint("lidu", "main_leader", "王主任", unit_key="lidu_street", since=today - dt.timedelta(days=60))
    appoint("lidu", "community_head", "李书记", area_key="shilong_town", phone="13800000001",
            since=today - dt.timedelta(days=60))
    appoint("lidu", "segment_keeper", "张三", area_key="shilong_old_street", phone="13900000002",
            duties=[XSS], since=today - dt.timedelta(days=40))
    db.session.commit()
    return today


@pytest.fixture
def chiefs(ctx):
    load_demo()
    return appoint_lidu_chiefs()


def load_lidu_variant(scheme_theme: str = "default", board_theme: str | None = None) -> None:
    """The demo district with another theme chosen by its scheme and/or its board definition."""
    files = dict(demo_files())
    files["schemes/lidu/scheme.yaml"] = files["schemes/lidu/scheme.yaml"].replace("theme: default",
                                                                                  f"theme: {scheme_theme}")
    if board_theme:
        files["schemes/lidu/board.yaml"] += f"theme: {board_theme}\n"
    version, _ = load_scheme(files)
    activate_scheme_version(version.id)
    db.session.commit()


def embedded_cjk(pdf: bytes) -> bool:
    """A CJK font is embedded (its font file in the PDF), not only named: without one Chinese prints as boxes."""
    return any(font.startswith("embedded:") and ("WenQuanYi" in font or "CJK" in font)
               for font in embedded_fonts(pdf))


def colour_pixels(pdf: bytes, tmp_path, rgb: tuple[int, int, int]) -> int:
    """How many pixels of the first page, drawn at 20 dpi, are (nearly) the given colour."""
    from PIL import Image

    (tmp_path / "page.pdf").write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", "20", "-png", "-singlefile", str(tmp_path / "page.pdf"),
                    str(tmp_path / "page")], check=True)
    raw = Image.open(tmp_path / "page.png").convert("RGB").tobytes()
    pixels = (raw[i:i + 3] for i in range(0, len(raw), 3))
    return sum(1 for pixel in pixels if all(abs(a - b) <= 12 for a, b in zip(pixel, rgb, strict=True)))


def printed_line(day: dt.date) -> str:
    """The poster's printed-date line as a visitor reads it (in Chinese: 打印时间 2026-11-23)."""
    from flask import current_app
    from flask_babel import gettext

    with current_app.test_request_context():
        return gettext("Printed %(when)s", when=day.isoformat())


NAVY, RED = (0x00, 0x3A, 0x8C), (0xB5, 0x12, 0x1B)  # the blue theme's band, the default poster's


@pytest.fixture
def rendered(app):
    """The files of the templates rendered during the test, in order."""
    files: list[str] = []

    def record(sender, template, context, **extra):
        files.append(str(Path(template.filename).relative_to(ROOT)))

    template_rendered.connect(record, app)
    yield files
    template_rendered.disconnect(record, app)


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
    assert embedded_cjk(pdf), embedded_fonts(pdf)
    assert printed_line(chiefs) in text  # the date it was printed
    (tmp_path / "board.pdf").write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", "60", "-png", "-singlefile", str(tmp_path / "board.pdf"),
                    str(tmp_path / "board")], check=True)
    codes = zxingcpp.read_barcodes(Image.open(tmp_path / "board.png"))
    assert [c.text for c in codes] == ["http://localhost/b/lidu/shilong_old_street"]
    a3 = PdfReader(io.BytesIO(client.get("/b/lidu/shilong_old_street.pdf?size=a3").data)).pages[0]
    assert round(float(a3.mediabox.width) / 72 * 25.4) == 297


def print_batch(app, client, scheme_key: str = "lidu", **form: str) -> tuple[int, bytes | None]:  # noqa: ANN001
    """Ask for a batch of boards as the list's print form does, let the worker run it, and fetch the file from
    the job's page: (the POST's status, the PDF)."""
    from server.jobs.queue import run_queued

    token = csrf_token(client, f"/b/{scheme_key}/")
    response = client.post(f"/b/{scheme_key}/print", data={"csrf_token": token, **form})
    if response.status_code != 302:
        return response.status_code, None
    job_page = response.headers["Location"]
    assert "/jobs/" in job_page and "正在排队" in client.get(job_page).get_data(as_text=True)
    assert run_queued(app) == 1
    page = client.get(job_page).get_data(as_text=True)
    link = re.search(r'href="(/jobs/\d+/result)"', page)
    assert link, page
    with client.get(link.group(1)) as result:  # a file response: closed here
        assert result.status_code == 200 and result.mimetype == "application/pdf"
        return 302, result.data


def test_batch_pdf_is_for_board_managers(chiefs, app):
    client = app.test_client()
    assert client.post("/b/lidu/print").status_code == 400  # no CSRF token: refused before anything
    make_user("staffer", roles=(("lidu", "staff", "shilong"),))
    login(client, "staffer")
    assert print_batch(app, client)[0] == 403
    admin = app.test_client()
    make_user("root", admin=True)
    login(admin, "root")
    _, pdf = print_batch(app, admin, size="a3")
    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) >= 4  # one poster per road
    assert "石龙老街" in "".join(p.extract_text() for p in reader.pages)
    assert round(float(reader.pages[0].mediabox.width) / 72 * 25.4) == 297
    job = db.session.scalar(db.select(Job).order_by(Job.id.desc()))
    assert client.get(f"/jobs/{job.id}").status_code == 403  # the staffer's eyes: not his job
    with client.get(f"/jobs/{job.id}/result") as refused:
        assert refused.status_code == 403


def test_the_staffs_list_of_boards(chiefs, app, monkeypatch):
    """公示牌 in the section navigation: every board with its page and poster, searched, narrowed to a unit and
    paged; the batch print only for those who may print."""
    client = app.test_client()
    make_user("staffer", roles=(("lidu", "staff", "shilong"),))
    login(client, "staffer")
    page = client.get("/cases/lidu/").get_data(as_text=True)
    assert 'href="/b/lidu/"' in page  # the section navigation
    html = client.get("/b/lidu/").get_data(as_text=True)
    assert all(road in html for road in ("石龙老街", "致远路", "断桥街", "龙桥路"))
    assert 'href="/b/lidu/shilong_old_street.pdf"' in html and "/print" not in html  # staff: no batch print
    assert 'aria-current="page">公示牌' in html
    searched = client.get("/b/lidu/?q=%E8%87%B4%E8%BF%9C").get_data(as_text=True)  # 致远
    assert "致远路" in searched and "石龙老街" not in searched
    narrowed = client.get("/b/lidu/?unit=shilong").get_data(as_text=True)
    assert "石龙老街" in narrowed and "致远路" not in narrowed
    from server.org import service as org_service

    monkeypatch.setattr(org_service, "UNITS_OFFERED", 1)  # a city: the upper level, and the unit chosen
    offered = lambda page: re.findall(r'<option value="(\w+)"', page.split('id="boards-unit"')[1].split("</select>")[0])  # noqa: E731
    city = client.get("/b/lidu/?unit=shilong").get_data(as_text=True)
    assert offered(city) == ["lidu_street", "shilong"] and "此处列出上级单位" in city
    assert "石龙老街" in city and "致远路" not in city
    monkeypatch.setattr(service, "BOARDS_PER_PAGE", 2)
    first, last = client.get("/b/lidu/").get_data(as_text=True), client.get("/b/lidu/?page=99").get_data(as_text=True)
    assert 'rel="next"' in first and 'rel="next"' not in last and 'rel="prev"' in last
    make_user("root", admin=True)
    admin = app.test_client()
    login(admin, "root")
    form = admin.get("/b/lidu/?unit=shilong").get_data(as_text=True)
    assert 'action="/b/lidu/print"' in form and 'name="unit" value="shilong"' in form


def test_unknown_road_is_404(chiefs, client):
    assert client.get("/b/lidu/nowhere").status_code == 404


def test_a_streets_batch_holds_only_its_boards(chiefs, app):
    admin = app.test_client()
    make_user("root", admin=True)
    login(admin, "root")
    _, pdf = print_batch(app, admin, unit="shilong", size="a3")
    reader = PdfReader(io.BytesIO(pdf))
    text = "".join(p.extract_text() for p in reader.pages)
    assert len(reader.pages) == 1 and "石龙老街" in text and "张三" in text
    assert not any(road in text for road in ("致远路", "断桥街", "龙桥路"))  # the other communities' roads
    everything = "".join(p.extract_text() for p in PdfReader(io.BytesIO(print_batch(app, admin)[1])).pages)
    assert all(road in everything for road in ("石龙老街", "致远路", "断桥街", "龙桥路"))


# -- themes -----------------------------------------------------------------------------------------------------

def test_the_district_theme_styles_its_board_page_and_poster(ctx, client, rendered, tmp_path):
    load_lidu_variant(scheme_theme="blue")
    today = appoint_lidu_chiefs()
    page = client.get("/b/lidu/shilong_old_street").get_data(as_text=True)
    assert 'href="/themes/blue/fangan.css"' in page and "张三" in page
    # The theme has no board page nor base layout of its own: both come from the default theme.
    assert rendered == ["server/boards/templates/boards/board.html"] and '<header class="topbar">' in page
    with client.get("/themes/blue/fangan.css") as css:  # a file response: closed here, not left to the collector
        style = css.get_data(as_text=True)
        assert css.status_code == 200 and "#003a8c" in style and '@import url("../default/fangan.css")' in style
    with client.get("/themes/default/fangan.css") as css:
        assert css.status_code == 200
    assert client.get("/themes/blue/missing.css").status_code == 404
    assert client.get("/themes/nothere/fangan.css").status_code == 404
    rendered.clear()
    response = client.get("/b/lidu/shilong_old_street.pdf?size=a3")
    assert response.status_code == 200
    # The theme's own poster, extending the default one; its macros fall back to the default's.
    assert rendered == ["themes/blue/templates/boards/poster.html"]
    pdf = response.data
    text = PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    assert "张三" in text and "王主任" in text and printed_line(today) in text
    assert embedded_cjk(pdf), embedded_fonts(pdf)
    assert colour_pixels(pdf, tmp_path, NAVY) > 100 and colour_pixels(pdf, tmp_path, RED) == 0


def test_the_default_theme_prints_in_red(chiefs, client, rendered, tmp_path):
    page = client.get("/b/lidu/shilong_old_street").get_data(as_text=True)
    assert 'href="/themes/default/fangan.css"' in page  # Lidu names the default theme
    pdf = client.get("/b/lidu/shilong_old_street.pdf?size=a3").data
    assert rendered[-1] == "server/boards/templates/boards/poster.html"
    assert colour_pixels(pdf, tmp_path, RED) > 100 and colour_pixels(pdf, tmp_path, NAVY) == 0


def test_a_board_definition_chooses_its_own_theme(ctx, app, client, rendered):
    load_lidu_variant(scheme_theme="default", board_theme="blue")
    appoint_lidu_chiefs()
    assert 'href="/themes/blue/fangan.css"' in client.get("/b/lidu/zhiyuan_road").get_data(as_text=True)
    admin = app.test_client()
    make_user("root", admin=True)
    login(admin, "root")
    rendered.clear()
    print_batch(app, admin, size="a3")
    posters = [name for name in rendered if name.endswith("poster.html")]
    assert posters == ["themes/blue/templates/boards/poster.html"]  # the batch prints in its boards' theme


def test_a_shipped_district_uses_the_blue_theme(ctx, client):
    load_shipped("luzhang")
    appoint("luzhang", "second_chief_community", "刘社区", area_key="renmin_road")
    db.session.commit()
    page = client.get("/b/luzhang/renmin_road").get_data(as_text=True)
    assert 'href="/themes/blue/fangan.css"' in page and "刘社区" in page


def test_other_pages_keep_the_site_theme(chiefs, client):
    assert 'href="/theme/fangan.css"' in client.get("/login").get_data(as_text=True)
