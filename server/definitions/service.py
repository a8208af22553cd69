"""Use cases for definitions, shared by the admin pages and the CLI: check, load, list, diff, activate."""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from blinker import Namespace
from flask import current_app, g, has_request_context
from flask_babel import gettext as _
from sqlalchemy import bindparam
from sqlalchemy.exc import IntegrityError

from ..audit.service import record_audit
from ..core.cache import ContentCache, memoize
from ..core.database import utcnow
from ..core.errors import NotFound
from ..extensions import db
from .bundle import Bundle, check_files, library_files
from .compiled import Scheme, compile_scheme
from .models import DefinitionVersion, SchemeRecord, SchemeVersion, SchemeVersionFile, scheme_version_members

if TYPE_CHECKING:
    from ..auth.models import AnyUser


def project_root() -> Path:
    return Path(current_app.config["FANGAN_ROOT"])


def check_scheme_files(files: Mapping[str, str]) -> Bundle:
    """Check a scheme's files against the built-in library; raises DefinitionsInvalid with every error."""
    return check_files(files, library_files(project_root()))


# Declared for the parts that keep something in line with the scheme in force: a receiver gets the scheme's
# key and `data` when a version is activated, and returns what it changed (org: units and areas).
signals = Namespace()
scheme_activated = signals.signal("scheme-activated")


def load_scheme(files: Mapping[str, str] | Bundle, user: AnyUser = None, note: str | None = None,
                based_on: SchemeVersion | None = None) -> tuple[SchemeVersion, bool]:
    """Check and store a scheme as immutable versions, with its files as read; return (version, created).
    Nothing is stored on error; a version is in force only once activated (until then it is a draft).

    Who may load it is the caller's question (`admin/service.py` asks it for a person; the CLI is trusted)."""
    bundle = files if isinstance(files, Bundle) else check_scheme_files(files)
    existing = _find_version(bundle)
    if existing is not None:
        return existing, False
    try:
        with db.session.begin_nested():
            members = [_store_definition(d) for d in (bundle.scheme, *bundle.members)]
            version = SchemeVersion(scheme_key=bundle.id, content_hash=bundle.hash, name=bundle.scheme.name,
                                    loaded_by_id=getattr(user, "id", None), note=note, members=members,
                                    files_hash=bundle.files_hash, based_on_id=based_on.id if based_on else None,
                                    files=[SchemeVersionFile(path=path, content=data) for path, data in bundle.files])
            db.session.add(version)
            if db.session.get(SchemeRecord, bundle.id) is None:
                db.session.add(SchemeRecord(key=bundle.id))
            db.session.flush()
    except IntegrityError:
        # Someone loaded the same content at the same moment: the unique keys kept one copy; use it.
        existing = _find_version(bundle)
        if existing is None:
            raise
        return existing, False
    record_audit("scheme.load", "scheme_version", version.id, user=user, scheme_key=bundle.id,
                 after={"hash": bundle.hash, "definitions": [f"{m.kind}:{m.key}:{m.short_hash}" for m in members]})
    return version, True


def _find_version(bundle: Bundle) -> SchemeVersion | None:
    return db.session.scalar(db.select(SchemeVersion).filter_by(scheme_key=bundle.id, content_hash=bundle.hash,
                                                                files_hash=bundle.files_hash))


def existing_key(key: str) -> str | None:
    """The scheme's key if it is stored already (who may load a new one is asked without a key)."""
    return key if db.session.get(SchemeRecord, key) is not None else None


def _store_definition(definition: Any) -> DefinitionVersion:
    found = db.session.scalar(db.select(DefinitionVersion).filter_by(
        kind=definition.kind, key=definition.id, content_hash=definition.hash))
    if found is not None:
        return found
    row = DefinitionVersion(kind=definition.kind, key=definition.id, content_hash=definition.hash,
                            data=definition.data, file=definition.file, source=definition.text)
    db.session.add(row)
    return row


def get_scheme_version(version_id: int) -> SchemeVersion:
    version = db.session.get(SchemeVersion, version_id)
    if version is None:
        raise NotFound(_("No scheme version %(id)s.", id=version_id))
    return version


def list_scheme_versions(scheme_key: str | None = None) -> list[SchemeVersion]:
    query = db.select(SchemeVersion).order_by(SchemeVersion.scheme_key, SchemeVersion.id.desc())
    if scheme_key:
        query = query.filter_by(scheme_key=scheme_key)
    return list(db.session.scalars(query))


def list_schemes() -> list[SchemeRecord]:
    return list(db.session.scalars(db.select(SchemeRecord).order_by(SchemeRecord.key)))


