"""A version's files, and drafts made from them: an edited definition, an edited or uploaded file, stored as a
new version on top of the one it came from, checked first and put in force only when activated."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from flask_babel import gettext as _

from ..core.errors import NotFound
from .bundle import SchemeFiles, check_files, library_files
from .errors import DefinitionError, DefinitionsInvalid
from .loader import DEFINITION_SUFFIXES, data_problem, decode_text, parse_text
from .models import SchemeVersion
from .rewrite import RewriteFailed, rewrite_source
from .service import load_scheme, project_root

if TYPE_CHECKING:
    from ..auth.models import AnyUser

LIBRARY_FOLDERS = ("form_definitions", "workflow_definitions", "category_definitions")
ZIP_TIME = (2026, 1, 1, 0, 0, 0)  # every entry's time: the same version makes the same zip


def version_files(version: SchemeVersion) -> dict[str, bytes]:
    """The scheme's own files of a version, by path, exactly as loaded.

    A version stored before files were kept gives each of its own definitions' text under its file's name
    (the text as read, without a byte-order mark)."""
    if version.files:
        return {f.path: f.content for f in version.files}
    out: dict[str, bytes] = {}
    for member in version.members:
        parts = PurePosixPath(member.file.replace("\\", "/")).parts
        if parts and parts[0] not in LIBRARY_FOLDERS:
            if parts[-1] in out:  # two files of one name in different folders: which is which is not known
                raise DefinitionsInvalid([DefinitionError(member.file, 1, "", _(
                    "This version was stored before its files were kept, and two of them share the name "
                    "%(name)s: load its folder again to edit it.", name=parts[-1]))])
            out[parts[-1]] = member.source.encode("utf-8")
    return out


MAX_PATH_CHARS = 300


def usable_path(path: str) -> bool:
    """A file's path a version may keep and write back anywhere: relative, forward slashes only, no part hidden or
    `..`, no drive, control character or backslash, a definition file's suffix, not too long."""
    pure = PurePosixPath(path)
    return (0 < len(path) <= MAX_PATH_CHARS and not pure.is_absolute()
            and not any(c in path for c in "\\:") and all(ord(c) >= 32 and ord(c) != 127 for c in path)
            and all(part and not part.startswith(".") for part in path.split("/"))
            and path.lower().endswith(DEFINITION_SUFFIXES))


def _safe_path(path: str) -> PurePosixPath:
    if not usable_path(path):
        raise ValueError(f"unsafe path in a stored version: {path!r}")
    return PurePosixPath(path)


def _unusable(path: str) -> DefinitionsInvalid:
    return DefinitionsInvalid([DefinitionError(path[:MAX_PATH_CHARS] or "(file)", 1, "", _(
        "This file name cannot be kept: use letters, digits, - and _, and end it in .yaml, .yml or .json."))])


def export_scheme_version(version: SchemeVersion, folder: Path, overwrite: bool = False) -> list[Path]:
    """Write a version's files into `folder` as they were loaded; refuse to replace a file unless `overwrite`."""
    files = version_files(version)
    targets = {folder.joinpath(*_safe_path(path).parts): data for path, data in files.items()}
    clashes = [str(t) for t in targets if t.exists()]
    if clashes and not overwrite:
        raise FileExistsError(", ".join(sorted(clashes)))
    for target, data in targets.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return sorted(targets)


