"""Export records to XLSX (openpyxl) and CSV: one row per record, one column per stored field."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

from flask_babel import gettext as _
from openpyxl import Workbook

from ..web.i18n import localtime, tr, zone_label
from .engine import FILE_TYPES, FieldSpec, FormSpec


def _columns(spec: FormSpec) -> list[FieldSpec]:
    return [f for f in spec.top_level() if f.has_value]


def _cell(f: FieldSpec, value: Any) -> Any:
    if value is None:
        return ""
    if f.type == "repeat":
        return len(value)
    if f.type in FILE_TYPES:
        return len(value)
    if f.type == "location" and isinstance(value, dict):
        parts = [f"{value['lat']},{value['lng']}"] if "lat" in value else []
        return " ".join(parts + ([value["area"]] if value.get("area") else []))
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return defuse(value)


def defuse(value: Any) -> Any:
    """Never let a spreadsheet run a formula typed into a form (or into a name)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def rows_of(spec: FormSpec, records: Iterable[Any], scheme_key: str | None = None) -> tuple[list[str], list[list[Any]]]:
    """Header and rows; times in the district's zone, which the header names."""
    columns = _columns(spec)
    submitted = _("Submitted (%(zone)s)", zone=zone_label(scheme_key))
    header = [_("Record"), submitted, _("By"), _("Unit"), _("Area")] + [tr(f.label) or f.id for f in columns]
    rows = []
    for r in records:
        rows.append([r.id, localtime(r.submitted_at, "%Y-%m-%d %H:%M", scheme_key),
                     defuse(r.user.display_name if r.user else ""),
                     tr(r.unit.name) if r.unit else "", tr(r.area.name) if r.area else ""]
                    + [_cell(f, r.data.get(f.id)) for f in columns])
    return header, rows


def export_records(spec: FormSpec, records: Iterable[Any], fmt: str,
                   scheme_key: str | None = None) -> tuple[bytes, str]:
    header, rows = rows_of(spec, records, scheme_key)
    if fmt == "csv":
        text = io.StringIO()
        writer = csv.writer(text)
        writer.writerow(header)
        writer.writerows(rows)
        # A BOM so that Excel opens Chinese text correctly.
        return ("\ufeff" + text.getvalue()).encode("utf-8"), "text/csv; charset=utf-8"
    book = Workbook()
    sheet = book.active
    sheet.title = (tr(spec.name) or spec.id)[:31]
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue(), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
