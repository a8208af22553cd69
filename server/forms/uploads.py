"""Checking, cleaning and storing uploaded photos and PDFs.

Everything here judges a file by its bytes, never by its name. Images are size-checked from their header
before Pillow decodes anything, decoded fully to catch damage, turned upright, downscaled and re-encoded
without any metadata; the EXIF location and capture time are read out first as evidence. A PDF is refused
when any of its objects carries JavaScript, self-running actions or embedded files.

A store given a database session removes again the files it wrote for a transaction that does not commit
(rolled back, a savepoint rolled back, or closed without a commit), and `FileStore.files` lists what is on
disk for the sweep of files no row refers to. No Flask; of the database this module knows only the session's
transaction events. No global state is changed, so it is safe to call from several threads.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import re
import secrets
import struct
import tempfile
import time
import unicodedata
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from io import BytesIO
from pathlib import Path
from typing import Any

from PIL import (
    GifImagePlugin,  # noqa: F401  (importing registers the format now, so Image.open never runs init() concurrently)
    Image,
    ImageCms,
    JpegImagePlugin,  # noqa: F401
    PngImagePlugin,  # noqa: F401
    WebPImagePlugin,  # noqa: F401
)
from pypdf import PdfReader
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, NameObject
from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from ..core.transactions import within_transaction

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_PIXELS",
    "MAX_SIDE_STORED",
    "CheckedFile",
    "FileStore",
    "StoredFile",
    "UploadRejected",
    "check_upload",
    "clean_filename",
    "extract_evidence",
    "make_thumbnail",
]

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_MAX_PIXELS = 40_000_000  # width*height
MAX_SIDE_STORED = 2560  # images larger than this on the long side are downscaled when re-encoded

JPEG_QUALITY = 85
THUMBNAIL_QUALITY = 80
MAX_NAME_LENGTH = 200
# PDF readers look for the trailer within the last 1024 bytes; so do we.
PDF_TAIL = 1024

_MESSAGES: dict[str, str] = {
    "empty": "The file is empty.",
    "too_large": "The file is larger than {max_mb} MB.",
    "not_allowed_type": "This kind of file is not allowed here (allowed: {allowed}).",
    "not_an_image": "The file is not a supported image (JPEG, PNG, WebP or GIF).",
    "too_many_pixels": "The image is too large ({width}x{height} pixels; at most {max_megapixels} megapixels).",
    "damaged": "The file is damaged or incomplete.",
    "pdf_invalid": "The PDF file is damaged or incomplete.",
    "pdf_locked": "The PDF is protected by a password.",
    "pdf_script": "The PDF contains JavaScript or actions that run by themselves.",
    "pdf_embedded": "The PDF carries embedded files, media or a program to start.",
}
_GENERIC_MESSAGE = "The file was refused."

_ACCEPT_KINDS = frozenset({"image", "pdf"})
_EXTENSIONS = frozenset({"jpg", "png", "pdf"})
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
# What the store writes under its root: <sha[:2]>/<sha[2:4]>/<sha>.<ext>, and next to it, for a moment, the
# temporary files of a write (.tmp-) and of a removal (.gone-); those are left behind only by a crash.
_STORED_RE = re.compile(
    r"[0-9a-f]{2}/[0-9a-f]{2}/(?:[0-9a-f]{64}\.(?:jpg|png|pdf)|\.(?:tmp|gone)-[A-Za-z0-9_.-]{1,64})")
_HEX2_RE = re.compile(r"[0-9a-f]{2}")

log = logging.getLogger(__name__)

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers carry the size; C4 (DHT), C8 (JPG) and CC (DAC) share the range but do not.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length field.
_JPEG_STANDALONE = frozenset({0x01, 0xD8, *range(0xD0, 0xD8)})

_TAG_ORIENTATION = 0x0112
_TAG_MAKE = 0x010F
_TAG_MODEL = 0x0110
_TAG_DATETIME = 0x0132
_TAG_DATETIME_ORIGINAL = 0x9003
_IFD_EXIF = 0x8769
_IFD_GPS = 0x8825
_DATETIME_RE = re.compile(r"\s*(\d{4})[:-](\d{2})[:-](\d{2})[ T](\d{2}):(\d{2}):(\d{2})")


class _Params(dict):
    def __missing__(self, key: str) -> str:
        return "?"


class UploadRejected(ValueError):
    """An upload refused for a reason the user can act on; `code` names the reason, `params` fill the message."""

    def __init__(self, code: str, **params: Any) -> None:
        self.code = code
        self.params: dict[str, Any] = params
        # A missing parameter shows as "?" rather than crashing while a refusal is being reported.
        message = _MESSAGES.get(code, _GENERIC_MESSAGE).format_map(_Params(params))
        super().__init__(message)


@dataclass(frozen=True)
class CheckedFile:
    """A checked upload, ready to store: cleaned bytes plus what was learnt about them."""

    data: bytes
    mime: str
    extension: str
    sha256: str
    width: int | None
    height: int | None
    original_name: str
    evidence: dict = field(default_factory=dict)


# --------------------------------------------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------------------------------------------


def check_upload(
    raw: bytes,
    filename: str,
    *,
    accept: Collection[str] = ("image",),
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> CheckedFile:
    """Check an uploaded file by its content and return it cleaned, or raise UploadRejected."""
    kinds = frozenset(accept)
    if not kinds or not kinds <= _ACCEPT_KINDS:
        raise ValueError(f"accept must be a non-empty subset of {sorted(_ACCEPT_KINDS)}, not {sorted(kinds)}")
    # Sizes first, before copying anything.
    if len(raw) == 0:
        raise UploadRejected("empty")
    if len(raw) > max_bytes:
        raise UploadRejected("too_large", max_mb=_megabytes(max_bytes))
    raw = bytes(raw)

    allowed = _describe_allowed(kinds)
    if raw.startswith(b"%PDF-"):
        if "pdf" not in kinds:
            raise UploadRejected("not_allowed_type", allowed=allowed)
        return _check_pdf(raw, filename)

    fmt = _sniff_image(raw)
    if fmt is None:
        # Not something we can even look at: say "not an image" only where an image would have been welcome.
        raise UploadRejected("not_an_image" if "image" in kinds else "not_allowed_type", allowed=allowed)
    if "image" not in kinds:
        raise UploadRejected("not_allowed_type", allowed=allowed)
    return _check_image(raw, fmt, filename, max_pixels)


def make_thumbnail(data: bytes, size: int = 320) -> bytes:
    """Return a JPEG thumbnail of a stored image, at most `size` pixels on the long side."""
    if size < 1:
        raise ValueError("size must be positive")
    data = bytes(data)
    fmt = _sniff_image(data)
    if fmt is None:
        raise UploadRejected("not_an_image")
    img, _exif = _decode(data, fmt, DEFAULT_MAX_PIXELS, shrink_to=size)
    thumb = _flatten_to_rgb(_to_8bit(img))
    thumb.thumbnail((size, size), Image.Resampling.BICUBIC)
    thumb.info = {}
    out = BytesIO()
    thumb.save(out, "JPEG", quality=THUMBNAIL_QUALITY, optimize=True)
    return out.getvalue()


@dataclass(frozen=True)
class StoredFile:
    """A file found under the store's root."""

    relative: str  # POSIX path below the root
    size: int
    modified: float  # POSIX time of the last write or claim
    sha256: str | None = None  # None for the leftover of an interrupted write or removal
    extension: str | None = None


