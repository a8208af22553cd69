"""Units, areas and posts to and from a spreadsheet: one XLSX workbook, or one CSV per sheet.

The workbook has the sheets `units`, `areas` and `posts`, each with a header row of column ids (`COLUMNS`).
Export writes exactly what import reads, so exporting and importing again changes nothing. Import reads
every row of every sheet and checks it against the scheme and the database before writing anything: each
problem is named by sheet, row (as the spreadsheet numbers it) and column, and one problem means nothing
is written. Units and areas are matched by key and created or updated; a post row is matched with the
latest post of its tier over its area (or unit): the same holder updates that post, another is appointed,
which ends the previous post the day before and keeps it as history.

The first half of this module is pure (bytes in, values and problems out); `import_org` and `export_org`
at the end touch the database.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import warnings
import zipfile
from collections.abc import Callable, Container, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flask_babel import gettext as _

from ..core.errors import DomainError
from ..core.spreadsheets import CSV_TYPE, XLSX_TYPE, restore, write_csv, write_xlsx
from ..definitions.clock import district_today
from .engine import (
    AreaValues,
    Node,
    OrgIndex,
    PostState,
    PostValues,
    Problems,
    UnitValues,
    area_problems,
    parse_geometry,
    plan_post,
    post_problems,
    several_tiers,
    text_of,
    text_parts,
    tier_problems,
    unit_problems,
)

if TYPE_CHECKING:
    from ..auth.models import AnyUser

SHEETS = ("units", "areas", "posts")
COLUMNS: dict[str, tuple[str, ...]] = {
    "units": ("key", "kind", "parent", "name_zh", "name_en", "difficulty", "active"),
    "areas": ("key", "kind", "parent", "unit", "name_zh", "name_en", "from_zh", "from_en", "to_zh", "to_en",
              "length_m", "geometry", "description_zh", "description_en", "active"),
    "posts": ("tier", "area", "unit", "holder_name", "username", "title", "phone", "duties", "started_on",
              "ended_on"),
}
REQUIRED: dict[str, tuple[str, ...]] = {
    "units": ("key", "kind"), "areas": ("key", "kind"), "posts": ("tier", "holder_name"),
}
# Where each checked field of `engine` is written in a sheet.
FIELD_COLUMNS = {"name": "name_zh", "from": "from_zh", "to": "to_zh"}

MAX_IMPORT_BYTES = 10 * 1024 * 1024
MAX_UNZIPPED_BYTES = 200 * 1024 * 1024  # a zip bomb stops here, before openpyxl reads it
MAX_ROWS = 20_000
MAX_ERRORS = 200  # listed problems; past this, a count of the rest
TRUE_WORDS = {"yes", "y", "true", "1", "是", "启用"}
FALSE_WORDS = {"no", "n", "false", "0", "否", "停用"}


@dataclass(frozen=True)
class SheetError:
    """One problem of an import: sheet, row as the spreadsheet numbers it (1 is the header), column id."""

    sheet: str
    row: int | None
    column: str | None
    message: str

    def __str__(self) -> str:
        where = self.sheet + (f" row {self.row}" if self.row else "") + (f", {self.column}" if self.column else "")
        return f"{where}: {self.message}"


class ImportInvalid(DomainError):
    def __init__(self, errors: list[SheetError]):
        super().__init__(_("The spreadsheet has %(num)s problems; nothing was changed.", num=len(errors)))
        self.errors = errors


@dataclass
class Table:
    """One sheet as read: its column ids and its non-empty rows as (row number, {column: raw value})."""

    sheet: str
    columns: list[str] = field(default_factory=list)
    rows: list[tuple[int, dict[str, Any]]] = field(default_factory=list)


# -- reading bytes ----------------------------------------------------------------------------------------------

def _name(filename: str) -> str:
    return (filename or "").replace("\\", "/").rsplit("/", 1)[-1]


def upload_kind(data: bytes, filename: str, sheet: str | None = None) -> tuple[str | None, list[SheetError]]:
    """What an upload is, told by its content rather than its name: "xlsx", or the sheet a CSV file is; or the
    problem that stops it being read at all (its size, its type, a CSV file that is not UTF-8 or names no sheet).
    Quick: the import page asks it before the import is queued."""
    name = _name(filename)
    if len(data) > MAX_IMPORT_BYTES:
        return None, [SheetError(name, None, None, _("The file is larger than %(mb)s MB.",
                                                     mb=MAX_IMPORT_BYTES // (1024 * 1024)))]
    if not data:
        return None, [SheetError(name, None, None, _("The file is empty."))]
    if data[:4] == b"PK\x03\x04":
        problem = _zip_problem(data, name)
        return (None, [problem]) if problem else ("xlsx", [])
    if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" or name.lower().endswith((".xls", ".xlsx", ".ods")):
        return None, [SheetError(name, None, None, _("Save the workbook as an Excel .xlsx file, or as CSV UTF-8."))]
    stem = name.rsplit(".", 1)[0].lower()
    sheet = sheet or (stem if stem in SHEETS else None)
    if sheet not in SHEETS:
        return None, [SheetError(name, None, None, _("Say which sheet this CSV file is: %(sheets)s.",
                                                     sheets=", ".join(SHEETS)))]
    try:
        data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None, [SheetError(sheet, None, None, _("The CSV file is not UTF-8 text: save it as CSV UTF-8."))]
    return sheet, []


def _zip_problem(data: bytes, name: str) -> SheetError | None:
    """Why a zip file is no workbook to read (not one, damaged, a zip bomb), from its directory alone."""
    unreadable = SheetError(name, None, None, _("This is not an Excel .xlsx workbook, or it is damaged."))
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
            names = {i.filename for i in infos}
            if "[Content_Types].xml" not in names or "xl/workbook.xml" not in names:
                return unreadable
            if sum(i.file_size for i in infos) > MAX_UNZIPPED_BYTES:
                return SheetError(name, None, None, _("The workbook is too large once unpacked."))
    except (zipfile.BadZipFile, OSError):
        return unreadable
    return None


def read_upload(data: bytes, filename: str, sheet: str | None = None) -> tuple[dict[str, Table], list[SheetError]]:
    """The sheets of an uploaded .xlsx, or of one .csv (`sheet`, else its file name, says which sheet)."""
    kind, problems = upload_kind(data, filename, sheet)
    if problems:
        return {}, problems
    return read_xlsx(data, _name(filename)) if kind == "xlsx" else read_csv(data, kind)


def read_xlsx(data: bytes, name: str = "workbook.xlsx") -> tuple[dict[str, Table], list[SheetError]]:
    import openpyxl

    unreadable = [SheetError(name, None, None, _("This is not an Excel .xlsx workbook, or it is damaged."))]
    problem = _zip_problem(data, name)
    if problem is not None:
        return {}, [problem]
    tables: dict[str, Table] = {}
    errors: list[SheetError] = []
    try:
        with warnings.catch_warnings():
            # openpyxl warns about Excel features it drops (data validation, styles); none matter here.
            warnings.simplefilter("ignore")
            book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
            try:
                for worksheet in book.worksheets:
                    sheet = str(worksheet.title).strip().lower()
                    if sheet in SHEETS and sheet not in tables:
                        rows = ([restore(c) if isinstance(c, str) else c for c in row]
                                for row in worksheet.iter_rows(values_only=True))
                        tables[sheet] = _table(sheet, rows, errors)
            finally:
                book.close()
    except Exception:  # noqa: BLE001 - whatever openpyxl trips on, the uploader's problem is the same
        return {}, unreadable
    if not tables:
        errors.append(SheetError(name, None, None, _("The workbook has none of the sheets %(sheets)s.",
                                                     sheets=", ".join(SHEETS))))
    return tables, errors


def read_csv(data: bytes, sheet: str) -> tuple[dict[str, Table], list[SheetError]]:
    """One sheet from UTF-8 CSV (a byte-order mark is fine), undoing the export's formula guard."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return {}, [SheetError(sheet, None, None, _("The CSV file is not UTF-8 text: save it as CSV UTF-8."))]
    errors: list[SheetError] = []
    try:
        rows = [[restore(cell) for cell in row] for row in csv.reader(io.StringIO(text, newline=""))]
    except csv.Error as error:
        return {}, [SheetError(sheet, None, None, _("The CSV file cannot be read: %(reason)s", reason=str(error)))]
    return {sheet: _table(sheet, rows, errors)}, errors


