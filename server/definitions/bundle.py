"""Assemble a scheme from its folder (or upload) plus the built-in library, and check it all in one run."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from flask_babel import gettext as _

from ..core import suggestions
from ..core.archives import ZipLimits, ZipRefused, open_zip, read_members, size_text
from .errors import DefinitionError, DefinitionsInvalid
from .loader import (
    DEFINITION_SUFFIXES,
    MAX_FILE_BYTES,
    UTF8_BOM,
    ReadBudget,
    SourceDocument,
    content_hash,
    decode_text,
    parse_text,
)
from .references import ReferenceChecker
from .schema import KINDS, validate_schema

MAX_UPLOAD_FILES = 500  # definition files in one check
MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # an upload (its files or zip together) or a zip on disk, as sent
MAX_SCHEME_BYTES = 1024 * 1024  # the definition files of one check together, as text (unpacked)
MAX_SCHEME_VALUES = 30_000  # values in the definition files of one check together (loader.MAX_VALUES: one file)
MAX_SUGGESTION_COMPARISONS = 10_000  # words compared for "did you mean" suggestions in one check
MAX_LISTED_ERRORS = 1_000  # errors listed by one check; past this, a count of the rest
ZIP_LIMITS = ZipLimits(members=1_000, member_bytes=MAX_FILE_BYTES, total_bytes=MAX_SCHEME_BYTES, ratio=100)


class SchemeFiles(dict[str, str]):
    """A scheme's own files by display name (as errors name them) → text, and each file as it was read: its path
    inside the folder or zip loaded and its bytes, which a version keeps and `fangan scheme export` writes back."""

    def __init__(self) -> None:
        super().__init__()
        self.raw: dict[str, tuple[str, bytes]] = {}


    def copy(self) -> SchemeFiles:  # type: ignore[override]
        out = SchemeFiles()
        out.update(self)
        out.raw.update(self.raw)
        return out


def stored_files(files: Mapping[str, str]) -> tuple[tuple[str, bytes], ...]:
    """(path, bytes) of each file: as read, when the reader kept them and the text is still theirs; else the
    text as UTF-8 under its name."""
    raw = getattr(files, "raw", {})
    out = {}
    for name, text in files.items():
        path, data = raw.get(name, (name, b""))
        if not data or data.decode("utf-8", "replace").removeprefix(UTF8_BOM) != text:
            path, data = name, text.encode("utf-8")
        out[path] = data
    return tuple(sorted(out.items()))


def files_hash(files: Iterable[tuple[str, bytes]]) -> str:
    """The identity of a set of files: their paths and exact bytes."""
    return content_hash(sorted([path, hashlib.sha256(data).hexdigest()] for path, data in files))


@dataclass(frozen=True)
class Definition:
    """One checked definition: immutable content plus where it came from."""

    kind: str
    id: str
    data: dict
    file: str
    text: str

    @property
    def hash(self) -> str:
        return content_hash(self.data)

    @property
    def name(self) -> str | dict:
        return self.data.get("name", self.id)


@dataclass(frozen=True)
class Bundle:
    """A scheme and every definition it uses, all checked together."""

    scheme: Definition
    members: tuple[Definition, ...] = field(default_factory=tuple)
    files: tuple[tuple[str, bytes], ...] = ()  # the scheme's own files as read: (path, bytes)

    @property
    def id(self) -> str:
        return self.scheme.id

    @property
    def hash(self) -> str:
        """Hash of the scheme's content and of every member's hash: the scheme version's identity."""
        return content_hash({"scheme": self.scheme.hash,
                             "members": sorted(f"{m.kind}:{m.id}:{m.hash}" for m in self.members)})

    @property
    def files_hash(self) -> str:
        return files_hash(self.files)

    def get(self, kind: str, def_id: str) -> Definition | None:
        return next((m for m in self.members if m.kind == kind and m.id == def_id), None)

    def of_kind(self, kind: str) -> list[Definition]:
        return [m for m in self.members if m.kind == kind]