class FileStore:
    """Content-addressed files under a root folder: <root>/<sha[:2]>/<sha[2:4]>/<sha>.<ext>.

    Writes are atomic (temp file, then a hard link that never replaces); saving the same content twice stores it
    once. Saving content that is already there *claims* it: its modification time moves to now, which tells a
    rollback or a sweep that is about to remove it that someone wants it after all. With a `session`, the files
    this store writes are removed again if the session's transaction (or savepoint) they were written in does not
    commit.
    """

    # Group-readable so a front web server in the same group can serve files; never world-readable (evidence).
    FILE_MODE = 0o640

    def __init__(self, root: Path, session: Session | None = None) -> None:
        self.root = Path(root)
        self.session = session

    def relative_path(self, sha256: str, extension: str) -> str:
        """Return the POSIX path of a file relative to the root, after validating the name parts."""
        if not isinstance(sha256, str) or not _SHA256_RE.fullmatch(sha256):
            raise ValueError("not a SHA-256 hex digest")
        if extension not in _EXTENSIONS:
            raise ValueError(f"extension must be one of {sorted(_EXTENSIONS)}")
        return f"{sha256[:2]}/{sha256[2:4]}/{sha256}.{extension}"

    def path(self, sha256: str, extension: str) -> Path:
        """Return the absolute path for a digest and extension; refuses anything else (no traversal)."""
        return self.root.joinpath(*self.relative_path(sha256, extension).split("/"))

    def save(self, checked: CheckedFile) -> str:
        """Store a checked file under its hash (or claim the copy already there); return its relative path."""
        if hashlib.sha256(checked.data).hexdigest() != checked.sha256:
            # Content addressing only works if the name really is the hash of what is written.
            raise ValueError("sha256 does not match the data")
        relative = self.relative_path(checked.sha256, checked.extension)
        target = self.path(checked.sha256, checked.extension)
        # Twice at most: a copy removed between our look and our claim is written again; a copy another request
        # wrote between our look and our write is claimed.
        for _attempt in range(3):
            stamp = _claim(target)
            if stamp is not None:
                _note_claim(self.session, self.root, relative, stamp)
                return relative
            stamp = self._create(target, checked)
            if stamp is not None:
                _note_written(self.session, self.root, relative, stamp)
                return relative
        raise OSError(f"could not store {relative}: it keeps appearing and disappearing")

    def read(self, sha256: str, extension: str) -> bytes:
        """Return the stored bytes (FileNotFoundError if absent)."""
        return self.path(sha256, extension).read_bytes()

    def files(self) -> Iterator[StoredFile]:
        """Every file of the store's layout under the root, leftovers of interrupted writes included; anything
        else found there is not the store's and is not listed."""
        for first in _hex_folders(self.root):
            for second in _hex_folders(first):
                with os.scandir(second) as entries:
                    for entry in entries:
                        relative = f"{first.name}/{second.name}/{entry.name}"
                        if not _STORED_RE.fullmatch(relative) or not entry.is_file(follow_symlinks=False):
                            continue
                        try:
                            stat = entry.stat(follow_symlinks=False)
                        except FileNotFoundError:
                            continue  # removed while we looked
                        named = not entry.name.startswith(".")
                        sha256, _dot, extension = entry.name.partition(".")
                        yield StoredFile(relative, stat.st_size, stat.st_mtime,
                                         sha256 if named else None, extension if named else None)

    def discard(self, relative: str, keep: Callable[[os.stat_result], bool] | None = None) -> int | None:
        """Remove a file of the store unless `keep(its stat)` says it was claimed meanwhile; return the bytes
        freed, or None when it was kept or already gone.

        The file is renamed aside before it is judged, so a save claiming it at that moment either touched it
        before the rename (then it is seen here and put back) or finds it gone and writes it again.
        """
        if not _STORED_RE.fullmatch(relative):
            raise ValueError("not a path of this store")
        target = self.root.joinpath(*relative.split("/"))
        aside = target.with_name(f".gone-{secrets.token_hex(8)}")
        try:
            os.rename(target, aside)
            stat = os.stat(aside)
        except FileNotFoundError:  # already gone (a sweep running at the same time)
            return None
        if keep is not None and keep(stat):
            _put_back(aside, target)
            return None
        os.unlink(aside)
        return stat.st_size

    def _create(self, target: Path, checked: CheckedFile) -> int | None:
        """Write a new file; its modification time (ns), or None when another save made it first."""
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=f".{checked.extension}")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(checked.data)
                fh.flush()
                os.fsync(fh.fileno())
                stamp = os.fstat(fh.fileno()).st_mtime_ns
            os.chmod(tmp_name, self.FILE_MODE)
            # Atomic: readers see either no file or the whole file. A link never replaces: had a twin request
            # written the same bytes a moment ago, replacing its file would let its rollback remove ours.
            try:
                os.link(tmp_name, target)
            except FileExistsError:
                return None
            except OSError:  # a file system without hard links
                os.replace(tmp_name, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
        return stamp


def _claim(target: Path) -> int | None:
    """Mark an existing file as wanted now (a later modification time); its new time (ns), or None if absent."""
    try:
        before = os.stat(target)
        os.utime(target, ns=(before.st_atime_ns, max(time.time_ns(), before.st_mtime_ns + 1)))
        return os.stat(target).st_mtime_ns
    except FileNotFoundError:
        return None
    except PermissionError:  # another user's file (copied in by hand): there all the same, only not marked
        return before.st_mtime_ns


def _put_back(aside: Path, target: Path) -> None:
    try:
        os.link(aside, target)
    except FileExistsError:
        pass  # written again meanwhile: the same bytes
    except OSError:  # a file system without hard links
        os.replace(aside, target)
        return
    os.unlink(aside)


def _hex_folders(folder: Path) -> list[Path]:
    try:
        with os.scandir(folder) as entries:
            return sorted(Path(e.path) for e in entries
                          if _HEX2_RE.fullmatch(e.name) and e.is_dir(follow_symlinks=False))
    except FileNotFoundError:
        return []


# --------------------------------------------------------------------------------------------------------------
# Files and the transaction they were written for
# --------------------------------------------------------------------------------------------------------------

_WRITTEN = "fangan_files_written"  # in Session.info: [_Written], files this session's open transactions wrote


@dataclass
class _Written:
    transaction: SessionTransaction  # the innermost transaction (a savepoint's, or the whole one) it was written in
    root: Path
    relative: str
    stamp: int  # its modification time (ns) as written, or as this session last claimed it


def _note_written(session: Session | None, root: Path, relative: str, stamp: int) -> None:
    if session is None:
        return
    transaction = session.get_nested_transaction() or session.get_transaction() or session.begin()
    session.info.setdefault(_WRITTEN, []).append(_Written(transaction, root, relative, stamp))


def _note_claim(session: Session | None, root: Path, relative: str, stamp: int) -> None:
    """The same content saved again in this session (two copies of one photo): still ours to remove."""
    for written in session.info.get(_WRITTEN, ()) if session is not None else ():
        if written.relative == relative and written.root == root:
            written.stamp = stamp


def _remove_written(written: list[_Written]) -> None:
    for item in written:
        try:
            # Claimed since (a later time): another request stored the same bytes and may commit a row for them.
            FileStore(item.root).discard(item.relative, keep=lambda stat, s=item.stamp: stat.st_mtime_ns != s)
        except OSError as exc:  # never mask the error that caused the rollback; the sweep finds it later
            log.warning("could not remove %s of a transaction that did not commit: %s", item.relative, exc)


@event.listens_for(Session, "after_commit")
def _files_committed(session: Session) -> None:
    if not session.in_nested_transaction():  # a savepoint released: its files wait for the real commit
        session.info.pop(_WRITTEN, None)


@event.listens_for(Session, "after_soft_rollback")
def _files_rolled_back(session: Session, previous_transaction: SessionTransaction) -> None:
    if not session.info.get(_WRITTEN):
        return
    kept: list[_Written] = []
    gone: list[_Written] = []
    for written in session.info[_WRITTEN]:
        (gone if within_transaction(written.transaction, previous_transaction) else kept).append(written)
    session.info[_WRITTEN] = kept
    _remove_written(gone)


@event.listens_for(Session, "after_transaction_end")
def _files_left(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # over, and not by a commit (that emptied the list): closed or rolled back
        _remove_written(session.info.pop(_WRITTEN, None) or [])


# --------------------------------------------------------------------------------------------------------------
# PDF
# --------------------------------------------------------------------------------------------------------------


# Names that make a PDF act on its own or carry other files, looked for as dictionary keys and as name values in
# every object (those packed in compressed object streams too), after the parser has decoded #xx escapes — so
# /J#53 is /JS. An /OpenAction that only opens a page is fine; one that runs a script names /JavaScript or /JS.
# /AA: actions run on opening a page or entering a field; /XFA: forms that carry their own scripts; /SubmitForm
# and /ImportData send or read data. An /OpenAction runs on opening: only going to a page (/GoTo) is accepted,
# never a web address, a remote file (/GoToR to a network share leaks a Windows login) or anything else.
# Links a reader must click (/URI in a link annotation) are fine.
_PDF_SCRIPT = frozenset({"/JS", "/JavaScript", "/AA", "/XFA", "/SubmitForm", "/ImportData"})
_PDF_EMBEDDED = frozenset({"/EmbeddedFile", "/EmbeddedFiles", "/EF", "/FileAttachment", "/RichMedia", "/Launch",
                           "/Sound", "/Movie"})


def _check_pdf(raw: bytes, filename: str) -> CheckedFile:
    if b"%%EOF" not in raw[-PDF_TAIL:]:
        # Truncated upload or not really a PDF; either way no reader will open it.
        raise UploadRejected("pdf_invalid")
    reader = _open_pdf(raw)
    try:
        found = _pdf_active_content(reader)
    except MemoryError:
        raise
    except Exception:  # any parser failure on untrusted bytes: what cannot be checked is not accepted
        raise UploadRejected("pdf_invalid") from None
    if found is not None:
        raise UploadRejected(found)
    return CheckedFile(
        data=raw,
        mime="application/pdf",
        extension="pdf",
        sha256=hashlib.sha256(raw).hexdigest(),
        width=None,
        height=None,
        original_name=clean_filename(filename, "pdf"),
        evidence={},
    )


def _open_pdf(raw: bytes) -> PdfReader:
    """Parse the PDF's structure (leniently, as readers do); a file locked by a password is refused."""
    try:
        reader = PdfReader(BytesIO(raw), strict=False)
        encrypted = reader.is_encrypted
    except MemoryError:
        raise
    except Exception:
        raise UploadRejected("pdf_invalid") from None
    if encrypted:
        # Only a password no one gave us keeps a reader out; "owner" restrictions alone open with an empty one.
        try:
            opened = reader.decrypt("")
        except MemoryError:
            raise
        except Exception:
            opened = None
        if not opened:
            raise UploadRejected("pdf_locked")
    return reader


def _pdf_active_content(reader: PdfReader) -> str | None:
    """"pdf_script" or "pdf_embedded" when some object names such content, else None."""
    todo: list[Any] = [reader.trailer]
    # Every object the cross-reference lists (a reader that repairs a file may find them all), then whatever
    # they refer to.
    todo += [IndirectObject(number, generation, reader)
             for generation, numbers in reader.xref.items() for number in numbers]
    todo += [IndirectObject(number, 0, reader) for number in reader.xref_objStm]
    seen: set[tuple[int, int]] = set()
    while todo:
        item = todo.pop()
        if isinstance(item, IndirectObject):
            if (item.idnum, item.generation) in seen:
                continue
            seen.add((item.idnum, item.generation))
            item = item.get_object()
        if isinstance(item, DictionaryObject):  # a stream's dictionary too
            for key, value in item.items():
                if found := _pdf_name_kind(key):
                    return found
                if key == "/OpenAction" and _acts_on_opening(value):
                    return "pdf_script"
                todo.append(value)
        elif isinstance(item, ArrayObject):
            todo.extend(item)
        elif isinstance(item, NameObject) and (found := _pdf_name_kind(item)):
            return found
    return None


def _acts_on_opening(action: Any) -> bool:
    """An /OpenAction that does more than show a page: an action dictionary whose type is not /GoTo (a bare
    destination array only shows a page)."""
    action = action.get_object() if isinstance(action, IndirectObject) else action
    return isinstance(action, DictionaryObject) and action.get("/S") != "/GoTo"


def _pdf_name_kind(name: str) -> str | None:
    if name in _PDF_SCRIPT:
        return "pdf_script"
    if name in _PDF_EMBEDDED:
        return "pdf_embedded"
    return None


# --------------------------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------------------------


def _check_image(raw: bytes, fmt: str, filename: str, max_pixels: int) -> CheckedFile:
    # Decoding reads from memory, so the image holds no OS resource and needs no close().
    img, exif = _decode(raw, fmt, max_pixels, shrink_to=MAX_SIDE_STORED)
    evidence = extract_evidence(exif)
    work = _to_srgb(_to_8bit(_upright(img, exif)))

    if _has_visible_alpha(work):
        work = work.convert("RGBA")
        fmt_out, mime, ext = "PNG", "image/png", "png"
    else:
        work = _flatten_to_rgb(work)
        fmt_out, mime, ext = "JPEG", "image/jpeg", "jpg"

    if max(work.size) > MAX_SIDE_STORED:
        work.thumbnail((MAX_SIDE_STORED, MAX_SIDE_STORED), Image.Resampling.LANCZOS)

    # Drop everything Pillow might carry over (EXIF, ICC, XMP, comments, text chunks): only pixels leave here.
    work.info = {}
    out = BytesIO()
    if fmt_out == "JPEG":
        work.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
    else:
        work.save(out, "PNG", optimize=True)
    data = out.getvalue()
    return CheckedFile(
        data=data,
        mime=mime,
        extension=ext,
        sha256=hashlib.sha256(data).hexdigest(),
        width=work.width,
        height=work.height,
        original_name=clean_filename(filename, ext),
        evidence=evidence,
    )


def _decode(
    raw: bytes, fmt: str, max_pixels: int, *, shrink_to: int | None = None
) -> tuple[Image.Image, Image.Exif | None]:
    """Check the header size, then fully decode; returns the image and its parsed EXIF (or None).

    Raises UploadRejected. `shrink_to` is the long side the caller will reduce to, so JPEG can decode smaller.
    """
    header = _parse_header(raw, fmt)
    if header is None:
        raise UploadRejected("damaged")
    # Pillow warns above its own global limit and refuses at twice that; staying under it keeps it silent
    # without touching the global (which other threads may rely on).
    limit = max_pixels if Image.MAX_IMAGE_PIXELS is None else min(max_pixels, Image.MAX_IMAGE_PIXELS)
    _check_pixels(header.size, limit)
    if not _looks_complete(header.data, fmt):
        raise UploadRejected("damaged")
    try:
        img = Image.open(BytesIO(header.data), formats=[fmt])
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UploadRejected("too_many_pixels", **_pixel_params(header.size, limit)) from None
    except MemoryError:
        raise
    except Exception:  # any decoder failure on untrusted bytes means the file is unusable
        raise UploadRejected("damaged") from None
    try:
        # Pillow's own idea of the size is what it will allocate; re-check in case it differs from our parse.
        _check_pixels(img.size, limit)
        draft_box = _shrunk_size(img.size, shrink_to)
        if draft_box is not None and fmt == "JPEG":
            # Let libjpeg decode at 1/2, 1/4 or 1/8 scale when we would shrink anyway: saves most of the memory.
            img.draft(img.mode, draft_box)
        img.load()
    except UploadRejected:
        img.close()
        raise
    except MemoryError:
        img.close()
        raise
    except Exception:  # truncated or corrupt data; LOAD_TRUNCATED_IMAGES is deliberately left off
        img.close()
        raise UploadRejected("damaged") from None
    # JPEG metadata was split off before decoding; the other formats keep it in info (PNG's eXIf may follow IDAT).
    blob = header.exif if fmt == "JPEG" else img.info.get("exif")
    return img, _load_exif(blob)


def _looks_complete(data: bytes, fmt: str) -> bool:
    """The file's own end marker is there. Checked by hand because Pillow's LOAD_TRUNCATED_IMAGES is a
    process-wide switch that other libraries turn on (WeasyPrint does, on import)."""
    if fmt == "JPEG":
        start = data.find(b"\xff\xda")  # start of scan; the end-of-image marker must follow it
        return start != -1 and data.find(b"\xff\xd9", start) != -1
    if fmt == "PNG":
        return b"IEND" in data
    if fmt == "GIF":
        return b"\x3b" in data[-16:]
    if fmt == "WEBP":
        return len(data) >= 12 and int.from_bytes(data[4:8], "little") + 8 <= len(data)
    return True


def _check_pixels(size: tuple[int, int], limit: int) -> None:
    width, height = size
    if width < 1 or height < 1:
        raise UploadRejected("damaged")
    if width * height > limit:
        raise UploadRejected("too_many_pixels", **_pixel_params(size, limit))


def _pixel_params(size: tuple[int, int], limit: int) -> dict[str, Any]:
    return {"width": size[0], "height": size[1], "max_megapixels": round(limit / 1_000_000, 1)}


def _shrunk_size(size: tuple[int, int], long_side: int | None) -> tuple[int, int] | None:
    """The size an image will be reduced to (aspect kept), or None when it is not reduced."""
    width, height = size
    if long_side is None or max(width, height) <= long_side:
        return None
    scale = long_side / max(width, height)
    return max(1, math.floor(width * scale)), max(1, math.floor(height * scale))


# EXIF orientation -> the transposition that makes the picture upright (as ImageOps.exif_transpose does).
_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _upright(img: Image.Image, exif: Image.Exif | None) -> Image.Image:
    """Apply the EXIF orientation so phone photos are not sideways; bad EXIF just leaves the image as is.

    Uses the EXIF we parsed defensively ourselves rather than ImageOps.exif_transpose, which would re-parse
    untrusted EXIF (and XMP) inside Pillow, where a corrupt block emits warnings.
    """
    try:
        method = _ORIENTATION.get(exif.get(_TAG_ORIENTATION)) if exif is not None else None
    except Exception:  # malformed EXIF must never fail the upload
        method = None
    return img.transpose(method) if method is not None else img


def _to_8bit(img: Image.Image) -> Image.Image:
    """Bring 16/32-bit greyscale down to 8 bits by scaling (a plain convert would clip to white)."""
    if img.mode in ("I", "F") or img.mode.startswith("I;16"):
        return img.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    return img


def _to_srgb(img: Image.Image) -> Image.Image:
    """Convert pixels to sRGB using the embedded ICC profile, since the profile itself will be stripped."""
    icc = img.info.get("icc_profile")
    if not icc or img.mode not in ("RGB", "RGBA", "CMYK", "L"):
        return img
    out_mode = "RGBA" if img.mode == "RGBA" else "RGB"
    try:
        source = ImageCms.ImageCmsProfile(BytesIO(icc))
        converted = ImageCms.profileToProfile(img, source, ImageCms.createProfile("sRGB"), outputMode=out_mode)
    except Exception:  # a broken profile only costs colour accuracy, not the upload
        return img
    return converted if converted is not None else img


def _has_visible_alpha(img: Image.Image) -> bool:
    """True when some pixel is not fully opaque (an opaque RGBA screenshot is better stored as JPEG)."""
    if not img.has_transparency_data:
        return False
    alpha = img.convert("RGBA").getchannel("A")
    low, _high = alpha.getextrema()
    return low < 255


def _flatten_to_rgb(img: Image.Image) -> Image.Image:
    """RGB for JPEG; any transparency is laid on white rather than turning black."""
    if img.has_transparency_data:
        rgba = img.convert("RGBA")  # via RGBA: P images with byte transparency would warn on a direct RGB convert
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if img.mode == "RGB":
        return img
    return img.convert("RGB")


# --------------------------------------------------------------------------------------------------------------
# Sniffing and header sizes (pure byte parsing, before Pillow sees anything)
# --------------------------------------------------------------------------------------------------------------


def _sniff_image(raw: bytes) -> str | None:
    """Pillow format name for the supported raster formats, judged by magic bytes only."""
    if raw.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if raw.startswith(_PNG_SIGNATURE):
        return "PNG"
    if raw.startswith((b"GIF87a", b"GIF89a")):
        return "GIF"
    if raw[:4] == b"RIFF" and raw[8:12] == b"WEBP":
        return "WEBP"
    # HEIF is not listed: Pillow cannot read it without a third-party plugin.
    return None


@dataclass(frozen=True)
class _Header:
    size: tuple[int, int]
    data: bytes  # what Pillow decodes: for JPEG the file without its metadata segments
    exif: bytes | None = None  # JPEG only: the APP1 Exif segment that was split off


def _parse_header(raw: bytes, fmt: str) -> _Header | None:
    """Size as declared by the file header (and JPEG metadata split off), or None if the header is unreadable."""
    try:
        if fmt == "JPEG":
            return _parse_jpeg(raw)
        size = {"PNG": _png_size, "GIF": _gif_size, "WEBP": _webp_size}[fmt](raw)
    except (struct.error, IndexError, KeyError):
        return None
    return None if size is None else _Header(size=size, data=raw)


def _png_size(raw: bytes) -> tuple[int, int] | None:
    if raw[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", raw[16:24])


def _parse_jpeg(raw: bytes) -> _Header | None:
    """Walk the marker segments up to the start of scan: find the frame size and rebuild the header without
    metadata, so that Pillow never parses untrusted EXIF/MPF while decoding (a corrupt block makes it warn).
    """
    kept = [b"\xff\xd8"]
    best: tuple[int, int] | None = None
    exif: bytes | None = None
    pos, end = 2, len(raw)
    while pos < end:
        if raw[pos] != 0xFF:
            pos += 1  # junk between segments, which decoders skip too
            continue
        while pos < end and raw[pos] == 0xFF:
            pos += 1  # fill bytes
        if pos >= end:
            break
        marker = raw[pos]
        pos += 1
        if marker in _JPEG_STANDALONE:
            continue  # stray SOI/RST before the scan carry nothing
        if marker == 0xD9:
            break  # end of image before any scan: nothing to decode
        if marker == 0xDA:
            if best is None:
                return None
            kept.append(raw[pos - 2 :])  # start of scan: the rest is image data, kept as is
            return _Header(size=best, data=b"".join(kept), exif=exif)
        (length,) = struct.unpack(">H", raw[pos : pos + 2])
        if length < 2 or pos + length > end:
            return None
        body = raw[pos + 2 : pos + length]
        if marker in _JPEG_SOF:
            height, width = struct.unpack(">HH", body[1:5])
            # Several frames should not happen; if they do, the largest one counts.
            if best is None or width * height > best[0] * best[1]:
                best = (width, height)
        if marker == 0xE1:
            if exif is None and body.startswith(b"Exif\x00\x00"):
                exif = body
        elif not _jpeg_metadata(marker, body):
            kept.append(raw[pos - 2 : pos + length])
        pos += length
    return None


def _jpeg_metadata(marker: int, body: bytes) -> bool:
    """Segments that do not affect the pixels: APPn except JFIF, ICC profile and Adobe (colour transform); COM."""
    if marker == 0xFE:
        return True
    if not 0xE0 <= marker <= 0xEF:
        return False
    if marker in (0xE0, 0xEE):
        return False
    return not (marker == 0xE2 and body.startswith(b"ICC_PROFILE\x00"))


def _gif_size(raw: bytes) -> tuple[int, int] | None:
    # The first frame may extend past the logical screen; Pillow then grows the canvas, so we do the same.
    width, height, flags = struct.unpack("<HHB", raw[6:11])
    pos = 13
    if flags & 0x80:
        pos += 3 << ((flags & 7) + 1)
    end = len(raw)
    while pos < end:
        block = raw[pos]
        if block == 0x2C:  # image descriptor
            x0, y0, w, h = struct.unpack("<HHHH", raw[pos + 1 : pos + 9])
            return max(width, x0 + w), max(height, y0 + h)
        if block == 0x21:  # extension: label, then sub-blocks ending with a zero length
            pos += 2
            while pos < end and raw[pos]:
                pos += raw[pos] + 1
            pos += 1
            continue
        break  # trailer or garbage: no frame
    return width, height


def _webp_size(raw: bytes) -> tuple[int, int] | None:
    chunk, data = raw[12:16], raw[20:30]
    if chunk == b"VP8 " and data[3:6] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[6:10])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and data[:1] == b"\x2f":
        (bits,) = struct.unpack("<I", data[1:5])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        if len(data) < 10:
            return None
        return int.from_bytes(data[4:7], "little") + 1, int.from_bytes(data[7:10], "little") + 1
    return None


# --------------------------------------------------------------------------------------------------------------
# EXIF evidence
# --------------------------------------------------------------------------------------------------------------


def _load_exif(blob: Any) -> Image.Exif | None:
    """Parse an EXIF block (with or without the "Exif" prefix); None when absent or unreadable."""
    if not blob or not isinstance(blob, bytes):
        return None
    exif = Image.Exif()
    try:
        exif.load(blob)
    except Exception:  # malformed EXIF must never fail the upload (and may surface as a warning turned error)
        return None
    return exif


def extract_evidence(exif: Image.Exif | None) -> dict:
    """Read GPS position, capture time and camera from parsed EXIF; anything missing or malformed is left out."""
    if exif is None:
        return {}
    evidence: dict[str, Any] = {}
    for key, reader in (("gps", _gps), ("taken_at", _taken_at), ("camera", _camera)):
        try:
            value = reader(exif)
        except Exception:  # each piece is optional; one bad tag must not hide the others
            value = None
        if value:
            evidence[key] = value
    return evidence


def _gps(exif: Image.Exif) -> dict[str, float | None] | None:
    gps = exif.get_ifd(_IFD_GPS)
    if not gps:
        return None
    # Without the hemisphere refs the sign is unknown, and a wrong sign is worse evidence than none.
    lat_ref, lng_ref = _text(gps.get(1)).upper()[:1], _text(gps.get(3)).upper()[:1]
    if lat_ref not in ("N", "S") or lng_ref not in ("E", "W"):
        return None
    lat, lng = _degrees(gps.get(2)), _degrees(gps.get(4))
    if lat is None or lng is None or lat > 90 or lng > 180:
        return None
    if lat == 0 and lng == 0:
        return None  # phones write 0/0 when they had no fix
    if lat_ref == "S":
        lat = -lat
    if lng_ref == "W":
        lng = -lng
    alt = _number(gps.get(6))
    if alt is not None:
        below = gps.get(5)
        if below in (1, b"\x01", "\x01"):  # AltitudeRef 1 = below sea level
            alt = -alt
        alt = round(alt, 2)
    return {"lat": round(lat, 6), "lng": round(lng, 6), "alt": alt}


def _degrees(value: Any) -> float | None:
    """EXIF degrees/minutes/seconds (1 to 3 rationals) to decimal degrees, or None when malformed."""
    if value is None:
        return None
    parts = list(value) if isinstance(value, tuple | list) else [value]
    if len(parts) == 2 and all(isinstance(p, int) for p in parts):
        parts = [value]  # a bare (numerator, denominator) pair
    if not 1 <= len(parts) <= 3:
        return None
    numbers = [_number(p) for p in parts]
    if any(n is None or n < 0 for n in numbers):
        return None
    degrees, minutes, seconds = ([*numbers, 0.0, 0.0])[:3]
    if minutes >= 60 or seconds >= 60:
        return None
    return degrees + minutes / 60 + seconds / 3600


def _number(value: Any) -> float | None:
    """A finite float from an EXIF rational/int/(num, den) pair, or None."""
    if value is None or isinstance(value, str | bytes | bool):
        return None
    if isinstance(value, tuple):
        if len(value) != 2 or value[1] == 0:
            return None
        value = value[0] / value[1]
    try:
        number = float(value)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _taken_at(exif: Image.Exif) -> str | None:
    for raw in (exif.get_ifd(_IFD_EXIF).get(_TAG_DATETIME_ORIGINAL), exif.get(_TAG_DATETIME)):
        match = _DATETIME_RE.match(_text(raw))
        if not match:
            continue
        try:
            moment = datetime(*(int(part) for part in match.groups()))  # EXIF time has no zone
        except ValueError:
            continue  # e.g. the "0000:00:00 00:00:00" cameras write when the clock was never set
        return moment.isoformat(timespec="seconds")
    return None


def _camera(exif: Image.Exif) -> str | None:
    make, model = _text(exif.get(_TAG_MAKE)), _text(exif.get(_TAG_MODEL))
    if make and model.lower().startswith(make.lower()):
        make = ""  # many cameras repeat the make in the model ("Canon" / "Canon EOS R5")
    camera = " ".join(part for part in (make, model) if part)
    return camera[:100] or None


def _text(value: Any) -> str:
    """EXIF ASCII values as clean display text (NULs, control characters and padding removed)."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if not isinstance(value, str):
        return ""
    return "".join(ch for ch in value if unicodedata.category(ch)[0] != "C").strip()


# --------------------------------------------------------------------------------------------------------------
# Names and small helpers
# --------------------------------------------------------------------------------------------------------------


def clean_filename(filename: str | None, extension: str = "") -> str:
    """Basename of an uploaded file name, safe to display: no path, no control or bidi characters, <= 200 chars."""
    name = unicodedata.normalize("NFC", filename or "")
    name = re.split(r"[/\\]", name)[-1]
    # Cc and Cf include NUL and the right-to-left override used to disguise "photo\u202egpj.exe".
    name = "".join(ch for ch in name if unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co"))
    name = " ".join(name.split()).strip(" .")
    if not name:
        return f"upload.{extension}" if extension else "upload"
    if len(name) > MAX_NAME_LENGTH:
        stem, dot, ext = name.rpartition(".")
        if dot and stem and 0 < len(ext) <= 10:
            name = stem[: MAX_NAME_LENGTH - len(ext) - 1].rstrip() + "." + ext
        else:
            name = name[:MAX_NAME_LENGTH].rstrip()
    return name


def _megabytes(max_bytes: int) -> int | float:
    mb = max_bytes / (1024 * 1024)
    return int(mb) if mb.is_integer() else round(mb, 1)


def _describe_allowed(kinds: Collection[str]) -> str:
    labels = {"image": "images", "pdf": "PDF"}
    return ", ".join(labels[k] for k in sorted(kinds))