def _table(sheet: str, rows: Iterable[Iterable[Any]], errors: list[SheetError]) -> Table:
    from openpyxl.utils import get_column_letter

    table = Table(sheet)
    keys: list[str | None] = []
    headless: set[int] = set()
    for number, raw in enumerate(rows, start=1):
        cells = list(raw)
        if number == 1:
            keys = _header(sheet, cells, errors)
            table.columns = [k for k in keys if k and k != _REPORTED]
            if not any(keys):
                if any(not _blank(c) for row in rows for c in row):
                    errors.append(SheetError(sheet, 1, None, _("The first row must name the columns: %(columns)s.",
                                                               columns=", ".join(COLUMNS[sheet]))))
                return table
            continue
        if number > MAX_ROWS + 1:
            errors.append(SheetError(sheet, number, None, _("At most %(num)s rows in a sheet.", num=MAX_ROWS)))
            break
        if all(_blank(c) for c in cells):
            continue
        row: dict[str, Any] = {}
        for i, value in enumerate(cells):
            if _blank(value):
                continue
            key = keys[i] if i < len(keys) else None
            if key == _REPORTED:
                continue
            if key is None:
                if i not in headless:  # once per column: a column of notes is one problem, not thousands
                    headless.add(i)
                    errors.append(SheetError(sheet, number, get_column_letter(i + 1),
                                             _("A value in a column without a header.")))
            else:
                row[key] = value
        table.rows.append((number, row))
    return table


