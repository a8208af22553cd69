"""PDFs are real: rendered, read back, with a CJK font embedded, and nothing fetched from outside."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader

from server.pdf.engine import CJK_FONTS, RefusedResource, make_fetcher, render_pdf


def embedded_fonts(pdf: bytes) -> set[str]:
    fonts = set()
    for page in PdfReader(io.BytesIO(pdf)).pages:
        for font in (page["/Resources"].get("/Font") or {}).values():
            font = font.get_object()
            fonts.add(str(font.get("/BaseFont", "")))
            for descendant in font.get("/DescendantFonts") or []:
                descriptor = descendant.get_object().get("/FontDescriptor")
                # TrueType outlines (FontFile2) or CFF ones (FontFile3, as Noto CJK's OpenType fonts embed).
                if descriptor is not None and any(descriptor.get_object().get(key) is not None
                                                  for key in ("/FontFile2", "/FontFile3")):
                    fonts.add("embedded:" + str(descendant.get_object().get("/BaseFont", "")))
    return fonts


def test_chinese_prints_with_an_embedded_cjk_font():
    html = '<html><body style="font-family: \'WenQuanYi Micro Hei\'">整改率 按期整改率</body></html>'
    pdf = render_pdf(html)
    text = PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    assert "整改率" in text
    fonts = embedded_fonts(pdf)
    # Without a CJK font Chinese prints as boxes yet the text still extracts: check the font itself.
    assert any(name.replace(" ", "") in font.replace("-", "").replace(" ", "") for font in fonts
               for name in CJK_FONTS), fonts


@pytest.mark.parametrize("url", ["file:///etc/passwd", "http://example.com/x.png", "https://10.0.0.1/a.css",
                                 "/static/../../etc/passwd"])
def test_outside_resources_are_refused(tmp_path, url):
    fetch = make_fetcher({"/static/": tmp_path})
    with pytest.raises(RefusedResource):
        fetch(url)


def test_a_document_pointing_outside_still_renders_without_fetching():
    pdf = render_pdf('<img src="file:///etc/passwd"><link rel="stylesheet" href="http://example.com/x.css"><p>好</p>')
    assert pdf.startswith(b"%PDF")