def read_folder(folder: Path, display_root: Path | None = None) -> SchemeFiles:
    """Map display path → text for every definition file under `folder` (its bytes kept by path in the folder)."""
    folder = Path(folder)
    files = SchemeFiles()
    errors: list[DefinitionError] = []
    total = 0
    for path in sorted(folder.rglob("*")):
        hidden = any(part.startswith(".") for part in path.relative_to(folder).parts)
        if path.is_file() and path.suffix.lower() in DEFINITION_SUFFIXES and not hidden:
            if len(files) + len(errors) >= MAX_UPLOAD_FILES:
                raise DefinitionsInvalid([*errors, _too_many_files(_display(folder, display_root))])
            data = _read_file(path)
            total += len(data)
            if total > MAX_SCHEME_BYTES:
                raise DefinitionsInvalid([*errors, _too_large_together(_display(folder, display_root))])
            _collect(files, errors, _display(path, display_root), data, path.relative_to(folder).as_posix())
    if errors:
        raise DefinitionsInvalid(errors)
    return files


def _display(path: Path, root: Path | None) -> str:
    base = root if root is not None else Path.cwd()
    try:
        return str(path.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)


def _read_file(path: Path) -> bytes:
    """A file's bytes, reading no more than one past the limit (`_collect` then says it is too large)."""
    with path.open("rb") as stream:
        return stream.read(MAX_FILE_BYTES + 1)


def _collect(files: dict[str, str], errors: list[DefinitionError], name: str, data: bytes,
             path: str | None = None) -> None:
    """Add one file's text (and its bytes, by `path`, to SchemeFiles), or the errors that say why it cannot be read."""
    if len(data) > MAX_FILE_BYTES:
        errors.append(DefinitionError(name, 1, "", _("the file is larger than %(size)s",
                                                     size=size_text(MAX_FILE_BYTES))))
        return
    try:
        files[name] = decode_text(name, data)
    except DefinitionsInvalid as exc:
        errors.extend(exc.errors)
        return
    if isinstance(files, SchemeFiles):
        files.raw[name] = (path or name, data)


def _too_many_files(name: str) -> DefinitionError:
    return DefinitionError(name, 1, "", _("more than %(num)s definition files", num=MAX_UPLOAD_FILES))


def _too_large_together(name: str) -> DefinitionError:
    return DefinitionError(name, 1, "", _("the scheme's files add up to more than %(size)s",
                                          size=size_text(MAX_SCHEME_BYTES)))


def read_zip(data: bytes, name: str = "upload.zip") -> SchemeFiles:
    """Map display path → text for definition files in a zip, refusing damaged, unsafe or oversized archives."""
    try:
        with open_zip(data, ZIP_LIMITS) as archive:
            wanted = []
            for info in archive.infolist():
                path = PurePosixPath(info.filename)
                if path.is_absolute() or ".." in path.parts or any(c in info.filename for c in "\\:"):
                    raise ZipRefused(_("unsafe path in the zip: %(member)s", member=info.filename))
                if not info.is_dir() and path.suffix.lower() in DEFINITION_SUFFIXES \
                        and not any(p.startswith(".") for p in path.parts):
                    wanted.append(info)
            if len(wanted) > MAX_UPLOAD_FILES:
                raise DefinitionsInvalid([_too_many_files(name)])
            members = read_members(archive, wanted, ZIP_LIMITS)  # only these are ever unpacked
    except ZipRefused as exc:
        raise DefinitionsInvalid([DefinitionError(name, 1, "", str(exc))]) from exc
    files = SchemeFiles()
    errors: list[DefinitionError] = []
    for member, content in members.items():
        _collect(files, errors, str(PurePosixPath(member)), content)
    if errors:
        raise DefinitionsInvalid(errors)
    return files