_REPORTED = "\0"  # a header already reported as wrong: its values are not reported again


def _header(sheet: str, cells: list[Any], errors: list[SheetError]) -> list[str | None]:
    """Column ids of a header row; None for a blank header."""
    keys: list[str | None] = []
    for value in cells:
        key = _text(value).lower() or None
        if key is not None and key not in COLUMNS[sheet]:
            errors.append(SheetError(sheet, 1, key, _("Unknown column; the columns of this sheet are %(columns)s.",
                                                      columns=", ".join(COLUMNS[sheet]))))
            key = _REPORTED
        elif key is not None and key in keys:
            errors.append(SheetError(sheet, 1, key, _("This column appears twice.")))
            key = _REPORTED
        keys.append(key)
    if any(keys):
        errors.extend(SheetError(sheet, 1, column, _("This column is missing."))
                      for column in REQUIRED[sheet] if column not in keys)
    return keys


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


# -- cells to values ----------------------------------------------------------------------------------------------

class _Cell(ValueError):
    def __init__(self, column: str, message: str):
        super().__init__(message)
        self.column, self.message = column, message


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value).strip()


def _optional(row: Mapping[str, Any], column: str) -> str | None:
    return _text(row.get(column)) or None


def _int(row: Mapping[str, Any], column: str) -> int | None:
    value = row.get(column)
    if _blank(value):
        return None
    if isinstance(value, int | float) and not isinstance(value, bool) and float(value).is_integer():
        return int(value)
    text = _text(value)
    if text.lstrip("-").isdigit() and len(text) < 10:
        return int(text)
    raise _Cell(column, _("A whole number."))


def _number(row: Mapping[str, Any], column: str) -> float | None:
    value = row.get(column)
    if _blank(value):
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    try:
        return float(_text(value).replace(",", ""))
    except ValueError:
        raise _Cell(column, _("A number.")) from None


def _flag(row: Mapping[str, Any], column: str) -> bool:
    value = row.get(column)
    if _blank(value):
        return True
    if isinstance(value, bool):
        return value
    word = _text(value).lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise _Cell(column, _("yes or no."))


def _date(row: Mapping[str, Any], column: str) -> dt.date | None:
    value = row.get(column)
    if _blank(value):
        return None
    if isinstance(value, dt.datetime):
        day = value.date()
    elif isinstance(value, dt.date):
        day = value
    else:
        try:
            day = dt.date.fromisoformat(_text(value).replace("/", "-"))
        except ValueError:
            raise _Cell(column, _("A date such as 2026-03-01.")) from None
    if not dt.date(2000, 1, 1) <= day <= dt.date(2100, 12, 31):
        raise _Cell(column, _("A date such as 2026-03-01."))
    return day


def _lines(row: Mapping[str, Any], column: str) -> tuple[str, ...]:
    return tuple(line.strip() for line in _text(row.get(column)).splitlines() if line.strip())


def _parsed(sheet: str, table: Table, make: Any, errors: list[SheetError]) -> list[tuple[int, Any]]:
    out = []
    for number, row in table.rows:
        try:
            out.append((number, make(row)))
        except _Cell as cell:
            errors.append(SheetError(sheet, number, cell.column, cell.message))
    return out


def _unit_row(row: Mapping[str, Any]) -> UnitValues:
    return UnitValues(key=_text(row.get("key")), kind=_text(row.get("kind")), parent=_optional(row, "parent"),
                      name=text_of(_text(row.get("name_zh")), _text(row.get("name_en"))),
                      difficulty=_int(row, "difficulty"), active=_flag(row, "active"))


