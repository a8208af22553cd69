"""The form engine: a form definition as frozen specs, and its logic over submitted values.

Pure: no Flask, no database. Values are typed Python values (str, int, float, date, time, datetime, list);
a repeat group's value is a list of row dicts. What differs between field types is asked of the field's type
(`FieldSpec.kind`, from the registry in `fields.py`), never of its name. `evaluate` works out what is visible,
required, calculated and wrong; the server's answer is the only truth, the browser only asks for it again (htmx).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property
from typing import Any

from ..core.cache import memoize
from ..definitions.loader import content_hash, content_key
from ..expressions import Expression, ExpressionError, compile_expression
from .fields import FIELD_TYPES, FieldType

# The names of the file types as registered now, for callers that still ask by name: prefer `f.kind.is_file`.
FILE_TYPES = FIELD_TYPES.where("is_file").keys()

Text = str | dict | None
MAX_ROWS = 100  # the most rows `repeat_count` gives a repeat group (max_repeat's limit in form.json)
# message callback: (code, params) -> text in the user's language; the web layer provides translations.
Messages = Callable[[str, dict], str]


def english(code: str, params: dict) -> str:
    """Default messages (the web layer passes translated ones)."""
    return {
        "required": "This field is required.",
        "min": "Must be at least {min}.",
        "max": "Must be at most {max}.",
        "step": "Must be in steps of {step}.",
        "max_length": "At most {max_length} characters.",
        "min_repeat": "Add at least {min_repeat}.",
        "max_repeat": "At most {max_repeat}.",
        "max_files": "At most {max_files} files.",
        "constraint": "{message}",
        "choice": "Not a valid choice.",
    }.get(code, code).format(**params)


@dataclass(frozen=True)
class Constraint:
    check: Expression
    message: Text


@dataclass(frozen=True)
class FieldSpec:
    """One field of a form definition, with its expressions compiled."""

    id: str
    type: str
    label: Text = None
    hint: Text = None
    required: bool = False
    required_if: Expression | None = None
    visible_if: Expression | None = None
    readonly: bool = False
    constraints: tuple[Constraint, ...] = ()
    calculate: Expression | None = None
    calculate_on: tuple[str, ...] = ()  # with `calculate`: computed only when one of these fields changes
    default: Any = None
    default_from: Expression | None = None
    min: float | None = None
    max: float | None = None
    step: float | None = None
    unit: Text = None
    max_length: int | None = None
    choices: tuple[tuple[Any, Text], ...] = ()  # the definition's own choices, as (value, label)
    # Each static choice's `data` (its extra keys, `choice.<key>` to a choice_filter), in the order of `choices`;
    # empty when no choice has any.
    choice_data: tuple[Mapping[str, Any], ...] = ()
    choices_from: str | None = None
    choice_filter: Expression | None = None
    unit_kinds: tuple[str, ...] = ()
    area_kinds: tuple[str, ...] = ()
    max_files: int | None = None
    max_size_mb: float | None = None
    accept: tuple[str, ...] = ("image",)
    capture: bool = True
    public: bool = False
    min_repeat: int = 0
    max_repeat: int | None = None
    repeat_count: Expression | None = None  # a repeat group with exactly this many rows (0..MAX_ROWS)
    children: tuple[FieldSpec, ...] = ()

    @cached_property
    def kind(self) -> FieldType:
        """The field's type: what it does, from the field type registry (looked up once per compiled field:
        a form is walked field by field several times on every submission)."""
        return FIELD_TYPES[self.type]

    @property
    def has_value(self) -> bool:
        return self.kind.has_value

    @property
    def always_calculated(self) -> bool:
        """The server computes it on every change: read-only, and what a client sends for it is ignored."""
        return self.calculate is not None and not self.calculate_on

    @property
    def sealed(self) -> bool:
        """Computed when a listed field changes and read-only: a client may send back only what the server
        computed for it (the service seals those values; see `calculate_on` in docs/forms.md)."""
        return self.readonly and self.calculate is not None and bool(self.calculate_on)

    @property
    def is_choice(self) -> bool:
        return self.kind.is_choice

    def static_choices(self) -> Iterator[tuple[Any, Text, Mapping[str, Any]]]:
        """The definition's own choices as (value, label, data): `data` holds the choice's extra keys ({}: none)."""
        for i, (value, label) in enumerate(self.choices):
            yield value, label, self.choice_data[i] if i < len(self.choice_data) else {}

    def walk(self) -> Iterator[FieldSpec]:
        yield self
        for child in self.children:
            yield from child.walk()


@dataclass(frozen=True)
class CaseOpening:
    """The form's `opens_cases`: which rows of a record open a case, and how the case's report is filled."""

    fill: Mapping[str, str]
    for_each: str | None = None
    when: Expression | None = None
    workflow: str | None = None


@dataclass(frozen=True)
class FormSpec:
    id: str
    name: Text
    purpose: str
    public: bool
    fields: tuple[FieldSpec, ...]
    description: Text = None
    submit_label: Text = None
    record_time: str | None = None
    opens_cases: CaseOpening | None = None
    open311: Mapping[str, str] = field(default_factory=dict)  # Open311 argument → field id
    by_id: Mapping[str, FieldSpec] = field(default_factory=dict, compare=False)
    # Fields whose value changes what else is shown, required, calculated or offered: the page asks the
    # server again when one of them changes.
    triggers: frozenset[str] = frozenset()
    # The SHA-256 of the definition it was compiled from: what is built from a spec is kept by it.
    content_hash: str = field(default="", compare=False)

    def walk(self) -> Iterator[FieldSpec]:
        for f in self.fields:
            yield from f.walk()

    def top_level(self) -> Iterator[FieldSpec]:
        """Fields whose values sit at the top level: sections are transparent, repeats hold rows."""
        return value_fields(self.fields)

    @cached_property
    def takes_files(self) -> bool:
        """Whether it has photo or file fields (their uploads are kept as the form is read)."""
        return any(f.kind.is_file for f in self.walk())

    @cached_property
    def seals(self) -> bool:
        """Whether it has read-only fields calculated on named changes (`FieldSpec.sealed`)."""
        return any(f.sealed for f in self.walk())


def value_fields(fields: Iterable[FieldSpec]) -> Iterator[FieldSpec]:
    """The fields that hold values at one level: sections are transparent (their children count)."""
    for f in fields:
        if f.kind.transparent:
            yield from value_fields(f.children)
        else:
            yield f


def _compile(source: str | None) -> Expression | None:
    # Names were checked when the definition was loaded; here only compile.
    return compile_expression(source) if source else None


def _source(value: Any) -> str | None:
    """An expression that may be written as a plain whole number (`repeat_count: 3`)."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _field(data: dict) -> FieldSpec:
    return FieldSpec(
        id=data["id"], type=data["type"], label=data.get("label"), hint=data.get("hint"),
        required=bool(data.get("required", False)), required_if=_compile(data.get("required_if")),
        visible_if=_compile(data.get("visible_if")), readonly=bool(data.get("readonly", False)),
        constraints=tuple(Constraint(compile_expression(c["check"]), c["message"])
                          for c in data.get("constraints", [])),
        calculate=_compile(data.get("calculate")), calculate_on=tuple(data.get("calculate_on") or ()),
        default=data.get("default"),
        default_from=_compile(data.get("default_from")), min=data.get("min"), max=data.get("max"),
        step=data.get("step"), unit=data.get("unit"), max_length=data.get("max_length"),
        choices=tuple((c["value"], c["label"]) for c in data.get("choices", [])),
        choice_data=_choice_data(data.get("choices", [])),
        choices_from=data.get("choices_from"), choice_filter=_compile(data.get("choice_filter")),
        unit_kinds=tuple(data.get("unit_kinds", ())), area_kinds=tuple(data.get("area_kinds", ())),
        max_files=data.get("max_files"), max_size_mb=data.get("max_size_mb"),
        accept=tuple(data.get("accept", FIELD_TYPES[data["type"]].default_accept)),
        capture=bool(data.get("capture", True)), public=bool(data.get("public", False)),
        min_repeat=int(data.get("min_repeat", 0)), max_repeat=data.get("max_repeat"),
        repeat_count=_compile(_source(data.get("repeat_count"))),
        children=tuple(_field(c) for c in data.get("fields", [])),
    )


