"""Field values sent as JSON → the form data a phone would post, so that the API fills forms through the same
services (and the same checks) as the pages.

Names follow WTForms: a location's parts are `<id>-lat`, `<id>-lng`, `<id>-accuracy`, `<id>-area`; a repeat's
rows are `<id>-<row>-<child>`. Files come as `{"name": …, "content": <base64>}` and are checked by content like
any upload. Errors are keyed by value path (`problems.1.qty`), as the form engine keys its own.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
from collections.abc import Iterable
from typing import Any

from flask_babel import gettext as _
from werkzeug.datastructures import FileStorage, MultiDict

from ..forms.engine import FILE_TYPES, FieldSpec, FormSpec, default_values, to_json, value_fields

LOCATION_PARTS = ("lat", "lng", "accuracy", "area")
NOT_PLAIN = frozenset({"repeat", "location", *FILE_TYPES})  # field types whose input is not one named value


def _plain(f: FieldSpec) -> bool:
    return f.type not in NOT_PLAIN


def with_defaults(spec: FormSpec, values: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    """`values` with the form's defaults for the fields left out, as a fresh form on the phone starts (a field
    sent as null stays empty; repeats are left as sent)."""
    defaults = default_values(spec, context)
    out = dict(values)
    for f in spec.top_level():
        if f.type != "repeat" and f.id not in values and defaults.get(f.id) not in (None, []):
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
    if f.type == "repeat":
        if not isinstance(value, list) or not all(isinstance(row, dict) for row in value):
            return _("A list of rows (objects) is expected.")
        for index, row in enumerate(value):
            for child in value_fields(f.children):  # every row shows in the form data, even an empty one
                if row.get(child.id) is None and child.has_value and _plain(child):
                    data.add(f"{name}-{index}-{child.id}", "")
            _fields(f.children, row, f"{name}-{index}-", f"{path}.{index}.", data, errors)
        return None
    if f.type in FILE_TYPES:
        return _files(value, name, data)
    if f.type == "location":
        return _location(value, name, data)
    items = value if isinstance(value, list) and f.type == "multiple_choice" else [value]
    texts = [_text(item) for item in items]
    if any(text is None for text in texts):
        return _("Not a valid value.")
    for text in texts:
        data.add(name, text)
    return None


def _text(value: Any) -> str | None:
    """A scalar as a form input would send it; None for what no input sends (objects, booleans, NaN, NUL)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else None
    if isinstance(value, str):
        return value if "\x00" not in value else None
    return None


LOCATION_LIMITS = {"lat": (-90, 90), "lng": (-180, 180), "accuracy": (0, math.inf)}


def _location(value: Any, name: str, data: MultiDict) -> str | None:
    """A location's parts; checked here, since the page's location input keeps quiet about numbers it cannot
    use (a phone's own reading is never wrong, a client's may be)."""
    if not isinstance(value, dict) or set(value) - set(LOCATION_PARTS):
        return _("An object with lat, lng, accuracy and area is expected.")
    if (value.get("lat") is None) != (value.get("lng") is None):
        return _("lat and lng go together.")
    for part, (low, high) in LOCATION_LIMITS.items():
        number = value.get(part)
        if number is not None and (isinstance(number, bool) or not isinstance(number, int | float)
                                   or not math.isfinite(number) or not low <= number <= high):
            return _("lat from -90 to 90, lng from -180 to 180 and accuracy from 0, as numbers.")
    area = value.get("area")
    if area is not None and _text(area) is None:
        return _("The area is an area's key.")
    for part in LOCATION_PARTS:
        if value.get(part) is not None:
            data.add(f"{name}-{part}", _text(value[part]))
    return None


def _files(value: Any, name: str, data: MultiDict) -> str | None:
    if not isinstance(value, list):
        return _("A list of files is expected.")
    files = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("content"), str) or set(item) - {"name", "content"}:
            return _("Each file is an object with a name and its content in base64.")
        try:
            content = base64.b64decode(item["content"], validate=True)
        except (binascii.Error, ValueError):
            return _("A file's content is not valid base64.")
        filename = item.get("name") if isinstance(item.get("name"), str) else ""
        files.append(FileStorage(io.BytesIO(content), filename=(filename or "upload").replace("\x00", "")[:200]))
    for storage in files:
        data.add(name, storage)
    return None