def _area_row(row: Mapping[str, Any]) -> AreaValues:
    geometry, problem = parse_geometry(_text(row.get("geometry")))
    if problem:
        raise _Cell("geometry", problem)
    return AreaValues(key=_text(row.get("key")), kind=_text(row.get("kind")), parent=_optional(row, "parent"),
                      unit=_optional(row, "unit"), name=text_of(_text(row.get("name_zh")), _text(row.get("name_en"))),
                      range_from=text_of(_text(row.get("from_zh")), _text(row.get("from_en"))),
                      range_to=text_of(_text(row.get("to_zh")), _text(row.get("to_en"))),
                      length_m=_number(row, "length_m"), geometry=geometry,
                      description=text_of(_text(row.get("description_zh")), _text(row.get("description_en"))),
                      active=_flag(row, "active"))


def _post_row(row: Mapping[str, Any]) -> PostValues:
    return PostValues(tier=_text(row.get("tier")), holder_name=_text(row.get("holder_name")),
                      area=_optional(row, "area"), unit=_optional(row, "unit"), username=_optional(row, "username"),
                      title=_optional(row, "title"), phone=_optional(row, "phone"), duties=_lines(row, "duties"),
                      started_on=_date(row, "started_on"), ended_on=_date(row, "ended_on"))


# -- a scheme's own units and areas, from the same sheets ----------------------------------------------------------

def scheme_units_and_areas(tables: Mapping[str, Table], scheme: Mapping) -> tuple[list[dict] | None,
                                                                                 list[dict] | None,
                                                                                 list[SheetError]]:
    """The `units` and `areas` sheets as the `scheme` definition would write them: trees by `parent`, each row a
    definition entry (None for a sheet not given). Every row is checked for what the tree needs (a key, a kind of
    the scheme's, a name, a known parent and unit, no loop, no key twice), all problems at once, by sheet, row and
    column; the scheme's check then does the rest, by the definition's rules."""
    errors: list[SheetError] = []
    units = areas = None
    unit_kinds = {k.get("id") for k in scheme.get("unit_kinds") or [] if isinstance(k, dict)}
    area_kinds = {k.get("id") for k in scheme.get("area_kinds") or [] if isinstance(k, dict)}
    unit_keys = _keys(scheme.get("units") or [])
    tables = {name: table for name, table in tables.items() if table.rows}  # an empty sheet says nothing
    if "units" in tables:
        rows = _parsed("units", tables["units"], _unit_row, errors)
        _known("units", rows, "kind", unit_kinds, errors)
        units = _tree("units", rows, lambda v: _entry(id=v.key, kind=v.kind, name=v.name, difficulty=v.difficulty),
                      errors)
        unit_keys = {values.key for _number, values in rows if values.active}
    if "areas" in tables:
        rows = _parsed("areas", tables["areas"], _area_row, errors)
        _known("areas", rows, "kind", area_kinds, errors)
        _known("areas", rows, "unit", unit_keys, errors)
        areas = _tree("areas", rows, lambda v: _entry(
            id=v.key, kind=v.kind, name=v.name, unit=v.unit, **{"from": v.range_from, "to": v.range_to},
            length_m=v.length_m, description=v.description, geometry=v.geometry), errors)
    return units, areas, errors


def _keys(items: list) -> set[str]:
    out: set[str] = set()
    for item in items:
        if isinstance(item, dict):
            out.add(item.get("id"))
            out |= _keys(item.get("children") or [])
    return out


def _known(sheet: str, rows: list[tuple[int, Any]], column: str, known: set, errors: list[SheetError]) -> None:
    """A row whose `column` names something the scheme does not have (a kind, a unit)."""
    for number, values in rows:
        value = getattr(values, column)
        if values.active and value and value not in known:
            errors.append(SheetError(sheet, number, column, _("%(value)s is not one of: %(known)s", value=value,
                                                              known=", ".join(sorted(k for k in known if k)))))


def _entry(**values: Any) -> dict:
    """A definition entry without its empty values; a text given only in Chinese is written plain."""
    out = {}
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, dict) and set(value) == {"zh"}:
            value = value["zh"]
        out[key] = int(value) if isinstance(value, float) and value.is_integer() else value
    return out