def _choice_data(choices: list[dict]) -> tuple[Mapping[str, Any], ...]:
    if not any(c.get("data") for c in choices):
        return ()
    return tuple(dict(c.get("data") or {}) for c in choices)


def _case_opening(definition: dict) -> CaseOpening | None:
    data = definition.get("opens_cases")
    if not data:
        return None
    return CaseOpening(fill=dict(data["fill"]), for_each=data.get("for_each"), when=_compile(data.get("when")),
                       workflow=data.get("workflow"))


def form_spec_of(row: Any) -> FormSpec:
    """The compiled spec of a stored form (a definition row or ref): its stored hash saves hashing it again."""
    return form_spec(row.data, row.content_hash)


@memoize(512, key=content_key)
def form_spec(definition: dict, digest: str | None = None) -> FormSpec:
    """The compiled spec of a form definition, compiled once per content hash (`digest`: that hash, if known)."""
    fields = tuple(_field(f) for f in definition.get("fields", []))
    spec = FormSpec(id=definition["id"], name=definition.get("name"), purpose=definition.get("purpose", "other"),
                    public=bool(definition.get("public", False)), fields=fields,
                    description=definition.get("description"), submit_label=definition.get("submit_label"),
                    record_time=definition.get("record_time"), opens_cases=_case_opening(definition),
                    open311=dict(definition.get("open311") or {}),
                    content_hash=digest or content_hash(definition))
    object.__setattr__(spec, "by_id", {f.id: f for f in spec.walk()})
    object.__setattr__(spec, "triggers", _triggers(spec))
    return spec


