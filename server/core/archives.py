"""Read an uploaded zip within limits: a damaged archive or a zip bomb is refused, never unpacked.

The limits are checked twice. Before anything is unpacked, from the archive's own directory: how many
entries it has (read from its end record, so a zip of a million empty entries is refused before Python's
`zipfile` parses them), how large each member says it is once unpacked, how much the members add up to,
and how far each is compressed. Then while unpacking, against the bytes actually produced, so an archive
whose directory lies stops at the limit too. Memory and time are bounded by the limits, whatever the zip.
"""

from __future__ import annotations

import io
import struct
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass

from flask_babel import gettext as _

KIB = 1024
MIB = 1024 * KIB
RATIO_FROM_BYTES = 64 * KIB  # smaller members may compress as far as they like: they cannot grow large

_END = struct.Struct("<4s4H2LH")  # end of central directory record
_END_SIGNATURE = b"PK\x05\x06"
_LOCATOR64 = struct.Struct("<4sLQL")  # zip64 end of central directory locator
_END64 = struct.Struct("<4sQ2H2L4Q")  # zip64 end of central directory record


@dataclass(frozen=True)
class ZipLimits:
    """How much one zip may hold; `member_bytes` and `total_bytes` count unpacked bytes."""

    members: int = 1_000  # entries in the directory, folders included
    member_bytes: int = 512 * KIB  # one member read
    total_bytes: int = 2 * MIB  # all members read
    ratio: int = 100  # unpacked / packed, for a member of more than RATIO_FROM_BYTES
    directory_bytes: int = 1 * MIB  # the central directory itself


class ZipRefused(ValueError):
    """The zip is damaged or exceeds a limit; the message is translated and says which member."""


def size_text(size: int) -> str:
    """`512 KB`, `2 MB`: a limit as an administrator reads it (1 KB = 1024 bytes)."""
    return f"{size // MIB} MB" if size >= MIB and size % MIB == 0 else f"{size // KIB} KB"


def _damaged() -> ZipRefused:
    return ZipRefused(_("this is not a zip file, or the zip is damaged"))


def _directory_size(data: bytes) -> tuple[int, int]:
    """(entries, bytes) of the central directory as the end record says (zip64 included)."""
    start = data.rfind(_END_SIGNATURE, max(0, len(data) - _END.size - 0xFFFF))
    if start < 0 or start + _END.size > len(data):
        raise _damaged()
    fields = _END.unpack_from(data, start)
    entries, size = fields[4], fields[5]
    locator = start - _LOCATOR64.size
    if (entries == 0xFFFF or size == 0xFFFFFFFF) and locator >= 0:
        signature, _disk, offset, _disks = _LOCATOR64.unpack_from(data, locator)
        if signature == b"PK\x06\x07" and offset + _END64.size <= len(data):
            fields64 = _END64.unpack_from(data, offset)
            if fields64[0] == b"PK\x06\x06":
                entries, size = fields64[7], fields64[8]
    return entries, size


def open_zip(data: bytes, limits: ZipLimits) -> zipfile.ZipFile:
    """Open a zip held in memory, refusing it if it is damaged or holds too many entries."""
    entries, directory = _directory_size(data)
    if entries > limits.members or directory > limits.directory_bytes:
        raise ZipRefused(_("the zip holds more than %(num)s entries", num=f"{limits.members:,}"))
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, struct.error) as exc:
        raise _damaged() from exc
    if len(archive.infolist()) > limits.members:
        raise ZipRefused(_("the zip holds more than %(num)s entries", num=f"{limits.members:,}"))
    return archive


def check_declared(infos: Iterable[zipfile.ZipInfo], limits: ZipLimits) -> None:
    """Refuse members whose directory entries already say they are too large, or too far compressed."""
    total = 0
    for info in infos:
        if info.flag_bits & 0x1:
            raise ZipRefused(_("%(member)s is encrypted: zip the files without a password", member=info.filename))
        if info.file_size > limits.member_bytes:
            raise ZipRefused(_("%(member)s is larger than %(size)s once unpacked", member=info.filename,
                               size=size_text(limits.member_bytes)))
        if info.file_size > RATIO_FROM_BYTES and info.file_size > limits.ratio * max(info.compress_size, 1):
            raise ZipRefused(_("%(member)s is compressed more than %(ratio)s times: the zip looks like a zip bomb",
                               member=info.filename, ratio=limits.ratio))
        total += info.file_size
        if total > limits.total_bytes:
            raise ZipRefused(_("the files in the zip add up to more than %(size)s once unpacked",
                               size=size_text(limits.total_bytes)))


def read_members(archive: zipfile.ZipFile, infos: Iterable[zipfile.ZipInfo], limits: ZipLimits) -> dict[str, bytes]:
    """Unpack `infos` (checked first), counting the bytes produced against the limits as they come."""
    infos = list(infos)
    check_declared(infos, limits)
    out: dict[str, bytes] = {}
    total = 0
    for info in infos:
        try:
            with archive.open(info) as member:
                data = member.read(limits.member_bytes + 1)  # decompresses no further than this
        except NotImplementedError as exc:
            raise ZipRefused(_("%(member)s is packed with a method that cannot be read: zip the files again "
                               "with the usual method (deflate)", member=info.filename)) from exc
        except Exception as exc:  # noqa: BLE001 - a bad CRC, a broken stream, an unknown method: all damage
            raise ZipRefused(_("the zip is damaged: %(member)s cannot be unpacked", member=info.filename)) from exc
        if len(data) > limits.member_bytes:
            raise ZipRefused(_("%(member)s is larger than %(size)s once unpacked", member=info.filename,
                               size=size_text(limits.member_bytes)))
        total += len(data)
        if total > limits.total_bytes:
            raise ZipRefused(_("the files in the zip add up to more than %(size)s once unpacked",
                               size=size_text(limits.total_bytes)))
        out[info.filename] = data
    return out
