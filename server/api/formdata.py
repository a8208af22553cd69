"""Field values sent as JSON → the form data a phone would post, so that the API fills forms through the same
services (and the same checks) as the pages.

Names follow WTForms: a location's parts are `<id>-lat`, `<id>-lng`, `<id>-accuracy`, `<id>-area`; a repeat's
rows are `<id>-<row>-<child>`. Files come as `{"name": …, "content": <base64>}` and are checked by content like
any upload. Errors are keyed by value path (`problems.1.qty`), as the form engine keys its own. How one value
becomes form data is its field type's (`api_input` in server/forms/fields.py); rows are walked here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask_babel import gettext as _
from werkzeug.datastructures import MultiDict

from ..forms.engine import FieldSpec, FormSpec, default_values, to_json, value_fields


def with_defaults(spec: FormSpec, values: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    """`values` with the form's defaults for the fields left out, as a fresh form on the phone starts (a field
    sent as null stays empty; repeats are left as sent)."""
    defaults = default_values(spec, context)
    out = dict(values)
    for f in spec.top_level():
        if not f.kind.holds_rows and f.id not in values and defaults.get(f.id) not in (None, []):
            out[f.id] = to_json(defaults[f.id])
    return out


def formdata_from_json(spec: FormSpec, values: dict[str, Any], token: str | None = None
                       ) -> tuple[MultiDict, dict[str, list[str]]]:
    """The form data for `values` (field id → value), with `token` as the form's idempotency token; and what
    could not be read, by path."""
    data: MultiDict = MultiDict()
    errors: dict[str, list[str]] = {}
    if token:
        data.add("_token", token)
    _fields(spec.fields, values, "", "", data, errors)
    return data, errors


def _fields(fields: Iterable[FieldSpec], values: dict[str, Any], name_prefix: str, path_prefix: str,
            data: MultiDict, errors: dict[str, list[str]]) -> None:
    known = {f.id: f for f in value_fields(fields) if f.has_value}
    for key in values:
        if key not in known:
            errors.setdefault(f"{path_prefix}{key}", []).append(_("No such field."))
    for f in known.values():
        value = values.get(f.id)
        if value is None:
            continue
        name, path = f"{name_prefix}{f.id}", f"{path_prefix}{f.id}"
        problem = _field(f, value, name, path, data, errors)
        if problem:
            errors.setdefault(path, []).append(problem)


def _field(f: FieldSpec, value: Any, name: str, path: str, data: MultiDict,
           errors: dict[str, list[str]]) -> str | None:
    """Add one field's value to `data`; the reason when it cannot be read."""
    if f.kind.holds_rows:
        if not isinstance(value, list) or not all(isinstance(row, dict) for row in value):
            return _("A list of rows (objects) is expected.")
        for index, row in enumerate(value):
            for child in value_fields(f.children):  # every row shows in the form data, even an empty one
                if row.get(child.id) is None and child.has_value and child.kind.one_input:
                    data.add(f"{name}-{index}-{child.id}", "")
            _fields(f.children, row, f"{name}-{index}-", f"{path}.{index}.", data, errors)
        return None
    return f.kind.api_input(f, value, name, data, _)
