"""Hostile definition files: small on disk, huge or unreadable once read (issue #14, item 3)."""

from __future__ import annotations

import io
import struct
import zipfile

from tests.support.schemes import MINI_SCHEME

GBK_TEXT = "kind: board\nid: road_board\nname: 路长公示牌\n"


def alias_bomb(levels: int = 9) -> str:
    """The "billion laughs": nine lists of nine aliases to the list before, about 500 bytes, 9⁹ values."""
    lines = ["l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels + 1):
        lines.append(f"l{i}: &l{i} [{','.join([f'*l{i - 1}'] * 9)}]")
    return "kind: form\nid: lol\n" + "\n".join(lines) + "\n"


def deep_yaml(depth: int = 100_000) -> str:
    return "kind: form\nid: deep\nfields: " + "[" * depth + "]" * depth + "\n"


def huge_number_yaml(digits: int = 100_000) -> str:
    return "kind: form\nid: big\nversion: " + "9" * digits + "\n"


def gbk_bytes() -> bytes:
    return GBK_TEXT.encode("gbk")


def zip_of(files: dict[str, bytes | str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def zip_bomb(unpacked: int = 50 * 1024 * 1024) -> bytes:
    """A scheme zip whose scheme.yaml unpacks to 50 MB of spaces (about 50 KB packed)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("mini/forms.yaml", "kind: form\nid: f\n")
        with archive.open("mini/scheme.yaml", "w", force_zip64=True) as member:
            member.write(MINI_SCHEME.encode())
            chunk = b" " * (1024 * 1024)
            for _ in range(unpacked // len(chunk)):
                member.write(chunk)
    return buffer.getvalue()


def lying_zip_bomb() -> bytes:
    """A zip whose directory says scheme.yaml is 1 KB while it unpacks to 20 MB."""
    data = bytearray(zip_of({"scheme.yaml": MINI_SCHEME + " " * (20 * 1024 * 1024)}))
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # local header, then directory entry
        at = data.find(signature)
        data[at + offset:at + offset + 4] = struct.pack("<L", 1024)
    return bytes(data)


def malformed_zip() -> bytes:
    """The first half of a real zip: it starts like one, its directory is missing."""
    whole = zip_of({"scheme.yaml": MINI_SCHEME})
    return whole[: len(whole) // 2]


def many_entries_zip(entries: int = 5_000) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i in range(entries):
            archive.writestr(f"e{i}", b"")
    return buffer.getvalue()