def _tree(sheet: str, rows: list[tuple[int, Any]], entry: Any, errors: list[SheetError]) -> list[dict]:
    nodes: dict[str, dict] = {}
    numbers: dict[str, int] = {}
    for number, values in rows:
        if not values.active:
            continue  # a retired unit or place has no place in a scheme being written
        if not values.key or not values.kind or not values.name:
            missing = "key" if not values.key else "kind" if not values.kind else "name_zh"
            errors.append(SheetError(sheet, number, missing, _("this column is required")))
            continue
        if values.key in nodes:
            errors.append(SheetError(sheet, number, "key", _("%(key)s is in the sheet twice", key=values.key)))
            continue
        nodes[values.key], numbers[values.key] = entry(values), number
    parents = {values.key: values.parent for number, values in rows if numbers.get(values.key) == number}
    roots = []
    for key, node in nodes.items():
        parent, seen = parents[key], {key}
        while parent is not None and parent in nodes and parent not in seen:
            seen.add(parent)
            parent = parents[parent]
        if parent is not None and parent in seen:
            errors.append(SheetError(sheet, numbers[key], "parent", _("the parents go round in a loop")))
        elif parents[key] is not None and parents[key] not in nodes:
            errors.append(SheetError(sheet, numbers[key], "parent", _("no row of this sheet has the key %(key)s",
                                                                       key=parents[key])))
        elif parents[key] is None:
            roots.append(node)
        else:
            nodes[parents[key]].setdefault("children", []).append(node)
    return roots


# -- checking the whole import -------------------------------------------------------------------------------------

# (tier, area key, unit key when there is no area, holder's name for a tier several people hold at once)
Slot = tuple[str, str | None, str | None, str | None]


def post_slot(values: PostValues, several: Container[str]) -> Slot:
    return (values.tier, values.area, None if values.area else values.unit,
            values.holder_name if values.tier in several else None)


@dataclass
class ImportPlan:
    """What an import will do, row by row, once every row is known to be right."""

    units: list[tuple[int, UnitValues]] = field(default_factory=list)
    areas: list[tuple[int, AreaValues]] = field(default_factory=list)
    posts: list[tuple[int, PostValues, str, PostState | None]] = field(default_factory=list)  # action, latest


def check_import(tables: Mapping[str, Table], scheme: Mapping, index: OrgIndex,
                 latest: Mapping[Slot, PostState], usernames: Container[str],
                 today: dt.date) -> tuple[ImportPlan, list[SheetError]]:
    """Check every row of every sheet against the scheme and what exists; parents may come later in a sheet."""
    errors: list[SheetError] = []
    plan = ImportPlan()

    def report(sheet: str, number: int, problems: Problems) -> None:
        errors.extend(SheetError(sheet, number, FIELD_COLUMNS.get(name, name), message)
                      for name, message in problems.items())

    def unique(sheet: str, rows: list[tuple[int, Any]], key_of: Any) -> None:
        first: dict[Any, int] = {}
        for number, values in rows:
            key = key_of(values)
            if key not in first:
                first[key] = number
            elif sheet == "posts":
                errors.append(SheetError(sheet, number, "tier", _(
                    "This tier over this area or unit is already on row %(row)s.", row=first[key])))
            else:
                errors.append(SheetError(sheet, number, "key", _("This key is already on row %(row)s.",
                                                                 row=first[key])))

    if "units" in tables:
        plan.units = _parsed("units", tables["units"], _unit_row, errors)
        unique("units", plan.units, lambda v: v.key)
    if "areas" in tables:
        plan.areas = _parsed("areas", tables["areas"], _area_row, errors)
        unique("areas", plan.areas, lambda v: v.key)
    rows = _parsed("posts", tables["posts"], _post_row, errors) if "posts" in tables else []
    several = several_tiers(scheme)
    unique("posts", rows, lambda v: post_slot(v, several))

    index = OrgIndex(units={**index.units, **{v.key: Node(v.kind, v.parent) for _, v in plan.units}},
                     areas={**index.areas, **{v.key: Node(v.kind, v.parent, v.unit) for _, v in plan.areas}})
    for number, values in plan.units:
        report("units", number, unit_problems(values, scheme, index))
    for number, values in plan.areas:
        report("areas", number, area_problems(values, scheme, index))
    for number, values in rows:
        problems = post_problems(values, scheme, index, usernames)
        if problems:
            report("posts", number, problems)
            continue
        before = latest.get(post_slot(values, several))
        action, problems = plan_post(values, before, today)
        if action == "appoint" and not problems:
            problems = tier_problems(values, scheme, index)
        report("posts", number, problems)
        plan.posts.append((number, values, action, before))
    errors.sort(key=lambda e: (SHEETS.index(e.sheet) if e.sheet in SHEETS else -1, e.row or 0))
    return plan, errors


# -- the database side ----------------------------------------------------------------------------------------------

