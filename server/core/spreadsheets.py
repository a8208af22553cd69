"""Every XLSX and CSV the server writes, and the text rules they share with Open311's XML.

A text cell never runs as a formula: one that starts with `=`, `+`, `-`, `@`, a tab or a carriage return gets
a leading apostrophe (OWASP's advice on CSV injection), headers and names included; numbers, dates and
booleans stay what they are. Characters XML 1.0 cannot hold (control characters other than tab and line
breaks, U+FFFE, U+FFFF, lone surrogates) are dropped, so one invisible character typed into a report cannot
break a workbook. Sheet titles are made ones Excel accepts. `restore` undoes the apostrophe for an import
that reads back what an export wrote.

Pure: no Flask, no database.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_TYPE = "text/csv; charset=utf-8"
FORMULA_STARTS = frozenset("=+-@\t\r")
# What XML 1.0 refuses (openpyxl's ILLEGAL_CHARACTERS_RE covers only the first three ranges).
XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
MAX_TITLE = 31
MAX_CELL = 32_767  # Excel's limit: a longer text makes it "repair" the workbook
TITLE_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")
RESERVED_TITLES = frozenset({"history"})  # Excel keeps this name for its change history


def xml_text(text: str) -> str:
    """The text without the characters XML 1.0 cannot hold."""
    return XML_ILLEGAL.sub("", text)


def _looks_like_formula(text: str) -> bool:
    # Apostrophes already in front are skipped, so that `restore(neutralise(x)) == x` for every text.
    return text.lstrip("'")[:1] in FORMULA_STARTS


def neutralise(value: Any) -> Any:
    """A text cleaned of XML-illegal characters and never read as a formula; other values unchanged."""
    if not isinstance(value, str):
        return value
    text = xml_text(value)
    return "'" + text if _looks_like_formula(text) else text


def restore(text: str) -> str:
    """Undo `neutralise`'s apostrophe, for an import of what an export wrote."""
    return text[1:] if text[:1] == "'" and _looks_like_formula(text) else text


def sheet_title(name: str, taken: Collection[str] = (), fallback: str = "Sheet") -> str:
    """A sheet title Excel accepts: at most 31 characters, none of []:*?/\\, no apostrophe at either end, not
    empty, and unlike every title in `taken` ignoring case."""
    title = TITLE_FORBIDDEN.sub("_", xml_text(name or "")).strip()
    title = title[:MAX_TITLE].strip("'").strip() or fallback
    used = {t.casefold() for t in taken} | RESERVED_TITLES
    candidate, number = title, 1
    while candidate.casefold() in used:
        number += 1
        suffix = f" ({number})"
        candidate = title[:MAX_TITLE - len(suffix)].rstrip("'").rstrip() + suffix
    return candidate


def _xlsx_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float | Decimal):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dt.date | dt.time):
        if isinstance(value, dt.datetime | dt.time) and value.tzinfo is not None:
            return value.isoformat()  # Excel holds no time zone: the text keeps it
        return value
    return neutralise(value if isinstance(value, str) else str(value))[:MAX_CELL]


def write_xlsx(sheets: Mapping[str, Iterable[Sequence[Any]]]) -> bytes:
    """A workbook with one sheet per entry (title → rows, the header being the first row)."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    book = Workbook(write_only=True)
    titles: list[str] = []
    for name, rows in sheets.items():
        titles.append(sheet_title(name, titles))
        sheet = book.create_sheet(titles[-1])
        for row in rows:
            cells = []
            for raw in row:
                value = _xlsx_value(raw)
                cell = WriteOnlyCell(sheet, value=value)
                if isinstance(value, str):
                    cell.data_type = "s"  # a text, whatever it looks like
                elif isinstance(value, dt.datetime):
                    cell.number_format = "yyyy-mm-dd hh:mm"
                elif isinstance(value, dt.date):
                    cell.number_format = "yyyy-mm-dd"
                cells.append(cell)
            sheet.append(cells)
    if not titles:
        book.create_sheet(sheet_title(""))  # a workbook needs a sheet
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int) or (isinstance(value, float | Decimal) and math.isfinite(value)):
        return str(value)  # a negative number is a number, not a formula
    return neutralise(str(value))


def write_csv(rows: Iterable[Sequence[Any]]) -> bytes:
    """UTF-8 CSV with a byte-order mark, so that Excel reads Chinese text; the header is the first row."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerows([_csv_value(v) for v in row] for row in rows)
    return ("\ufeff" + text.getvalue()).encode("utf-8")