def _triggers(spec: FormSpec) -> frozenset[str]:
    names: set[str] = set()
    for f in spec.walk():
        # A field calculated on named changes follows those fields only, not what its expression reads.
        calculation = f.calculate if not f.calculate_on else None
        for expression in (f.visible_if, f.required_if, calculation, f.choice_filter, f.repeat_count):
            if expression is not None:
                names |= {name.split(".")[0] for name in expression.names}
        names |= set(f.calculate_on if f.calculate is not None else ())
    return frozenset(names & set(spec.by_id))


# -- evaluation ----------------------------------------------------------------------

def is_empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _safe(expression: Expression | None, names: Mapping[str, Any], default: Any) -> Any:
    """Evaluate; an expression that cannot be evaluated on incomplete data gives `default`."""
    if expression is None:
        return default
    try:
        return expression.evaluate(names)
    except ExpressionError:
        return default


@dataclass
class FormState:
    """What the engine decided about one set of values."""

    values: dict[str, Any]                      # typed values with calculations applied
    hidden: set[str] = field(default_factory=set)      # field paths not shown ("problems.0.qty" inside repeats)
    required: set[str] = field(default_factory=set)
    errors: dict[str, list[str]] = field(default_factory=dict)
    calculated: set[str] = field(default_factory=set)  # field paths whose value a calculation set this time

    def is_hidden(self, path: str) -> bool:
        """Hidden itself or inside a hidden section, repeat or row."""
        parts = path.split(".")
        return any(".".join(parts[: i + 1]) in self.hidden for i in range(len(parts)))

    def add_error(self, path: str, message: str) -> None:
        self.errors.setdefault(path, []).append(message)

    @property
    def ok(self) -> bool:
        return not self.errors