def export_rows(scheme_key: str, sheets: tuple[str, ...] = SHEETS,
                progress: Callable[[int, int], None] | None = None) -> dict[str, list[list[Any]]]:
    """Every unit and area of a scheme, and the latest post of each tier over each area or unit: the rows of
    each sheet asked for, read one sheet after the other (`progress(sheets read, sheets + 1)` after each: the
    last step is writing the file)."""
    readers = {"units": _unit_rows, "areas": _area_rows, "posts": _post_rows}
    out = {}
    for number, sheet in enumerate(sheets, start=1):
        out[sheet] = readers[sheet](scheme_key)
        if progress is not None:
            progress(number, len(sheets) + 1)
    return out


def _unit_rows(scheme_key: str) -> list[list[Any]]:
    from ..extensions import db
    from .models import Unit

    # Held in a list: a unit's parent is then found among them, not read again.
    units = list(db.session.scalars(db.select(Unit).filter_by(scheme_key=scheme_key).order_by(Unit.path, Unit.id)))
    return [[u.key, u.kind, u.parent.key if u.parent else "", *text_parts(u.name),
             u.difficulty if u.difficulty is not None else "", "yes" if u.active else "no"] for u in units]


def _area_rows(scheme_key: str) -> list[list[Any]]:
    import json

    from sqlalchemy.orm import joinedload

    from ..extensions import db
    from .models import Area

    areas = list(db.session.scalars(db.select(Area).filter_by(scheme_key=scheme_key)
                                    .options(joinedload(Area.unit)).order_by(Area.path, Area.id)))
    return [[a.key, a.kind, a.parent.key if a.parent else "", a.unit.key if a.unit else "", *text_parts(a.name),
             *text_parts(a.range_from), *text_parts(a.range_to), _length(a.length_m),
             json.dumps(a.geometry, ensure_ascii=False, separators=(",", ":")) if a.geometry else "",
             *text_parts(a.description), "yes" if a.active else "no"] for a in areas]


def _post_rows(scheme_key: str) -> list[list[Any]]:
    from sqlalchemy.orm import joinedload

    from ..definitions.service import scheme_in_force
    from ..extensions import db
    from .models import Post

    scheme = scheme_in_force(scheme_key)
    several = scheme.several_tiers if scheme else frozenset()
    latest: dict[Slot, Any] = {}
    posts = db.session.scalars(db.select(Post).filter_by(scheme_key=scheme_key)
                               .options(joinedload(Post.area), joinedload(Post.unit), joinedload(Post.user))
                               .order_by(Post.started_on, Post.id))
    for post in posts:
        latest[_slot_of(post, several)] = post  # the last one wins
    return [[p.tier_key, p.area.key if p.area else "", p.unit.key if p.unit else "", p.holder_name,
             p.user.username if p.user else "", p.title or "", p.phone or "", "\n".join(p.duties or []),
             p.started_on, p.ended_on or ""]
            for slot, p in sorted(latest.items(), key=lambda item: tuple(k or "" for k in item[0]))]


def org_sheet(sheet: str, rows: list[list[Any]], as_text: bool = False) -> list[list[Any]]:
    """A sheet's header of column ids and its rows, every value as import reads it back (CSV: as text)."""
    return [list(COLUMNS[sheet]), *([_text(v) for v in row] if as_text else row for row in rows)]


def _length(value: float | None) -> Any:
    if value is None:
        return ""
    return int(value) if float(value).is_integer() else value


def _slot_of(post: Any, several: Container[str]) -> Slot:
    return (post.tier_key, post.area.key if post.area else None,
            None if post.area else (post.unit.key if post.unit else None),
            post.holder_name if post.tier_key in several else None)


def check_export(user: AnyUser, scheme_key: str, fmt: str = "xlsx", sheet: str | None = None) -> None:
    """Refuse an export that may not or cannot be made (before it is queued, and again when it runs)."""
    from ..auth import permissions
    from ..core.errors import PermissionDenied
    from .service import scheme_or_404

    if user is not None and not permissions.can_export_org(user, scheme_key):
        raise PermissionDenied(_("You may not export this district's organisation."))
    scheme_or_404(scheme_key)
    if fmt not in ("xlsx", "csv"):
        raise DomainError(_("Export as a workbook (.xlsx) or as CSV."))
    if fmt == "csv" and sheet not in SHEETS:
        raise DomainError(_("Say which sheet to export: %(sheets)s.", sheets=", ".join(SHEETS)))


