"""Read a year's holidays and makeup workdays (the State Council's notice) from a table or an iCalendar file.

Pure: no Flask, no database. The formats (docs/calendar.md):

* CSV or XLSX, one row per holiday range or makeup workday, with a header naming the columns `start`
  (or `date`, 开始, 日期), optionally `end` (结束, the last day, included), `kind` (类型: holiday / 放假 / 休, or
  workday / 上班 / 班 / 补班 / 调休) and `name` (名称);
* YAML: a list of the same rows, or a mapping with `holidays:` (ranges) and `workdays:` (days) lists;
* iCalendar (.ics): all-day events; a summary with 班 (补班, 上班) is a makeup workday, any other a holiday.

Every year a file touches is taken as complete: the file is that year's whole table. Errors name the row.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .engine import DayOverride

MAX_BYTES = 1024 * 1024
MAX_RANGE_DAYS = 31  # the longest holiday the State Council gives is 9 days; a longer range is a typo

HOLIDAY_WORDS = frozenset({"holiday", "off", "rest", "放假", "休", "假", "休息", "节假日"})
WORKDAY_WORDS = frozenset({"workday", "work", "makeup", "班", "上班", "补班", "调休", "调休上班"})
COLUMNS = {
    "start": ("start", "date", "day", "from", "开始", "开始日期", "日期", "起"),
    "end": ("end", "to", "until", "结束", "结束日期", "止"),
    "kind": ("kind", "type", "类型", "性质"),
    "name": ("name", "holiday_name", "summary", "名称", "节日", "说明"),
}


@dataclass(frozen=True)
class RowError:
    row: int | None  # 1-based row (header is row 1) or event number; None for the whole file
    message: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.message}" if self.row is not None else self.message


@dataclass
class CalendarTable:
    """What a file says: one entry per day, the years it covers, and what could not be read."""

    days: dict[dt.date, DayOverride] = field(default_factory=dict)
    errors: list[RowError] = field(default_factory=list)

    @property
    def years(self) -> list[int]:
        return sorted({day.year for day in self.days})

    def overrides(self) -> list[DayOverride]:
        return [self.days[day] for day in sorted(self.days)]


def read_calendar(data: bytes, filename: str) -> CalendarTable:
    """Parse an uploaded calendar by its content (and name, to tell CSV from YAML)."""
    name = (filename or "").lower()
    table = CalendarTable()
    if len(data) > MAX_BYTES:
        table.errors.append(RowError(None, "the file is larger than 1 MB"))
        return table
    if not data.strip():
        table.errors.append(RowError(None, "the file is empty"))
        return table
    if data[:4] == b"PK\x03\x04":
        rows = _xlsx_rows(data, table)
    elif b"BEGIN:VCALENDAR" in data[:2000].upper():
        _read_ics(data, table)
        return _checked(table)
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            table.errors.append(RowError(None, "the file is not UTF-8 text, an .xlsx workbook or an .ics calendar"))
            return table
        rows = _yaml_rows(text, table) if name.endswith((".yaml", ".yml")) else _csv_rows(text)
    if rows is not None:
        _read_rows(rows, table)
    return _checked(table)


# -- sources --------------------------------------------------------------------------------------------------


def _csv_rows(text: str) -> list[list[Any]]:
    return [row for row in csv.reader(io.StringIO(text))]


def _xlsx_rows(data: bytes, table: CalendarTable) -> list[list[Any]] | None:
    import zipfile

    import openpyxl

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            if sum(i.file_size for i in archive.infolist()) > 20 * MAX_BYTES:
                table.errors.append(RowError(None, "the workbook is too large once unpacked"))
                return None
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:  # noqa: BLE001 - any damage to the file reads as "not a workbook"
        table.errors.append(RowError(None, "this is not an Excel .xlsx workbook, or it is damaged"))
        return None
    sheet = book.worksheets[0]
    rows = [list(row) for _i, row in zip(range(2000), sheet.iter_rows(values_only=True), strict=False)]
    book.close()
    return rows


def _yaml_rows(text: str, table: CalendarTable) -> list[list[Any]] | None:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    if "&" in text and "*" in text:  # aliases could expand without bound: a calendar never needs them
        table.errors.append(RowError(None, "YAML anchors and aliases are not accepted in a calendar"))
        return None
    try:
        doc = YAML(typ="safe", pure=True).load(text)
    except YAMLError as exc:
        table.errors.append(RowError(None, f"not valid YAML: {str(exc).splitlines()[0]}"))
        return None
    items: list[Mapping[str, Any]] = []
    if isinstance(doc, Mapping):
        items += [{**i, "kind": "holiday"} for i in doc.get("holidays") or [] if isinstance(i, Mapping)]
        items += [{**i, "kind": "workday"} for i in doc.get("workdays") or [] if isinstance(i, Mapping)]
    elif isinstance(doc, list):
        items = [i for i in doc if isinstance(i, Mapping)]
    else:
        table.errors.append(RowError(None, "expected a list of rows, or `holidays:` and `workdays:` lists"))
        return None
    header = ["start", "end", "kind", "name"]
    return [header, *([i.get("start", i.get("day", i.get("date"))), i.get("end"), i.get("kind"), i.get("name")]
                      for i in items)]


def _read_ics(data: bytes, table: CalendarTable) -> None:
    from icalendar import Calendar

    try:
        calendar = Calendar.from_ical(data)
    except Exception as exc:  # noqa: BLE001 - the library raises several kinds for broken input
        table.errors.append(RowError(None, f"not a readable iCalendar file: {exc}"[:200]))
        return
    for number, event in enumerate(calendar.walk("VEVENT"), start=1):
        start, end = event.get("DTSTART"), event.get("DTEND")
        summary = str(event.get("SUMMARY") or "").strip()
        start = start.dt if start is not None else None
        end = end.dt if end is not None else None
        if not isinstance(start, dt.date) or isinstance(start, dt.datetime):
            table.errors.append(RowError(number, "not an all-day event"))
            continue
        last = (end - dt.timedelta(days=1)) if isinstance(end, dt.date) and not isinstance(end, dt.datetime) else start
        kind = "workday" if "班" in summary else "holiday"
        _add_range(table, number, start, max(last, start), kind, summary)


# -- rows -----------------------------------------------------------------------------------------------------


def _column_index(header: Iterable[Any]) -> dict[str, int]:
    names = [str(h or "").strip().lower() for h in header]
    found = {}
    for key, aliases in COLUMNS.items():
        for i, name in enumerate(names):
            if name in aliases:
                found[key] = i
                break
    return found


def _read_rows(rows: list[list[Any]], table: CalendarTable) -> None:
    if not rows:
        table.errors.append(RowError(None, "the file has no rows"))
        return
    columns = _column_index(rows[0])
    if "start" not in columns:
        table.errors.append(RowError(1, "the header needs a `start` (or `date`, 开始, 日期) column"))
        return
    for number, row in enumerate(rows[1:], start=2):
        cell = {key: (row[i] if i < len(row) else None) for key, i in columns.items()}
        if all(v in (None, "") for v in cell.values()):
            continue
        start, problem = _date(cell.get("start"))
        if problem:
            table.errors.append(RowError(number, f"start: {problem}"))
            continue
        end, problem = _date(cell.get("end")) if cell.get("end") not in (None, "") else (start, None)
        if problem:
            table.errors.append(RowError(number, f"end: {problem}"))
            continue
        kind = _kind(cell.get("kind"))
        if kind is None:
            table.errors.append(RowError(number, f"kind: '{cell.get('kind')}' is neither a holiday (放假) nor a "
                                                 "makeup workday (上班)"))
            continue
        _add_range(table, number, start, end, kind, str(cell.get("name") or "").strip()[:100])


def _date(value: Any) -> tuple[dt.date | None, str | None]:
    if isinstance(value, dt.datetime):
        return value.date(), None
    if isinstance(value, dt.date):
        return value, None
    text = str(value or "").strip().replace("/", "-").replace(".", "-")
    if not text:
        return None, "a date is needed"
    try:
        return dt.date.fromisoformat("-".join(part.zfill(2) for part in text.split("-"))), None
    except ValueError:
        return None, f"'{text[:20]}' is not a date (write 2027-01-01)"


def _kind(value: Any) -> str | None:
    text = str(value or "holiday").strip().lower()
    if text in HOLIDAY_WORDS:
        return "holiday"
    if text in WORKDAY_WORDS:
        return "workday"
    return None


def _add_range(table: CalendarTable, number: int, start: dt.date, end: dt.date, kind: str, name: str) -> None:
    if end < start:
        table.errors.append(RowError(number, f"ends ({end}) before it starts ({start})"))
        return
    if (end - start).days >= MAX_RANGE_DAYS:
        table.errors.append(RowError(number, f"{(end - start).days + 1} days: longer than any holiday"))
        return
    day = start
    while day <= end:
        earlier = table.days.get(day)
        working = kind == "workday"
        if earlier is not None and earlier.working != working:
            table.errors.append(RowError(number, f"{day} is both a holiday and a makeup workday"))
        elif working and day.weekday() < 5:
            table.errors.append(RowError(number, f"{day} is a weekday, a working day already: a makeup workday "
                                                 "falls on a weekend"))
        else:
            table.days[day] = DayOverride(day, working, name)
        day += dt.timedelta(days=1)


def _checked(table: CalendarTable) -> CalendarTable:
    if not table.days and not table.errors:
        table.errors.append(RowError(None, "the file names no holiday and no makeup workday"))
    return table