def read_upload(uploads: Iterable[tuple[str, bytes]]) -> SchemeFiles:
    """Map display path → text for uploaded files: YAML or JSON files, or zips of them (whatever their name).

    Every file that cannot be read is named in one DefinitionsInvalid.
    """
    files = SchemeFiles()
    errors: list[DefinitionError] = []
    for filename, data in uploads:
        name = filename.replace("\\", "/").rsplit("/", 1)[-1]
        if data[:4] == b"PK\x03\x04" or name.lower().endswith(".zip"):
            try:
                unpacked = read_zip(data, name)
                files.update(unpacked)
                files.raw.update(unpacked.raw)
            except DefinitionsInvalid as exc:
                errors.extend(exc.errors)
        elif name.lower().endswith(DEFINITION_SUFFIXES):
            _collect(files, errors, name, data)
        else:
            errors.append(DefinitionError(name, 1, "", _("Only YAML, JSON or zip files can be uploaded.")))
    if errors:
        raise DefinitionsInvalid(errors)
    return files


def read_source(path: Path | str) -> SchemeFiles:
    """Read a scheme folder, a single file or a zip from disk."""
    path = Path(path)
    if path.is_dir():
        return read_folder(path)
    name = _display(path, None)
    if path.suffix.lower() == ".zip":
        with path.open("rb") as stream:
            data = stream.read(MAX_UPLOAD_BYTES + 1)
        if len(data) > MAX_UPLOAD_BYTES:
            raise DefinitionsInvalid([DefinitionError(name, 1, "", _("the file is larger than %(size)s",
                                                                     size=size_text(MAX_UPLOAD_BYTES)))])
        return read_zip(data, name)
    files = SchemeFiles()
    errors: list[DefinitionError] = []
    _collect(files, errors, name, _read_file(path), path.name)
    if errors:
        raise DefinitionsInvalid(errors)
    return files


def library_files(project_root: Path) -> dict[str, str]:
    """The built-in definitions shipped with the product."""
    files: dict[str, str] = {}
    for folder in ("form_definitions", "workflow_definitions", "category_definitions"):
        if (project_root / folder).is_dir():
            files.update(read_folder(project_root / folder, project_root))
    return files


def available_themes(project_root: Path) -> frozenset[str]:
    """The themes installed with the product: folders under `themes/` that hold a theme.yaml."""
    folder = project_root / "themes"
    if not folder.is_dir():
        return frozenset()
    return frozenset(d.name for d in folder.iterdir() if (d / "theme.yaml").is_file())


def _installed_themes() -> frozenset[str]:
    """Themes of the running app's project root (FANGAN_ROOT), or of this checkout outside an app."""
    from flask import current_app, has_app_context

    from ..config import PROJECT_ROOT

    return available_themes(Path(current_app.config["FANGAN_ROOT"]) if has_app_context() else PROJECT_ROOT)


def _index(docs: Iterable[SourceDocument], errors: list[DefinitionError]) -> dict[tuple[str, str], SourceDocument]:
    index: dict[tuple[str, str], SourceDocument] = {}
    for doc in docs:
        data = doc.data
        if not isinstance(data, dict) or data.get("kind") not in KINDS or not isinstance(data.get("id"), str):
            continue
        key = (data["kind"], data["id"])
        if key in index:
            errors.append(doc.error(["id"], f"duplicate {data['kind']} id '{data['id']}' "
                                            f"(also in {index[key].file})"))
            continue
        index[key] = doc
    return index