def current_version(scheme_key: str) -> SchemeVersion | None:
    record = db.session.get(SchemeRecord, scheme_key)
    return record.current_version if record else None


@dataclass(frozen=True)
class DefinitionRef:
    """A stored definition as plain data. `data` is shared between requests: read it, never change it."""

    id: int
    kind: str
    key: str
    content_hash: str
    data: dict

    @property
    def short_hash(self) -> str:
        return self.content_hash[:10]


@dataclass(frozen=True)
class CurrentScheme:
    """The definitions of the scheme version in force, as plain data."""

    version_id: int
    members: dict[tuple[str, str], DefinitionRef]

    @property
    def scheme(self) -> DefinitionRef:
        return next(m for m in self.members.values() if m.kind == "scheme")

    @property
    def compiled(self) -> Scheme:
        """The scheme definition, compiled: frozen, typed, defaults applied (made once per content)."""
        return compiled_scheme(self.scheme)

    def member(self, kind: str, key: str) -> DefinitionRef | None:
        return self.members.get((kind, key))

    @functools.cached_property
    def by_id(self) -> dict[int, DefinitionRef]:
        """The members by their stored row's id (a case names the version of its workflow by id)."""
        return {m.id: m for m in self.members.values()}


# Definition content by (kind, key, content hash). Stored definitions never change, so this holds across
# requests (and databases); only which version is current is read again, once a request.
_CONTENT = ContentCache(maxsize=4096)


def current_scheme(scheme_key: str) -> CurrentScheme | None:
    """The definitions in force in a scheme: one small query (cached per request), content from memory."""
    cache = g.setdefault("_current_scheme", {}) if has_request_context() else {}
    if scheme_key in cache:
        return cache[scheme_key]
    rows = db.session.execute(_members_in_force(), {"scheme_key": scheme_key}).all()
    content = _CONTENT.get_many((row.kind, row.key, row.content_hash) for row in rows)
    missing = [row.id for row in rows if (row.kind, row.key, row.content_hash) not in content]
    if missing:
        loaded = dict(db.session.execute(db.select(DefinitionVersion.id, DefinitionVersion.data)
                                         .where(DefinitionVersion.id.in_(missing))).all())
        fresh = {(row.kind, row.key, row.content_hash): loaded[row.id] for row in rows if row.id in loaded}
        _CONTENT.put_many(fresh)
        content.update(fresh)
    current = CurrentScheme(rows[0].current_version_id, {
        (row.kind, row.key): DefinitionRef(row.id, row.kind, row.key, row.content_hash,
                                           content[(row.kind, row.key, row.content_hash)])
        for row in rows}) if rows else None
    cache[scheme_key] = current
    return current


@functools.cache
def _members_in_force() -> Any:
    # Asked on every request: built once, with the district as a parameter.
    return (db.select(SchemeRecord.current_version_id, DefinitionVersion.id, DefinitionVersion.kind,
                      DefinitionVersion.key, DefinitionVersion.content_hash)
            .join(scheme_version_members,
                  scheme_version_members.c.scheme_version_id == SchemeRecord.current_version_id)
            .join(DefinitionVersion, DefinitionVersion.id == scheme_version_members.c.definition_version_id)
            .where(SchemeRecord.key == bindparam("scheme_key")))


def _forget_current(scheme_key: str) -> None:
    """A version became current within this request: read it again."""
    if has_request_context():
        g.get("_current_scheme", {}).pop(scheme_key, None)
        g.pop("_scopes", None)


# Compiled schemes by content hash: compiled once, shared by every request (nothing can change them).
_COMPILED = ContentCache(maxsize=256)


def compiled_scheme(ref: DefinitionRef | DefinitionVersion) -> Scheme:
    """A stored scheme definition, compiled (once per content)."""
    found = _COMPILED.get_many([ref.content_hash])
    if found:
        return found[ref.content_hash]
    scheme = compile_scheme(ref.data, ref.content_hash)
    _COMPILED.put_many({ref.content_hash: scheme})
    return scheme


def scheme_in_force(scheme_key: str) -> Scheme | None:
    """The scheme in force in a district, compiled: frozen, typed, defaults applied; None for no such district."""
    current = current_scheme(scheme_key)
    return compiled_scheme(current.scheme) if current else None


def scheme_or_404(scheme_key: str) -> Scheme:
    """The scheme in force in the district (compiled), or NotFound."""
    scheme = scheme_in_force(scheme_key)
    if scheme is None:
        raise NotFound(_("No such district."))
    return scheme


