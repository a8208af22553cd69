"""Export records to XLSX and CSV: one row per record, each stored field's columns as its type gives them
(`export_headers`, `export_cells`: one column for every built-in type); the writing, and its formula guard,
is `core.spreadsheets`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask_babel import gettext as _

from ..core.spreadsheets import CSV_TYPE, XLSX_TYPE, write_csv, write_xlsx
from ..web.i18n import localtime, tr, zone_label
from .engine import FieldSpec, FormSpec


def _columns(spec: FormSpec) -> list[FieldSpec]:
    return [f for f in spec.top_level() if f.has_value]


def _labelled(value: Any, labels: dict[str, Any] | None) -> Any:
    """A stored choice as people read it (a category's name, 是 for yes); a value with no label stays itself."""
    if not labels or value is None:
        return value
    if isinstance(value, list):
        return [labels.get(str(v), v) for v in value]
    if isinstance(value, dict):  # a location: its road or grid by name
        return {**value, "area": labels.get(str(value["area"]), value["area"])} if value.get("area") else value
    return labels.get(str(value), value)


def rows_of(spec: FormSpec, records: Iterable[Any], scheme_key: str | None = None,
            labels: dict[str, dict[str, Any]] | None = None) -> tuple[list[str], list[list[Any]]]:
    """Header and rows; times in the district's zone, which the header names; choices by their labels
    (`labels`: {field id: {value: label}}, see forms.service.records_labels)."""
    labels = labels or {}
    columns = _columns(spec)
    submitted = _("Submitted (%(zone)s)", zone=zone_label(scheme_key))
    header = [_("Record"), submitted, _("By"), _("Unit"), _("Area")]
    for f in columns:
        header += f.kind.export_headers(f, tr(f.label) or f.id)
    rows = []
    for r in records:
        rows.append([r.id, localtime(r.submitted_at, "%Y-%m-%d %H:%M", scheme_key),
                     r.user.display_name if r.user else "",
                     tr(r.unit.name) if r.unit else "", tr(r.area.name) if r.area else ""]
                    + [cell for f in columns
                       for cell in f.kind.export_cells(f, _labelled(r.data.get(f.id), labels.get(f.id)))])
    return header, rows


def export_records(spec: FormSpec, records: Iterable[Any], fmt: str, scheme_key: str | None = None,
                   labels: dict[str, dict[str, Any]] | None = None) -> tuple[bytes, str]:
    header, rows = rows_of(spec, records, scheme_key, labels)
    if fmt == "csv":
        return write_csv([header, *rows]), CSV_TYPE
    return write_xlsx({tr(spec.name) or spec.id: [header, *rows]}), XLSX_TYPE