def check_files(files: Mapping[str, str], library: Mapping[str, str] | None = None,
                themes: Iterable[str] | None = None) -> Bundle:
    """Parse, schema-check and cross-check a scheme's files; return the bundle or raise with all errors.

    `themes` are the theme names a scheme or board may choose (default: those installed). The work is
    bounded whatever the files hold: by their number, size and values, and by the comparisons spent on
    "did you mean" suggestions.
    """
    if len(files) > MAX_UPLOAD_FILES:
        raise DefinitionsInvalid([_too_many_files(next(iter(files)))])
    if sum(len(text.encode("utf-8")) for text in files.values()) > MAX_SCHEME_BYTES:
        raise DefinitionsInvalid([_too_large_together(next(iter(files)))])
    try:
        with suggestions.bounded(MAX_SUGGESTION_COMPARISONS):
            return _check_files(files, library, themes)
    except DefinitionsInvalid as exc:
        if len(exc.errors) <= MAX_LISTED_ERRORS:
            raise
        listed = DefinitionsInvalid(exc.errors[:MAX_LISTED_ERRORS])
        last = listed.errors[-1]
        listed.errors.append(DefinitionError(last.file, last.line, "", _(
            "%(num)s more errors are not listed: fix these first", num=f"{len(exc.errors) - MAX_LISTED_ERRORS:,}")))
        raise listed from None


def _check_files(files: Mapping[str, str], library: Mapping[str, str] | None,
                 themes: Iterable[str] | None) -> Bundle:
    errors: list[DefinitionError] = []
    budget = ReadBudget(MAX_SCHEME_VALUES)  # the shipped library is not counted: it is ours
    docs = [parse_text(name, text, budget) for name, text in files.items()]
    if any(doc.over_limit for doc in docs):  # a bomb is refused on its own, before anything else is checked
        raise DefinitionsInvalid([error for doc in docs for error in doc.errors])
    lib_docs = [parse_text(name, text) for name, text in (library or {}).items()]
    for doc in [*docs, *lib_docs]:
        errors.extend(doc.errors)
        if doc.data is not None:
            errors.extend(validate_schema(doc))
    own = _index(docs, errors)
    lib = _index(lib_docs, errors)
    schemes = [doc for (kind, _), doc in own.items() if kind == "scheme"]
    if not schemes:
        first = next(iter(files), "(no files)")
        if not any(doc.errors for doc in docs):
            errors.append(DefinitionError(first, 1, "", "no file with 'kind: scheme' was found"))
    elif len(schemes) > 1:
        for extra in schemes[1:]:
            errors.append(extra.error(["kind"], f"more than one scheme (also {schemes[0].file})"))
    documents = {**lib, **own}  # a scheme's own definition overrides a built-in of the same id
    scheme = schemes[0] if schemes else None
    built_in = frozenset(key for key, doc in lib.items() if documents[key] is doc)
    known_themes = frozenset(themes) if themes is not None else _installed_themes()
    errors.extend(ReferenceChecker(scheme, documents, built_in, known_themes).check())
    if errors or scheme is None:
        raise DefinitionsInvalid(errors)
    return Bundle(scheme=_definition(scheme), members=tuple(_members(scheme, documents, own)),
                  files=stored_files(files))


def _definition(doc: SourceDocument) -> Definition:
    return Definition(doc.data["kind"], doc.data["id"], doc.data, doc.file, doc.text)