def activate_scheme_version(version_id: int, user: AnyUser = None) -> SchemeVersion:
    """Make a version current and bring what follows it (the unit tree and scheme areas) in line with it."""
    if not scheme_activated.receivers:
        # Nothing would bring the units in line: refuse rather than activate half a scheme.
        raise RuntimeError("nothing answers scheme_activated: import server.builtins first (create_app does)")
    version = get_scheme_version(version_id)
    record = db.session.get(SchemeRecord, version.scheme_key)
    before = {"version": record.current_version_id}
    record.current_version = version
    version.activated_at = utcnow()
    db.session.flush()
    _forget_current(version.scheme_key)
    changes: dict[str, Any] = {}
    data = compiled_scheme(version.scheme_definition).data
    for _receiver, changed in scheme_activated.send(version.scheme_key, data=data):
        changes.update(changed or {})
    db.session.flush()
    _forget_current(version.scheme_key)
    record_audit("scheme.activate", "scheme_version", version.id, user=user, scheme_key=version.scheme_key,
                 before=before, after={"version": version.id, "hash": version.content_hash, "org": changes})
    return version


@dataclass(frozen=True)
class DefinitionDiff:
    kind: str
    key: str
    status: str  # added | removed | changed | same
    old_file: str | None
    new_file: str | None
    lines: tuple[str, ...]


def diff_scheme_versions(old: SchemeVersion | None, new: SchemeVersion) -> list[DefinitionDiff]:
    """Per-definition unified diffs of the source text between two scheme versions."""
    old_members = {(m.kind, m.key): m for m in (old.members if old else [])}
    new_members = {(m.kind, m.key): m for m in new.members}
    out = []
    for key in sorted(old_members.keys() | new_members.keys()):
        a, b = old_members.get(key), new_members.get(key)
        if a is not None and b is not None and a.content_hash == b.content_hash:
            out.append(DefinitionDiff(*key, "same", a.file, b.file, ()))
            continue
        status = "added" if a is None else "removed" if b is None else "changed"
        lines = tuple(difflib.unified_diff(
            (a.source if a else "").splitlines(), (b.source if b else "").splitlines(),
            fromfile=f"{a.file} ({a.short_hash})" if a else "/dev/null",
            tofile=f"{b.file} ({b.short_hash})" if b else "/dev/null", lineterm="", n=3))
        out.append(DefinitionDiff(*key, status, a.file if a else None, b.file if b else None, lines))
    return out


def categories_within(scheme_key: str, ids: list[str] | tuple[str, ...]) -> list[str]:
    """The categories named and every category below them: a metric naming a major class counts its minor
    classes (cases carry the category they were reported under, usually a leaf)."""
    wanted, out = set(ids), []

    def walk(items: list[dict], inside: bool) -> None:
        for item in items:
            here = inside or item["id"] in wanted
            if here:
                out.append(item["id"])
            walk(item.get("children", []), here)

    walk(scheme_categories(scheme_key), False)
    return sorted(set(out) | wanted)


def scheme_categories(scheme_key: str) -> list[dict]:
    """The categories in force: the scheme's category lists extended by its own categories (shared: read only)."""
    from .bundle import merge_categories

    return _categories(scheme_key, merge_categories, ())


def scheme_picker_categories(scheme_key: str) -> list[dict]:
    """The categories pickers offer: `scheme_categories` without the lists' ones the district's own stand for."""
    from .bundle import picker_categories

    return _categories(scheme_key, picker_categories, ("picker",))


def _categories(scheme_key: str, merge: Callable[[list, list], list[dict]], kind: tuple) -> list[dict]:
    """The scheme's own categories and its lists', put together by `merge`, kept by their content hashes."""
    current = current_scheme(scheme_key)
    if current is None:
        return []
    scheme = current.compiled
    lists = [row for row in (current.member("category_list", i) for i in scheme.category_lists) if row]
    return derived((*categories_key(scheme_key), *kind), lambda: merge(scheme.data.get("categories", []),
                                                                       [row.data["categories"] for row in lists]))


def categories_key(scheme_key: str) -> tuple:
    """The content hashes a scheme's categories come from: a key for data derived from them."""
    current = current_scheme(scheme_key)
    if current is None:
        return ("categories",)
    lists = (current.member("category_list", i) for i in current.compiled.category_lists)
    return ("categories", current.scheme.content_hash, *(row.content_hash for row in lists if row))


def derived(key: tuple, make: Callable[[], Any]) -> Any:
    """Data made from definitions, kept by `key` (which must name the content hashes it comes from: stored
    definitions never change, so neither does what is made from them)."""
    return _derived(key, make)


@memoize(1024, key=lambda key, make: key)
def _derived(key: tuple, make: Callable[[], Any]) -> Any:
    return make()
