"""Places imported from a map file (GeoJSON, KML, a zipped shapefile): each feature becomes a row of the
organisation import's `areas` sheet and is checked as one, by its number in the file, before anything is
written; the preview shows every row with its problems and the shapes on a map, and the import itself is the
organisation import's job, on those rows.

A feature whose key is a place the district has updates that place's shape (and its name, when the file
gives one), keeping the rest as it is; any other key adds a place of the kind and under the parent chosen
(or those its properties name).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flask_babel import gettext as _

from ..auth import permissions
from ..core.errors import PermissionDenied
from ..core.spreadsheets import write_csv
from ..definitions.clock import district_today
from .geofiles import Feature, read_places
from .service import org_index, scheme_or_404
from .spreadsheet import COLUMNS, Table, _area_rows, check_import, org_sheet

if TYPE_CHECKING:
    from ..auth.models import AnyUser

KEY_PROPERTIES = ("key", "id", "code", "编码", "编号")
NAME_PROPERTIES = ("name_zh", "name", "名称", "道路名称", "路名")


@dataclass
class PlaceRow:
    """A feature as the import would take it: its row of the `areas` sheet, and what is wrong with it."""

    number: int
    row: dict[str, Any]
    geometry: dict[str, Any] | None
    existing: bool
    problems: list[str] = field(default_factory=list)


@dataclass
class PlacesPreview:
    """A map file read and checked: its format, each feature as a row with its problems, and the rows as the
    `areas` sheet (CSV) the import takes."""

    format: str
    rows: list[PlaceRow]
    csv: bytes  # the rows as the `areas` sheet, for the import

    @property
    def problems(self) -> int:
        return sum(1 for r in self.rows if r.problems)


def _property(properties: dict[str, Any], wanted: str | None, names: tuple[str, ...]) -> str:
    """The value of the property asked for, else of the first usual name (case aside)."""
    folded = {str(k).casefold(): v for k, v in properties.items()}
    for name in ((wanted,) if wanted else names):
        value = folded.get(name.casefold())
        if value not in (None, ""):
            return str(value).strip()
    return ""


def preview_places(user: AnyUser, scheme_key: str, data: bytes, filename: str, *, kind: str = "",
                   parent: str = "", key_property: str = "", name_property: str = "") -> PlacesPreview:
    """Read a map file and check each of its features as a row of the `areas` sheet (nothing is written)."""
    if not permissions.can_import_org(user, scheme_key):
        raise PermissionDenied(_("You may not import this district's organisation."))
    scheme = scheme_or_404(scheme_key).data
    fmt, features = read_places(data, filename)
    columns = COLUMNS["areas"]
    existing = {row[0]: dict(zip(columns, row, strict=True)) for row in _area_rows(scheme_key)}
    rows = [_row(feature, existing, kind, parent, key_property, name_property) for feature in features]
    table = Table("areas", list(columns), [(r.number, r.row) for r in rows])
    _plan, errors = check_import({"areas": table}, scheme, org_index(scheme_key), {}, set(),
                                 district_today(scheme_key))
    by_number = {r.number: r for r in rows}
    for error in errors:
        if error.row in by_number:
            by_number[error.row].problems.append(f"{error.column}: {error.message}" if error.column else error.message)
    for row, feature in zip(rows, features, strict=True):
        if feature.problem:
            row.problems.insert(0, f"geometry: {feature.problem}")
    sheet = org_sheet("areas", [[r.row.get(c, "") for c in columns] for r in rows], as_text=True)
    return PlacesPreview(fmt, rows, write_csv(sheet))


def _row(feature: Feature, existing: dict[str, dict[str, Any]], kind: str, parent: str, key_property: str,
         name_property: str) -> PlaceRow:
    properties = feature.properties
    key = _property(properties, key_property, KEY_PROPERTIES)
    name = _property(properties, name_property, NAME_PROPERTIES)
    known = existing.get(key)
    row = dict(known) if known else {
        "key": key, "kind": _property(properties, None, ("kind",)) or kind,
        "parent": _property(properties, None, ("parent",)) or parent, "unit": _property(properties, None, ("unit",)),
        "name_zh": name, "active": "yes"}
    if known and name:
        row["name_zh"] = name
    row["geometry"] = json.dumps(feature.geometry, ensure_ascii=False, separators=(",", ":")) if feature.geometry \
        else (row.get("geometry") or "" if feature.problem else "")
    return PlaceRow(feature.number, row, feature.geometry, known is not None)