def _members(scheme: SourceDocument, documents: dict[tuple[str, str], SourceDocument],
             own: dict[tuple[str, str], SourceDocument]) -> list[Definition]:
    """The definitions the scheme uses, directly or through its workflows and rules."""
    d = scheme.data
    wanted: set[tuple[str, str]] = set()
    wanted |= {("form", i) for i in d.get("forms", [])}
    wanted |= {("workflow", i) for i in d.get("workflows", [])}
    wanted |= {("score_sheet", i) for i in d.get("score_sheets", [])}
    wanted |= {("board", i) for i in d.get("boards", [])}
    wanted |= {("category_list", i) for i in d.get("category_lists", [])}
    wanted |= {key for key in own if key[0] == "patrol_rules"}
    # Forms named by patrol rules, workflows named by categories: the version must hold them too.
    rule_lists = [d.get("patrol_rules", [])]
    rule_lists += [documents[k].data.get("rules", []) for k in own if k[0] == "patrol_rules"]
    wanted |= {("form", r["form"]) for rules in rule_lists for r in rules if r.get("form")}
    listed = [documents[("category_list", i)].data.get("categories", []) for i in d.get("category_lists", [])
              if ("category_list", i) in documents]
    wanted |= {("workflow", c["workflow"]) for items in [d.get("categories", []), *listed]
               for c in _all_categories(items) if c.get("workflow")}
    if d.get("patrol_form"):
        wanted.add(("form", d["patrol_form"]))
    if isinstance(d.get("public"), dict) and d["public"].get("report_form"):
        wanted.add(("form", d["public"]["report_form"]))
    for kind, def_id in sorted(wanted):
        doc = documents.get((kind, def_id))
        if kind == "score_sheet" and doc is not None:
            wanted |= {("form", m["form"]) for m in doc.data.get("metrics", []) if m.get("form")}
        if kind == "workflow" and doc is not None:
            wanted |= {("form", t["form"]) for t in doc.data.get("transitions", []) if t.get("form")}
            if doc.data.get("report_form"):
                wanted.add(("form", doc.data["report_form"]))
    return [_definition(documents[key]) for key in sorted(wanted) if key in documents]


def merge_categories(own: list[dict], lists: list[list[dict]]) -> list[dict]:
    """The categories a scheme offers: its lists' in order, then its own; its own replace same-id top-level ones."""
    merged: dict[str, dict] = {}
    for items in [*lists, own]:
        for item in items:
            merged[item["id"]] = item
    return list(merged.values())


def picker_categories(own: list[dict], lists: list[list[dict]]) -> list[dict]:
    """The categories a picker offers: the merged tree without the lists' categories that the scheme's own
    stand for — those its categories `replaces`, and those with the very name of one of its own — nor the
    lists' groups left empty by that. (Every category still names the cases filed under it.)"""
    mine = _all_categories(own)
    replaced = {i for c in mine for i in c.get("replaces") or []}
    names = {_name_key(c.get("name")) for c in mine if not c.get("children")} - {None}
    # Only what comes from a list can be left out: a district's own category that overrides a list's one of the
    # same id (and everything under it) is the district's. A name the lists use more than once ("其他" in
    # several 大类) stands for none of them in particular, so it hides none.
    own_ids = {c["id"] for c in mine}
    leaves = [c for items in lists for c in _all_categories(items) if not c.get("children")]
    counted: dict[str | None, int] = {}
    for leaf in leaves:
        counted[_name_key(leaf.get("name"))] = counted.get(_name_key(leaf.get("name")), 0) + 1
    names = {n for n in names if counted.get(n) == 1}
    listed = {c["id"] for items in lists for c in _all_categories(items)} - own_ids

    def keep(items: list[dict]) -> list[dict]:
        out = []
        for item in items:
            if item["id"] in listed and (item["id"] in replaced or (
                    not item.get("children") and _name_key(item.get("name")) in names)):
                continue
            children = keep(item.get("children") or [])
            if item.get("children") and not children and item["id"] in listed:
                continue  # a group of the list whose every category the district replaced
            out.append({**item, "children": children} if item.get("children") else item)
        return out

    return keep(merge_categories(own, lists))


def _name_key(name: Any) -> str | None:
    """A category's name as compared for duplicates: its Chinese text (or its only text)."""
    if isinstance(name, dict):
        name = name.get("zh") or next(iter(name.values()), None)
    return name.strip() if isinstance(name, str) and name.strip() else None


def _all_categories(items: list[dict]) -> list[dict]:
    out = []
    for item in items:
        out.append(item)
        out += _all_categories(item.get("children", []))
    return out


def check_path(path: Path | str, project_root: Path) -> Bundle:
    """Check a scheme folder, file or zip on disk against the built-in library."""
    return check_files(read_source(path), library_files(project_root), available_themes(project_root))
