"""Assemble a scheme from its folder (or upload) plus the built-in library, and check it all in one run."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .errors import DefinitionError, DefinitionsInvalid
from .loader import DEFINITION_SUFFIXES, SourceDocument, content_hash, parse_text
from .references import ReferenceChecker
from .schema import KINDS, validate_schema

MAX_UPLOAD_FILES = 500
MAX_UPLOAD_BYTES = 20 * 1024 * 1024


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

    @property
    def id(self) -> str:
        return self.scheme.id

    @property
    def hash(self) -> str:
        """Hash of the scheme's content and of every member's hash: the scheme version's identity."""
        return content_hash({"scheme": self.scheme.hash,
                             "members": sorted(f"{m.kind}:{m.id}:{m.hash}" for m in self.members)})

    def get(self, kind: str, def_id: str) -> Definition | None:
        return next((m for m in self.members if m.kind == kind and m.id == def_id), None)

    def of_kind(self, kind: str) -> list[Definition]:
        return [m for m in self.members if m.kind == kind]


def read_folder(folder: Path, display_root: Path | None = None) -> dict[str, str]:
    """Map display path → text for every definition file under `folder`."""
    folder = Path(folder)
    files = {}
    for path in sorted(folder.rglob("*")):
        hidden = any(part.startswith(".") for part in path.relative_to(folder).parts)
        if path.is_file() and path.suffix.lower() in DEFINITION_SUFFIXES and not hidden:
            files[_display(path, display_root)] = path.read_text("utf-8", errors="replace")
    return files


def _display(path: Path, root: Path | None) -> str:
    base = root if root is not None else Path.cwd()
    try:
        return str(path.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)


def read_zip(data: bytes, name: str = "upload.zip") -> dict[str, str]:
    """Map display path → text for definition files in a zip, refusing unsafe or oversized archives."""
    files: dict[str, str] = {}
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise DefinitionsInvalid([DefinitionError(name, 1, "", "not a valid zip archive")]) from exc
    infos = [i for i in archive.infolist() if not i.is_dir()]
    if len(infos) > MAX_UPLOAD_FILES or sum(i.file_size for i in infos) > MAX_UPLOAD_BYTES:
        raise DefinitionsInvalid([DefinitionError(name, 1, "", "archive is too large")])
    for info in infos:
        path = PurePosixPath(info.filename)
        if path.is_absolute() or ".." in path.parts:
            raise DefinitionsInvalid([DefinitionError(name, 1, "", f"unsafe path in archive: {info.filename}")])
        if path.suffix.lower() in DEFINITION_SUFFIXES and not any(p.startswith(".") for p in path.parts):
            files[str(path)] = archive.read(info).decode("utf-8", errors="replace")
    return files


def read_source(path: Path | str) -> dict[str, str]:
    """Read a scheme folder, a single file or a zip from disk."""
    path = Path(path)
    if path.is_dir():
        return read_folder(path)
    if path.suffix.lower() == ".zip":
        return read_zip(path.read_bytes(), _display(path, None))
    return {_display(path, None): path.read_text("utf-8", errors="replace")}


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

    `themes` are the theme names a scheme or board may choose (default: those installed).
    """
    errors: list[DefinitionError] = []
    docs = [parse_text(name, text) for name, text in files.items()]
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
    return Bundle(scheme=_definition(scheme), members=tuple(_members(scheme, documents, own)))


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


def _all_categories(items: list[dict]) -> list[dict]:
    out = []
    for item in items:
        out.append(item)
        out += _all_categories(item.get("children", []))
    return out


def check_path(path: Path | str, project_root: Path) -> Bundle:
    """Check a scheme folder, file or zip on disk against the built-in library."""
    return check_files(read_source(path), library_files(project_root), available_themes(project_root))