def default_values(spec: FormSpec, context: Mapping[str, Any]) -> dict[str, Any]:
    """Initial values of a new form: literal defaults, then defaults from the context."""
    values: dict[str, Any] = {}
    for f in spec.top_level():
        if f.kind.holds_rows:
            count = max(f.min_repeat, 1) if f.repeat_count is None else (row_count(f, {**context, **values}) or 0)
            values[f.id] = [_row_defaults(f, context) for _ in range(count)]
        elif f.has_value:
            values[f.id] = _default_of(f, context)
    return values


def _row_defaults(group: FieldSpec, context: Mapping[str, Any]) -> dict[str, Any]:
    return {c.id: _default_of(c, context) for c in value_fields(group.children) if c.has_value}


def whole_rows(value: Any) -> int | None:
    """A `repeat_count`'s value as a number of rows: its whole part, from 0 to MAX_ROWS; None when it is empty
    or not a number (nor a text of one)."""
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return max(0, min(MAX_ROWS, int(round(value, 9))))  # 2.9 gives 2 rows; 2.9999999999 is 3


def row_count(group: FieldSpec, names: Mapping[str, Any]) -> int | None:
    """How many rows a group with `repeat_count` has for these values; None when that is not known (the count
    is empty, not a number, or its expression fails)."""
    return whole_rows(_safe(group.repeat_count, names, None))