def version_zip(version: SchemeVersion) -> bytes:
    """A version's files in a zip, each as loaded (uploading it again gives the same version)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in sorted(version_files(version).items()):
            info = zipfile.ZipInfo(str(_safe_path(path)), ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return out.getvalue()


@dataclass(frozen=True)
class DefinitionFile:
    """Where a definition of a version is written: its file's path, text, and whether the scheme has it as its
    own file (else it is a built-in one, and saving it gives the scheme its own copy)."""

    kind: str
    key: str
    path: str
    text: str
    own: bool
    data: Any


def as_texts(files: dict[str, bytes]) -> SchemeFiles:
    """The files as a check reads them: by path, their text, their bytes kept."""
    texts = SchemeFiles()
    errors: list[DefinitionError] = []
    for path, data in files.items():
        try:
            texts[path] = decode_text(path, data)
        except DefinitionsInvalid as exc:
            errors += exc.errors
            continue
        texts.raw[path] = (path, data)
    if errors:
        raise DefinitionsInvalid(errors)
    return texts


def defined_in(files: dict[str, bytes]) -> dict[tuple[str, str], str]:
    """(kind, id) → the path of the own file that defines it."""
    out: dict[tuple[str, str], str] = {}
    for path, data in files.items():
        try:
            doc = parse_text(path, decode_text(path, data))
        except DefinitionsInvalid:
            continue
        if isinstance(doc.data, dict) and isinstance(doc.data.get("kind"), str) and isinstance(doc.data.get("id"), str):
            out.setdefault((doc.data["kind"], doc.data["id"]), path)
    return out


def definition_file(version: SchemeVersion, kind: str, key: str) -> DefinitionFile:
    """The file a version's definition is edited in: its own file, else the built-in definition's text, to be
    saved as a file of the scheme's own."""
    files = version_files(version)
    path = defined_in(files).get((kind, key))
    if path is not None:
        text = decode_text(path, files[path])  # checked when loaded: this only drops a byte-order mark
        return DefinitionFile(kind, key, path, files[path].decode("utf-8"), True, parse_text(path, text).data)
    member = version.member(kind, key)
    if member is None:
        raise NotFound(_("No such definition in this version."))
    suffix = ".json" if member.file.endswith(".json") else ".yaml"
    name, n = f"{key}{suffix}", 1
    while name in files:
        n += 1
        name = f"{kind}_{key}{'' if n == 2 else f'_{n}'}{suffix}"
    return DefinitionFile(kind, key, name, member.source, False, member.data)


def place_upload(version: SchemeVersion, filename: str, data: bytes) -> str:
    """The path an uploaded single file takes in a version: the file of the same name, else the file that holds
    the definition it holds (its kind and id), else a new file of its name."""
    name = PurePosixPath(filename.replace("\\", "/")).name
    if not usable_path(name):
        raise _unusable(name)
    files = version_files(version)
    same_name = [p for p in files if PurePosixPath(p).name == name]
    if len(same_name) == 1:
        return same_name[0]
    if name.lower().endswith(DEFINITION_SUFFIXES):
        doc = parse_text(name, decode_text(name, data))
        if isinstance(doc.data, dict):
            found = defined_in(files).get((str(doc.data.get("kind")), str(doc.data.get("id"))))
            if found is not None:
                return found
    return name


def check_draft(base: SchemeVersion, changed: dict[str, bytes | None]) -> tuple[SchemeFiles, Any]:
    """The base version's files with `changed` applied (None removes a file), checked: (files, bundle).
    Raises DefinitionsInvalid with every error, each naming the file and line."""
    files = version_files(base)
    for path, data in changed.items():
        if data is None:
            files.pop(path, None)
        elif not usable_path(path):
            raise _unusable(path)
        else:
            files[path] = data
    texts = as_texts(files)
    return texts, check_files(texts, library_files(project_root()))


def store_draft(base: SchemeVersion, changed: dict[str, bytes | None], user: AnyUser = None,
                note: str | None = None) -> tuple[SchemeVersion, bool]:
    """Store the base version with `changed` applied as a new version (a draft until activated)."""
    _texts_checked, bundle = check_draft(base, changed)
    if bundle.id != base.scheme_key:
        raise DefinitionsInvalid([DefinitionError(bundle.scheme.file, 1, "id", _(
            "a draft cannot change the scheme's id (%(old)s → %(new)s): load it as a new scheme",
            old=base.scheme_key, new=bundle.id))])
    return load_scheme(bundle, user, note=note, based_on=base)


def rewritten(source: DefinitionFile, data: Any) -> bytes:
    """The definition's file with `data` written in, changed only where the data changed."""
    problem = data_problem(data) if isinstance(data, dict) else _("a definition is a map of keys and values")
    if problem:
        raise DefinitionsInvalid([DefinitionError(source.path, 1, "", problem)])
    try:
        text = rewrite_source(source.text, data, json_file=source.path.lower().endswith(".json"))
    except RewriteFailed as exc:
        raise DefinitionsInvalid([DefinitionError(source.path, 1, "", str(exc))]) from exc
    return text.encode("utf-8")
