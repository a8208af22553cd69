"""Scheme management for people: load and activate a scheme once `auth/permissions.py` says they may.

`definitions` stores and activates without asking (it is the language and its store, below `auth`); the CLI,
run by whoever runs the server, calls it directly.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask_babel import gettext as _

from ..auth import permissions
from ..core.errors import PermissionDenied
from ..definitions import drafts
from ..definitions import service as definitions
from ..definitions.bundle import check_files, library_files, read_folder
from ..definitions.errors import DefinitionError, DefinitionsInvalid
from ..definitions.loader import parse_text
from ..definitions.models import SchemeVersion
from ..definitions.rewrite import rewrite_source
from ..extensions import db
from ..web.i18n import tr

if TYPE_CHECKING:
    from ..auth.models import AnyUser

# The kinds with an editor of their own (static/js/editors.js draws each); every kind has the source editor.
EDITORS = frozenset({"scheme", "patrol_rules", "form", "score_sheet", "workflow", "category_list", "board"})


def load_scheme(files: Mapping[str, str], user: AnyUser, note: str | None = None) -> tuple[SchemeVersion, bool]:
    """Check and store a scheme as a new version, if the user may load it; return (version, created)."""
    bundle = definitions.check_scheme_files(files)
    if not permissions.can_load_scheme(user, definitions.existing_key(bundle.id)):
        raise PermissionDenied(_("You may not load this scheme."))
    return definitions.load_scheme(bundle, user, note=note)


def _may_change(user: AnyUser, version: SchemeVersion) -> None:
    if not permissions.can_load_scheme(user, definitions.existing_key(version.scheme_key)):
        raise PermissionDenied(_("You may not change this scheme."))


def save_definition(user: AnyUser, version: SchemeVersion, kind: str, key: str, data: dict,
                    note: str | None = None) -> tuple[SchemeVersion, bool]:
    """Write an edited definition into its file (keeping the rest of the file as it is) and store the result as
    a draft on top of `version`."""
    _may_change(user, version)
    source = drafts.definition_file(version, kind, key)
    return drafts.store_draft(version, {source.path: drafts.rewritten(source, data)}, user, note)


def save_scheme_file(user: AnyUser, version: SchemeVersion, path: str, data: bytes,
                     note: str | None = None) -> tuple[SchemeVersion, bool]:
    """Store `version` with one file replaced or added (an edited source, an uploaded file) as a draft."""
    _may_change(user, version)
    return drafts.store_draft(version, {path: data}, user, note)


def shipped_templates() -> dict[str, Any]:
    """The shipped schemes a new district may start from: folder name → the scheme's name."""
    folder = definitions.project_root() / "schemes"
    out = {}
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        files = {p.name: p.read_bytes() for p in path.glob("*.y*ml")} if path.is_dir() else {}
        found = drafts.defined_in(files)
        scheme = next((p for (kind, _key), p in found.items() if kind == "scheme"), None)
        if scheme is not None:
            out[path.name] = parse_text(scheme, files[scheme].decode("utf-8")).data.get("name", path.name)
    return out


def start_scheme(user: AnyUser, template: str, key: str, name: Any, short_name: Any) -> SchemeVersion:
    """A new district's first version: a shipped scheme's files, with the new district's id and names (a draft)."""
    if not permissions.can_load_scheme(user, None):
        raise PermissionDenied(_("You may not start a new district."))
    if template not in shipped_templates():
        raise DefinitionsInvalid([DefinitionError("(template)", 1, "", _("No such template."))])
    if definitions.existing_key(key) is not None:
        raise DefinitionsInvalid([DefinitionError("(new)", 1, "id", _("A district with the id %(key)s exists already.",
                                                                      key=key))])
    read = read_folder(definitions.project_root() / "schemes" / template)
    files = {path: data for path, data in read.raw.values()}
    path = next(p for (kind, _key), p in drafts.defined_in(files).items() if kind == "scheme")
    text = files[path].decode("utf-8")
    old = parse_text(path, text).data
    data = {k: v for k, v in old.items() if k not in ("issued_by", "issued_on")}  # the template's document
    files[path] = rewrite_source(text, {**data, "id": key, "name": name, "short_name": short_name}).encode("utf-8")
    # The template's own names, written in its boards, sheets and descriptions, become the new district's.
    for before, after in _renames(old, name, short_name):
        files = {p: f.decode("utf-8").replace(before, after).encode("utf-8") for p, f in files.items()}
    bundle = check_files(drafts.as_texts(files), library_files(definitions.project_root()))
    version, _created = definitions.load_scheme(bundle, user, note=_("Started from the template %(name)s",
                                                                     name=template))
    return version