def _fit_rows(group: FieldSpec, rows: list[dict[str, Any]], names: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Exactly `repeat_count` rows: the first ones as they are, new ones with their defaults; extra rows go
    (their values are not stored). While the count is not known (cleared on the way to another number, typed
    in full-width digits) the rows stay as they are: what was typed in them is never thrown away by a slip."""
    wanted = row_count(group, names)
    if wanted is None or len(rows) == wanted:
        return rows
    return rows[:wanted] + [_row_defaults(group, names) for _ in range(wanted - len(rows))]


def _default_of(f: FieldSpec, context: Mapping[str, Any]) -> Any:
    if f.default_from is not None:
        return _safe(f.default_from, context, None)
    if f.default is not None:
        return list(f.default) if isinstance(f.default, list) else f.default
    return f.kind.empty()


def opening_rows(spec: FormSpec, record: Mapping[str, Any], context: Mapping[str, Any]) -> list[tuple[int, dict]]:
    """The rows of a stored record that open a case by its form's `opens_cases`: (row index, names)."""
    opening = spec.opens_cases
    if opening is None:
        return []
    rows = (record.get(opening.for_each) or []) if opening.for_each else [{}]
    out = []
    for index, row in enumerate(rows):
        names = {**context, **record, **row}
        if opening.when is None or _safe(opening.when, names, False):
            out.append((index, names))
    return out


def case_reports(spec: FormSpec, record: Mapping[str, Any], report: FormSpec,
                 context: Mapping[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    """The cases a stored record opens by its form's `opens_cases`: (row index, the report's stored values).

    Each report starts from the report form's defaults; `fill` copies a row's field (else the record's) into
    a report field. Fields the report form does not have are left out.
    """
    out = []
    for index, names in opening_rows(spec, record, context):
        data = {k: to_json(v) for k, v in default_values(report, context).items() if not is_empty(v)}
        data.update({target: names[source] for target, source in spec.opens_cases.fill.items()
                     if target in report.by_id and not is_empty(names.get(source))})
        out.append((index, data))
    return out


def evaluate(spec: FormSpec, values: Mapping[str, Any], context: Mapping[str, Any],
             messages: Messages = english, check: bool = True, changed: Iterable[str] = ()) -> FormState:
    """Apply calculations and visibility, then (with `check`) required rules, limits and constraints.

    `changed`: the paths of the fields the person just changed (`problem`, `rows.0.qty`). A field with
    `calculate_on` is computed when one of its fields is among them, or when it is empty and one of them has a
    value; otherwise it keeps its value.
    """
    state = FormState(values=dict(values))
    names = {**context, **state.values}
    _apply(spec.fields, state, state.values, names, "", parent_hidden=False, messages=messages, check=check,
           changed=frozenset(changed))
    return state


def _fires(f: FieldSpec, prefix: str, value: Any, names: Mapping[str, Any], changed: frozenset[str]) -> bool:
    """Whether a field with `calculate_on` is computed now: a listed field changed (in this row, an enclosing
    row or the record), or it is empty while a listed field has a value."""
    if changed:
        parts = prefix.split(".")[:-1]  # "rows.0.": its own row, then each enclosing one, then the record
        scopes = ["".join(f"{p}." for p in parts[:end]) for end in range(len(parts), -1, -2)]
        if any(f"{scope}{name}" in changed for scope in scopes for name in f.calculate_on):
            return True
    return is_empty(value) and any(not is_empty(names.get(name)) for name in f.calculate_on)


def _apply(fields: Iterable[FieldSpec], state: FormState, values: dict[str, Any], names: dict[str, Any],
           prefix: str, parent_hidden: bool, messages: Messages, check: bool,
           changed: frozenset[str] = frozenset()) -> None:
    for f in fields:
        path = f"{prefix}{f.id}"
        hidden = parent_hidden or not bool(_safe(f.visible_if, names, False) if f.visible_if else True)
        if hidden:
            state.hidden.add(path)
        if f.kind.transparent:
            _apply(f.children, state, values, names, prefix, hidden, messages, check, changed)
            continue
        if f.always_calculated:
            values[f.id] = None if hidden else _safe(f.calculate, names, None)
            names[f.id] = values[f.id]
            state.calculated.add(path)
        elif f.calculate is not None and not hidden and _fires(f, prefix, values.get(f.id), names, changed):
            values[f.id] = names[f.id] = _safe(f.calculate, names, None)
            state.calculated.add(path)
        if hidden:
            # Hidden fields are neither validated nor stored, and count as empty for later logic.
            names[f.id] = [] if f.kind.holds_rows else None
            continue
        if f.kind.holds_rows:
            rows = values.get(f.id) or []
            if f.repeat_count is not None:
                rows = values[f.id] = names[f.id] = _fit_rows(f, rows, names)
            for index, row in enumerate(rows):
                row_names = {**names, **row}
                _apply(f.children, state, row, row_names, f"{path}.{index}.", False, messages, check, changed)
            if check and len(rows) < f.min_repeat:
                state.add_error(path, messages("min_repeat", {"min_repeat": f.min_repeat}))
            if check and f.max_repeat is not None and len(rows) > f.max_repeat:
                state.add_error(path, messages("max_repeat", {"max_repeat": f.max_repeat}))
            continue
        if not f.has_value or not check:
            continue
        value = values.get(f.id)
        required = f.required or bool(_safe(f.required_if, names, False))
        if required:
            state.required.add(path)
        if is_empty(value):
            if required:
                state.add_error(path, messages("required", {}))
            continue
        for code, params in f.kind.limits(f, value):
            state.add_error(path, messages(code, params))
        for constraint in f.constraints:
            outcome = _safe(constraint.check, {**names, "value": value}, False)
            if not outcome:
                state.add_error(path, messages("constraint", {"message": constraint.message}))


def stored_values(spec: FormSpec, state: FormState) -> dict[str, Any]:
    """The values to store: visible fields only, as JSON-ready values."""
    return _store(spec.fields, state.values, state.hidden, "")


def _store(fields: Iterable[FieldSpec], values: Mapping[str, Any], hidden: set[str], prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields:
        path = f"{prefix}{f.id}"
        if path in hidden:
            continue
        if f.kind.transparent:
            out.update(_store(f.children, values, hidden, prefix))
        elif f.kind.holds_rows:
            rows = values.get(f.id) or []
            out[f.id] = [_store(f.children, row, hidden, f"{path}.{i}.") for i, row in enumerate(rows)]
        elif f.has_value and not is_empty(values.get(f.id)):
            out[f.id] = to_json(values.get(f.id))
    return out


def to_json(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec="minutes")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.strftime("%H:%M")
    if isinstance(value, list):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    return value
