"""Definition → WTForms at run time, and back: typed values out of a submitted form."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from wtforms import fields as wtf

from ..core.cache import memoize
from ..web.forms import Form, SubForm
from .engine import FieldSpec, FormSpec, value_fields

# (field spec, names visible to its choice filter, only these values or None for all) -> [(value, label)].
# With values named, a source may leave out every other choice (a check needs no full list).
ChoiceSource = Callable[[FieldSpec, dict[str, Any], "frozenset[str] | None"], list[tuple[str, str]]]


def _attributes(fields: Iterable[FieldSpec]) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    for f in value_fields(fields):
        if f.kind.holds_rows:
            row = type(f"Row_{f.id}", (SubForm,), _attributes(f.children))
            attrs[f.id] = wtf.FieldList(wtf.FormField(row), min_entries=0)
        else:
            made = f.kind.make(f)
            if made is not None:
                attrs[f.id] = made
    return attrs


def _content(spec: FormSpec) -> str:
    if not spec.content_hash:
        raise ValueError("a form spec compiled by form_spec() is needed: its class is kept by its content")
    return spec.content_hash


# By the definition's content: the class has the definition's fields and nothing else (labels and choices
# are set on each bound form, in the language of its request), so equal content can share one class.
@memoize(512, key=_content)
def form_class(spec: FormSpec) -> type[Form]:
    """The WTForms class of a form spec (built once per content)."""
    return type(f"Form_{spec.id}", (Form,), _attributes(spec.fields))


def form_data(fields: Iterable[FieldSpec], values: dict[str, Any]) -> dict[str, Any]:
    """Typed or stored values in the shape WTForms wants for `data=`."""
    out: dict[str, Any] = {}
    for f in value_fields(fields):
        value = values.get(f.id)
        if f.kind.holds_rows:
            out[f.id] = [form_data(f.children, row) for row in value or []]
        elif f.has_value:
            out[f.id] = f.kind.form_data(value)
    return out


def bind(spec: FormSpec, *, formdata: Any = None, values: dict[str, Any] | None = None) -> Form:
    """A bound form: from the submitted `formdata`, or showing `values`."""
    cls = form_class(spec)
    if formdata is not None:
        return cls(formdata=formdata)
    return cls(formdata=None, data=form_data(spec.fields, values or {}))


def read_values(spec: FormSpec, form: Form) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Typed values from a bound form, and the input that could not be read (path → messages)."""
    errors: dict[str, list[str]] = {}
    values = _read(spec.fields, form, "", errors)
    return values, errors


def _read(fields: Iterable[FieldSpec], form: Any, prefix: str, errors: dict[str, list[str]]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for f in value_fields(fields):
        if not f.has_value or f.id not in form:
            continue
        bound = form[f.id]
        if f.kind.holds_rows:
            values[f.id] = [_read(f.children, entry.form, f"{prefix}{f.id}.{i}.", errors)
                            for i, entry in enumerate(bound.entries)]
            continue
        if f.always_calculated:
            values[f.id] = None  # the server calculates it; whatever the browser sent is ignored
            continue
        typed = any(str(v).strip() for v in (bound.raw_data or []) if isinstance(v, str))
        if bound.process_errors and typed:
            errors[f"{prefix}{f.id}"] = [str(e) for e in bound.process_errors if e]
            values[f.id] = None
        elif bound.process_errors:
            values[f.id] = None  # left empty: not an error of its own (required rules decide)
        else:
            values[f.id] = f.kind.value(bound)
    return values


def input_field(spec: FormSpec, name: str) -> tuple[str, FieldSpec] | None:
    """The value path and field of an input name as the page posts it (`rows-0-qty` → `rows.0.qty`; a part's
    input like `where-lat` gives its field), or None when it names no field of the form."""
    parts = name.split("-")
    fields, path = spec.fields, ""
    while parts:
        f = next((f for f in value_fields(fields) if f.id == parts[0]), None)
        if f is None or not f.has_value:
            return None
        path += f.id
        if not f.kind.holds_rows:
            return path, f
        if len(parts) < 3 or not parts[1].isdigit():
            return None
        fields, path, parts = f.children, f"{path}.{int(parts[1])}.", parts[2:]
    return None


def rows_differ(fields: Iterable[FieldSpec], form: Any, values: dict[str, Any]) -> bool:
    """Whether a repeat group of the bound form has more or fewer rows than in `values` (the engine fits a group
    with `repeat_count` to its count): then the page is bound again from the values."""
    for f in value_fields(fields):
        if not f.kind.holds_rows or f.id not in form:
            continue
        rows, entries = values.get(f.id) or [], form[f.id].entries
        if len(rows) != len(entries) or any(rows_differ(f.children, entry.form, row)
                                            for entry, row in zip(entries, rows, strict=True)):
            return True
    return False


def bound_field(form: Any, spec: FormSpec, path: str) -> Any:
    """The bound WTForms field at a value path like `problems.1.qty`."""
    parts = path.split(".")
    node = form
    while len(parts) > 2:
        name, index = parts[0], int(parts[1])
        node = node[name].entries[index].form
        parts = parts[2:]
    return node[parts[0]] if parts else node


def apply_choices(spec: FormSpec, form: Any, values: dict[str, Any], context: dict[str, Any],
                  source: ChoiceSource) -> dict[str, list[tuple[str, str]]]:
    """Set each choice field's options for the current values; return them by path (for checking)."""
    out: dict[str, list[tuple[str, str]]] = {}
    _choices(spec.fields, form, values, {**context, **values}, "", source, out, only_chosen=False)
    return out


def chosen_options(spec: FormSpec, form: Any, values: dict[str, Any], context: dict[str, Any],
                   source: ChoiceSource) -> dict[str, list[tuple[str, str]]]:
    """The options among the chosen values only, by path: enough to check a submission, not to show a page
    (the form's fields are left as they are)."""
    out: dict[str, list[tuple[str, str]]] = {}
    _choices(spec.fields, form, values, {**context, **values}, "", source, out, only_chosen=True)
    return out


def _choices(fields: Iterable[FieldSpec], form: Any, values: dict[str, Any], names: dict[str, Any], prefix: str,
             source: ChoiceSource, out: dict[str, list[tuple[str, str]]], *, only_chosen: bool) -> None:
    for f in value_fields(fields):
        if f.id not in form:
            continue
        bound = form[f.id]
        if f.kind.holds_rows:
            for i, entry in enumerate(bound.entries):
                row = (values.get(f.id) or [{}] * (i + 1))[i] if i < len(values.get(f.id) or []) else {}
                _choices(f.children, entry.form, row, {**names, **row}, f"{prefix}{f.id}.{i}.", source, out,
                         only_chosen=only_chosen)
        elif f.kind.offers_choices:
            if only_chosen:
                out[f"{prefix}{f.id}"] = source(f, names, f.kind.chosen(values.get(f.id)))
            else:  # a top-level place field past LONG_LIST is a search on the page: its count is enough
                # (only the place types draw that search; a choice field listing places lists them all)
                picked = f.kind.chosen(values.get(f.id)) if not prefix and f.kind.live_choices else None
                bound.choices = out[f"{prefix}{f.id}"] = source(f, names, None, picked=picked)