def _renames(old: dict, name: Any, short_name: Any) -> list[tuple[str, str]]:
    """(template's text, new district's) for each language of the names, longest first (a short name is
    usually inside the full one)."""
    pairs = []
    for before, after in ((old.get("name"), name), (old.get("short_name"), short_name)):
        for lang in ("zh", "en"):
            was = before.get(lang) if isinstance(before, dict) else before if lang == "zh" else None
            now = after.get(lang) if isinstance(after, dict) else after if lang == "zh" else None
            if isinstance(was, str) and isinstance(now, str) and was.strip() and now.strip() and was != now:
                pairs.append((was, now))
    return sorted(pairs, key=lambda pair: -len(pair[0]))


def units_named_elsewhere(data: dict) -> list[str]:
    """The units a scheme names outside its `units` and `areas` (routing, unit groups…): a sheet that replaces
    the units should keep these keys."""
    found: set[str] = set()

    def walk(node: Any, key: str | None = None) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, k)
        elif isinstance(node, list):
            for item in node:
                walk(item, key)
        elif isinstance(node, str) and key in ("unit", "units"):
            found.add(node)

    walk({k: v for k, v in data.items() if k not in ("units", "areas")})
    return sorted(found)


def apply_org_sheets(user: AnyUser, version: SchemeVersion, data: bytes, filename: str) -> tuple[SchemeVersion, bool]:
    """The scheme's units and areas replaced by those of an organisation workbook's `units` and `areas` sheets."""
    from ..org.spreadsheet import ImportInvalid, SheetError, read_upload, scheme_units_and_areas

    _may_change(user, version)
    tables, problems = read_upload(data, filename)
    scheme = version.scheme_definition.data
    units, areas, more = scheme_units_and_areas(tables, scheme)
    if problems or more:
        raise ImportInvalid([*problems, *more])
    if units is None and areas is None:
        raise ImportInvalid([SheetError(filename, None, None, _("The file has neither a units nor an areas sheet."))])
    source = drafts.definition_file(version, "scheme", version.scheme_key)
    changed = dict(source.data)
    if units is not None:
        changed["units"] = units
    if areas is not None:
        changed["areas"] = areas
    return drafts.store_draft(version, {source.path: drafts.rewritten(source, changed)}, user,
                              _("Units and areas from %(file)s", file=filename))


@dataclass(frozen=True)
class DryRunRow:
    unit: str
    total: Any
    grade: str | None
    rank: int | None
    before: Any = None  # the score the sheet as it is in the version gives


def dry_run_sheet(user: AnyUser, version: SchemeVersion, data: dict, day: dt.date) -> tuple[Any, list[DryRunRow]]:
    """An edited score sheet tried on the period holding `day`, beside the sheet as it is in the version: the
    district's data, and the assessors' marks when that period was assessed; nothing is stored. The edited sheet
    is checked with the version first (DefinitionsInvalid)."""
    from ..assessment import engine as assessment_engine
    from ..assessment import scoring

    _may_change(user, version)
    source = drafts.definition_file(version, "score_sheet", str(data.get("id")))
    drafts.check_draft(version, {source.path: drafts.rewritten(source, data)})
    sheet = assessment_engine.sheet_spec(data)
    period = scoring.period_of(sheet, day)
    member = version.member("score_sheet", sheet.id)
    before = ({_unit_name(r): r.total for r in _tried(version, scoring.sheet_spec_of_row(member), period)}
              if member is not None else {})
    rows = [DryRunRow(_unit_name(r), r.total, tr(r.grade.name) if r.grade is not None else None,
                      min(r.ranks.values(), default=None), before.get(_unit_name(r)))
            for r in _tried(version, sheet, period)]
    return period, sorted(rows, key=lambda r: (-r.total, r.unit))


def _unit_name(result: Any) -> str:
    return tr(result.unit.name) if hasattr(result.unit, "name") else str(result.unit)


def _tried(version: SchemeVersion, sheet: Any, period: Any) -> list:
    from ..assessment import scoring
    from ..assessment.models import AssessmentPeriod
    from ..assessment.service import draft

    stored = db.session.scalar(db.select(AssessmentPeriod).filter_by(
        scheme_key=version.scheme_key, sheet_key=sheet.id, starts_on=period.start))
    if stored is not None:
        return draft(stored, sheet=sheet)
    return scoring.score_units(version.scheme_key, sheet, period,
                               scoring.assessed_units(version.scheme_key, sheet, period))


def activate_scheme_version(version_id: int, user: AnyUser) -> SchemeVersion:
    """Put a stored version in force, if the user may load its scheme."""
    version = definitions.get_scheme_version(version_id)
    if not permissions.can_load_scheme(user, definitions.existing_key(version.scheme_key)):
        raise PermissionDenied(_("You may not activate this scheme."))
    return definitions.activate_scheme_version(version_id, user)