def export_org(user: AnyUser, scheme_key: str, fmt: str = "xlsx", sheet: str | None = None,
               progress: Callable[[int, int], None] | None = None) -> tuple[bytes, str, str]:
    """(content, MIME type, file name) of the export; CSV holds one sheet. `user=None` is the command line;
    `progress` is told as each sheet is read (the page's export is a job, server/org/spreadsheet_jobs.py)."""
    check_export(user, scheme_key, fmt, sheet)
    if fmt == "csv":
        rows = export_rows(scheme_key, (sheet,), progress)
        return write_csv(org_sheet(sheet, rows[sheet], as_text=True)), CSV_TYPE, f"{scheme_key}-{sheet}.csv"
    rows = export_rows(scheme_key, SHEETS, progress)
    return write_xlsx({name: org_sheet(name, rows[name]) for name in SHEETS}), XLSX_TYPE, f"{scheme_key}-org.xlsx"


@dataclass
class ImportResult:
    counts: dict[str, int]
    rows: list[tuple[str, int, str, str]] = field(default_factory=list)  # (sheet, row, what, what became of it)

    def summary(self) -> str:
        c = self.counts
        return _("Imported: %(units)s units and %(areas)s areas added, %(changed)s changed, %(posts)s people "
                 "appointed, %(posts_changed)s posts changed, %(same)s rows unchanged.",
                 units=c["units_created"], areas=c["areas_created"], changed=c["units_updated"] + c["areas_updated"],
                 posts=c["posts_appointed"], posts_changed=c["posts_updated"], same=c["unchanged"])

    def report(self) -> bytes:
        """What became of each row, as a workbook: the import's result for the person who asked."""
        header = [_("Sheet"), _("Row"), _("Key"), _("Result")]
        return write_xlsx({"report": [header, *([sheet, number, what, done] for sheet, number, what, done
                                                 in self.rows)]})


def problem_lines(errors: list[SheetError]) -> list[str]:
    """Each problem of an import on one line, where it is first: sheet, row, column."""
    lines = []
    for e in errors:
        where = ", ".join([e.sheet, *([_("row %(n)s", n=e.row)] if e.row else []), *([e.column] if e.column else [])])
        lines.append(" ".join(f"{where}: {e.message}".split()))  # one line, whatever a header held
    return lines


def import_org(user: AnyUser, scheme_key: str, data: bytes, filename: str, sheet: str | None = None,
               today: dt.date | None = None, progress: Callable[[int, int], None] | None = None) -> ImportResult:
    """Check a whole upload, then write all of it or nothing. `user=None` is the command line.

    `progress` is told when the file is read (1 of 3) and when every row is checked (2 of 3), before anything is
    written (the page's import is a job, server/org/spreadsheet_jobs.py, whose progress commits)."""
    from ..auth import permissions
    from ..auth.models import User
    from ..core.errors import PermissionDenied
    from ..extensions import db
    from .models import Post
    from .posts import post_state
    from .service import org_index, scheme_or_404

    if user is not None and not permissions.can_import_org(user, scheme_key):
        raise PermissionDenied(_("You may not import this district's organisation."))
    scheme = scheme_or_404(scheme_key).data
    today = today or district_today(scheme_key)
    tables, errors = read_upload(data, filename, sheet)
    if progress is not None:
        progress(1, 3)
    latest: dict[Slot, PostState] = {}
    for post in db.session.scalars(db.select(Post).filter_by(scheme_key=scheme_key).order_by(Post.started_on,
                                                                                              Post.id)):
        latest[_slot_of(post, several_tiers(scheme))] = post_state(post)
    names = {_text(r.get("username")) for t in tables.values() if t.sheet == "posts" for _, r in t.rows}
    usernames = set(db.session.scalars(db.select(User.username).where(User.username.in_(names - {""})))) \
        if names - {""} else set()
    plan, problems = check_import(tables, scheme, org_index(scheme_key), latest, usernames, today)
    errors += problems
    if len(errors) > MAX_ERRORS:
        rest = len(errors) - MAX_ERRORS
        errors = [*errors[:MAX_ERRORS], SheetError(errors[MAX_ERRORS].sheet, None, None,
                                                  _("… and %(num)s more problems.", num=rest))]
    if errors:
        raise ImportInvalid(errors)
    if progress is not None:
        progress(2, 3)
    with db.session.begin_nested():
        counts, rows = _write(user, scheme_key, plan, today)
        from ..audit.service import record_audit

        record_audit("org.import", "scheme", scheme_key, user=user, scheme_key=scheme_key,
                     after={"file": filename[:200], **counts})
    return ImportResult(counts, rows)


