"""Small PDF files made in memory for upload tests: plain, with a script, with an attached file, and packed
into a compressed object stream (where a byte search of the file would not see the names)."""

from __future__ import annotations

import io
import zlib

from pypdf import PdfWriter
from pypdf.actions import JavaScript


def _written(writer: PdfWriter) -> bytes:
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def _one_page() -> PdfWriter:
    writer = PdfWriter()
    writer.add_blank_page(200, 100)
    return writer


def plain_pdf() -> bytes:
    return _written(_one_page())


def pdf_with_javascript() -> bytes:
    """A PDF whose opening runs a script (the document-level /JavaScript name tree)."""
    writer = _one_page()
    writer.add_open_action(JavaScript("app.alert('hello');"))
    return _written(writer)


def pdf_with_attachment() -> bytes:
    """A PDF carrying another file (/EmbeddedFiles, /EmbeddedFile)."""
    writer = _one_page()
    writer.add_attachment("setup.exe", b"MZ\x90\x00 not really a program")
    return _written(writer)


def packed_pdf(open_action: bytes, page: bytes = b"") -> bytes:
    """A PDF 1.5 whose catalogue and open action sit in a Flate-compressed object stream, found through a
    compressed cross-reference stream; `open_action` is the action object, e.g. `<< /S /J#61vaScript … >>`,
    and `page` more entries for the page's dictionary."""
    objects = {
        1: b"<< /Type /Catalog /Pages 2 0 R /OpenAction 4 0 R >>",
        2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        3: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 100] " + page + b" >>",
        4: open_action,
    }
    packed = (1, 4)
    stream_no, xref_no = 5, 6
    entries: dict[int, tuple[int, int, int]] = {}  # number -> (type, field 2, field 3) of its xref entry
    header, data = [], b""
    for index, number in enumerate(packed):
        header.append(f"{number} {len(data)}".encode())
        data += objects[number] + b"\n"
        entries[number] = (2, stream_no, index)
    first = b" ".join(header) + b"\n"
    content = zlib.compress(first + data)
    body = b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\n"
    for number in (2, 3):
        entries[number] = (1, len(body), 0)
        body += f"{number} 0 obj\n".encode() + objects[number] + b"\nendobj\n"
    entries[stream_no] = (1, len(body), 0)
    body += (f"{stream_no} 0 obj\n<< /Type /ObjStm /N {len(packed)} /First {len(first)} /Filter /FlateDecode "
             f"/Length {len(content)} >>\nstream\n").encode() + content + b"\nendstream\nendobj\n"
    entries[xref_no] = (1, len(body), 0)
    rows = bytes([0, 0, 0, 0, 0, 0xFF, 0xFF]) + b"".join(
        bytes([kind]) + a.to_bytes(4, "big") + b.to_bytes(2, "big")
        for kind, a, b in (entries[n] for n in range(1, xref_no + 1)))
    xref = zlib.compress(rows)
    body += (f"{xref_no} 0 obj\n<< /Type /XRef /Size {xref_no + 1} /W [1 4 2] /Root 1 0 R /Filter /FlateDecode "
             f"/Length {len(xref)} >>\nstream\n").encode() + xref + b"\nendstream\nendobj\n"
    return body + f"startxref\n{entries[xref_no][1]}\n%%EOF\n".encode()