def _write(user: AnyUser, scheme_key: str, plan: ImportPlan, today: dt.date
           ) -> tuple[dict[str, int], list[tuple[str, int, str, str]]]:
    """Write a checked plan: the counts, and what became of each row (sheet, row, what, result)."""
    from ..audit.service import record_audit
    from ..auth.models import User
    from ..extensions import db
    from .models import Area, Post, Unit
    from .posts import _apply_post, appoint
    from .service import set_paths

    counts = dict.fromkeys(("units_created", "units_updated", "areas_created", "areas_updated",
                            "posts_appointed", "posts_updated", "unchanged"), 0)
    units = {u.key: u for u in db.session.scalars(db.select(Unit).filter_by(scheme_key=scheme_key))}
    areas = {a.key: a for a in db.session.scalars(db.select(Area).filter_by(scheme_key=scheme_key))}
    changes: list[tuple[str, Any, dict, dict, bool]] = []
    with db.session.no_autoflush:  # new rows get their kind and name before anything is flushed
        _build(scheme_key, plan, units, areas, changes)
    db.session.flush()
    if plan.units or plan.areas:
        set_paths(scheme_key)
    added, changed, same = _("added"), _("changed"), _("unchanged")
    report: list[tuple[str, int, str, str]] = []
    numbers = [("units", n) for n, _v in plan.units] + [("areas", n) for n, _v in plan.areas]  # as `changes`
    for (sheet, number), (kind, row, before, after, created) in zip(numbers, changes, strict=True):
        if created:
            counts[f"{kind}s_created"] += 1
            record_audit(f"{kind}.create", kind, row.id, user=user, scheme_key=scheme_key,
                         after={"key": row.key, **after})
        elif after:
            counts[f"{kind}s_updated"] += 1
            record_audit(f"{kind}.edit", kind, row.id, user=user, scheme_key=scheme_key, before=before, after=after)
        else:
            counts["unchanged"] += 1
        report.append((sheet, number, row.key, added if created else changed if after else same))
    accounts = {u.username: u for u in db.session.scalars(db.select(User).where(
        User.username.in_({v.username for _, v, _, _ in plan.posts if v.username} or {""})))}
    for number, values, action, latest in plan.posts:
        what = " ".join(filter(None, (values.tier, values.area or values.unit, values.holder_name)))
        report.append(("posts", number, what, {"unchanged": same, "appoint": _("appointed")}.get(action, changed)))
        if action == "unchanged":
            counts["unchanged"] += 1
        elif action == "appoint":
            post = appoint(scheme_key, values.tier, values.holder_name, area_key=values.area, unit_key=values.unit,
                           since=values.started_on or today, title=values.title, phone=values.phone,
                           duties=list(values.duties) or None, username=values.username, actor=user)
            if values.ended_on is not None:
                post.ended_on = values.ended_on
            counts["posts_appointed"] += 1
        else:
            post = db.session.get(Post, latest.id)
            wanted: dict[str, Any] = {"title": values.title, "phone": values.phone,
                                      "duties": list(values.duties) or None,
                                      "user": accounts.get(values.username) if values.username else None,
                                      "ended_on": values.ended_on}
            if values.unit is not None:
                wanted["unit"] = units[values.unit]
            before, after = _apply_post(post, **wanted)
            if "unit" in after:
                before["unit"], after["unit"] = (latest.unit, values.unit)
            record_audit("post.edit", "post", post.id, user=user, scheme_key=scheme_key, before=before, after=after)
            counts["posts_updated"] += 1
    db.session.flush()
    return counts, report


def _build(scheme_key: str, plan: ImportPlan, units: dict[str, Any], areas: dict[str, Any],
           changes: list[tuple[str, Any, dict, dict, bool]]) -> None:
    """Create the new units and areas and set every row's values; parents may be rows further down."""
    from ..extensions import db
    from .models import Area, Unit
    from .service import set_area_values, set_unit_values

    for _number, values in plan.units:
        if values.key not in units:
            units[values.key] = Unit(scheme_key=scheme_key, key=values.key, source="import", position=len(units))
            db.session.add(units[values.key])
    for _number, values in plan.areas:
        if values.key not in areas:
            areas[values.key] = Area(scheme_key=scheme_key, key=values.key, source="import", position=len(areas))
            db.session.add(areas[values.key])
    for _number, values in plan.units:
        unit = units[values.key]
        before, after = set_unit_values(unit, values, units.get(values.parent) if values.parent else None)
        changes.append(("unit", unit, before, after, unit.id is None))
    for _number, values in plan.areas:
        area = areas[values.key]
        before, after = set_area_values(area, values, areas.get(values.parent) if values.parent else None,
                                        units.get(values.unit) if values.unit else None)
        changes.append(("area", area, before, after, area.id is None))
