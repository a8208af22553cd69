"""One class per field type, registered by name (the definition's `type`). Everything Fangan does with a field of
that type lives in its class, so that a new type is one registration:

- the page: the WTForms field it builds (`make`), how its input becomes a typed value (`value`) and back
  (`form_data`), its input snippet `forms/fields/<template>.html`, and how a stored value shows on a record
  (`forms/values/<display>.html`);
- the engine (`server/forms/engine.py`): whether it holds a value, its empty value, the limits it checks;
- choices: whether it offers choices and from which live source, which it holds (`chosen`), the area it names;
- exports: its column(s) and cells (`export_headers`, `export_cells`);
- the JSON API: its value's JSON Schema (`api_schema`) and how a JSON value becomes form input (`api_input`);
- Open311 (its attribute datatype, the standard arguments it can take) and XLSForm (the types it is imported
  from, and what an imported field of it gets);
- the definition check (`server/definitions/references.py` reads the flags below through the registry, and asks
  `check_default` whether a literal `default` is one its input shows) and the
  docs (`docs()`, written into docs/forms.md by `fangan docs`; the definition schema lists the registered names).

The module imports neither Flask nor the database: the form engine builds on it.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import io
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from markupsafe import Markup, escape
from werkzeug.datastructures import FileStorage, MultiDict
from wtforms import fields as wtf
from wtforms.validators import Optional as OptionalValidator
from wtforms.widgets import CheckboxInput, ListWidget

from ..core.registry import Registry, registry
from ..definitions.errors import N_, Said, say

if TYPE_CHECKING:
    from .engine import FieldSpec

# gettext of the request's language: the API layer passes Flask-Babel's (this module has no Flask).
Gettext = Callable[..., str]

FIELD_TYPES: Registry[FieldType] = registry("field type")


def register(name: str) -> Callable[[type[FieldType]], type[FieldType]]:
    """Class decorator: register one instance of the field type under `name`."""

    def decorator(cls: type[FieldType]) -> type[FieldType]:
        cls.name = name
        FIELD_TYPES.add(name, cls())
        return cls

    return decorator


def field_type(name: str) -> FieldType:
    return FIELD_TYPES[name]


class FieldType:
    """Base: a one-line text input. Subclasses change what differs."""

    name = "text"
    title = N_("One line of text")  # what an administrator picks in the form editor

    # -- what it is: asked by the engine, the services and the definition check, never the type's name ----------
    has_value = True         # holds a value of its own (a note and a section do not)
    transparent = False      # a section: its children's values sit at its own level
    holds_rows = False       # a repeat group: its value is a list of row objects
    is_file = False          # its value is a list of upload ids
    is_choice = False        # its value is a choice's value (or a list of them)
    multiple = False         # its value is a list
    number = False           # min, max and step apply
    is_moment = False        # a date or a date and time: it may be the form's `record_time`
    gives_location = False   # its value is a position (lat, lng): the record's location
    gives_route = False      # its value is a line walked (GeoJSON LineString): the roads it passes were walked
    names_area = False       # its value can name an area (`area_key`, `with_area`): the record's area
    offers_choices = False   # the page lists choices for it (static `choices`, or live ones)
    needs_choices = False    # its definition gives `choices` or `choices_from`
    live_choices: str | None = None  # the live choice source it always takes, whatever `choices_from` says
    one_input = True         # its input is one named value (a location's parts, files and rows are not)
    default_accept: tuple[str, ...] = ("image", "pdf")  # `accept` when the definition gives none

    # -- the page --------------------------------------------------------------------------------------------
    template = "input"       # forms/fields/<template>.html
    input_type: str | None = "text"
    display = "value"        # forms/values/<display>.html shows a stored value on a record
    free_text = False        # holds words people type (a description): what a search of cases reads
    long_text = False        # several lines of them: the first such field is a queue row's line by default

    # -- other systems ---------------------------------------------------------------------------------------
    open311_datatype: str | None = None  # GeoReport v2 attribute datatype; None: not offered to Open311
    open311_arguments: frozenset[str] = frozenset()  # standard Open311 arguments a form's `open311` may map to it
    xlsform_types: tuple[str, ...] = ()  # XLSForm types imported as this type
    xlsform_appearance: str | None = None  # ... when the row's appearance has this word (text + multiline)

    # -- docs (the field type table in docs/forms.md) ---------------------------------------------------------
    phone = ""               # what people see on the phone
    stored = ""              # how its value is stored
    api_doc = ""             # its value in the JSON API, when it differs from the stored one

    # -- the page: WTForms ------------------------------------------------------------------------------------
    def make(self, spec: FieldSpec) -> Any:
        """The unbound WTForms field (None for a type without an input)."""
        return wtf.StringField(spec.id, validators=[OptionalValidator()])

    def value(self, field: Any) -> Any:
        """The typed value of a bound WTForms field (None when empty or unparseable)."""
        data = field.data
        if isinstance(data, str):
            data = data.strip()
        return data if data not in ("", None) else None

    def form_data(self, value: Any) -> Any:
        """What to give WTForms to show a typed or stored value."""
        return value

    def shown(self, value: Any) -> Any:
        """A stored value as a record's page shows it (`forms/values/value.html`)."""
        return value

    def html_attrs(self, spec: FieldSpec, element_id: str, errors: list[str], live_url: str | None = None
                   ) -> dict[str, Any]:
        """Everything the input element needs: type, limits, read-only, error wiring, live refresh."""
        attrs = {"type": self.input_type, **self.attributes(spec)} if self.input_type else self.attributes(spec)
        if errors:
            attrs.update({"aria-invalid": "true", "aria-describedby": f"{element_id}-error"})
        attrs.update(live_attrs(live_url))
        return attrs

    def attributes(self, spec: FieldSpec) -> dict[str, Any]:
        attrs: dict[str, Any] = {}
        if spec.max_length:
            attrs["maxlength"] = spec.max_length
        if spec.readonly or spec.always_calculated:  # one calculated on named changes may be edited
            attrs["readonly"] = True
        return attrs

    # -- the engine -------------------------------------------------------------------------------------------
    def empty(self) -> Any:
        """The value of a new form's field with no default."""
        return [] if self.multiple else None

    def limits(self, spec: FieldSpec, value: Any) -> Iterator[tuple[str, dict]]:
        """The definition's limits a (non-empty) value breaks, as (message code, parameters)."""
        if spec.max_length and isinstance(value, str) and len(value) > spec.max_length:
            yield "max_length", {"max_length": spec.max_length}

    # -- choices and places -----------------------------------------------------------------------------------
    def choice_source(self, spec: FieldSpec) -> str | None:
        """The live choice source its options come from (None: the definition's own `choices`)."""
        return self.live_choices or spec.choices_from

    def chosen(self, value: Any) -> frozenset[str]:
        """The choice values a value holds (what is checked against the options)."""
        chosen = value if isinstance(value, list) else [value] if value not in (None, "") else []
        return frozenset(str(v) for v in chosen)

    def area_key(self, value: Any) -> str | None:
        """The key of the area a stored value names (a record's area), if it names one."""
        return None

    def with_area(self, key: str) -> Any:
        """The value that names the area `key` (a board's QR link fills it in); None if it names none."""
        return None

    # -- exports ----------------------------------------------------------------------------------------------
    def export_headers(self, spec: FieldSpec, label: str) -> list[str]:
        """Its column headers in a spreadsheet of records (`label`: the field's label in the reader's language)."""
        return [label]

    def export_cells(self, spec: FieldSpec, value: Any) -> list[Any]:
        """Its cells in a record's row, one per header (`core.spreadsheets` guards texts against formulas)."""
        if value is None:
            return [""]
        if isinstance(value, list):
            return [", ".join(str(v) for v in value)]
        return [value]

    # -- the JSON API -----------------------------------------------------------------------------------------
    def api_schema(self, spec: FieldSpec | None = None) -> dict[str, Any] | None:
        """The JSON Schema of its value in the API (of this very field with `spec`); None: it takes none."""
        schema: dict[str, Any] = {"type": "string"}
        if spec is not None and spec.max_length:
            schema["maxLength"] = spec.max_length
        return schema

    def api_input(self, spec: FieldSpec, value: Any, name: str, data: MultiDict, _: Gettext) -> str | None:
        """Add a JSON value to the form data as the page would post it under `name`; the reason when it cannot
        be read (`_` translates)."""
        items = value if self.multiple and isinstance(value, list) else [value]
        texts = [form_text(item) for item in items]
        if any(text is None for text in texts):
            return _("Not a valid value.")
        for text in texts:
            data.add(name, text)
        return None

    # -- XLSForm ----------------------------------------------------------------------------------------------
    def from_xlsform(self, out: dict[str, Any]) -> None:
        """What a field imported from XLSForm as this type gets besides its common columns (`out`, in place)."""

    def xlsform_default(self, text: str, raw: Any) -> tuple[Any, Said | None]:
        """An XLSForm `default` cell (its text, and the cell's own value: Excel dates and times come as
        datetime, time or a day's fraction) as this type's default; or the problem with it."""
        return None, say(N_("a default is not supported on type '%(type)s'"), type=self.name)

    # -- the definition check ---------------------------------------------------------------------------------
    def check_default(self, value: Any, choices: list[Any] | None = None) -> Said | None:
        """What is wrong with a literal `default` of a field of this type, saying the format it takes (None: its
        input shows it and reads it back). `choices`: the values of the field's own choices (None: live)."""
        if not self.has_value or not self.one_input or self.holds_rows:
            return say(N_("a field of type %(type)s takes no default"), type=self.name)
        if isinstance(value, str) or form_text(value) is not None:
            return None  # a number shows as its text, as it always has
        return say(N_("default %(value)s is not text"), value=_shown(value))

    # -- docs -------------------------------------------------------------------------------------------------
    def docs(self) -> dict[str, str]:
        """Its row of the field type table in the docs."""
        return {"type": f"`{self.name}`", "on the phone": self.phone, "stored as": self.stored,
                "in the JSON API": self.api_doc or "as stored",
                "Open311": f"`{self.open311_datatype}`" if self.open311_datatype else "—",
                "XLSForm": ", ".join(f"`{t}`" + (f" ({self.xlsform_appearance})" if self.xlsform_appearance else "")
                                     for t in self.xlsform_types) or "—"}


def _shown(value: Any) -> str:
    """A definition's value quoted as written, for a problem with it."""
    return repr(value) if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def form_text(value: Any) -> str | None:
    """A JSON scalar as a form input would send it; None for what no input sends (objects, booleans, NaN, NUL)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else None
    if isinstance(value, str):
        return value if "\x00" not in value else None
    return None


def option_tags(options: Iterable[tuple[Any, Any, bool, Mapping[str, Any] | None]]) -> Markup:
    """The <option>s of a select (WTForms' `iter_choices()`), those of a group (`data-group`: categories by 大类)
    inside its <optgroup>, each showing its short name (`data-short`) with the full one kept (`data-full`) for
    the search box. Written here, not in the snippet: a category list is fifty options on every report form."""
    out, group = [], None
    for value, text, selected, attrs in options:
        in_group = attrs.get("data-group") if attrs else None
        if in_group != group:
            if group:
                out.append("</optgroup>")
            if in_group:
                out.append(f'<optgroup label="{escape(in_group)}">')
            group = in_group
        mark = " selected" if selected else ""
        if in_group:
            shown = attrs.get("data-short", text)
            out.append(f'<option value="{escape(value)}"{mark} data-full="{escape(text)}">{escape(shown)}</option>')
        else:
            out.append(f'<option value="{escape(value)}"{mark}>{escape(text)}</option>')
    if group:
        out.append("</optgroup>")
    return Markup("".join(out))  # noqa: S704 - every value, text and label in it is escaped above


def live_attrs(live_url: str | None) -> dict[str, str]:
    """htmx attributes that ask the server for the form again when this input changes."""
    return {"hx-post": live_url, "hx-trigger": "change"} if live_url else {}


def value_fields_of(fields: Iterable[FieldSpec]) -> Iterator[FieldSpec]:
    """The fields holding values at one level (sections are transparent): the engine's `value_fields`."""
    for f in fields:
        if f.kind.transparent:
            yield from value_fields_of(f.children)
        else:
            yield f


def values_schema(fields: Iterable[FieldSpec]) -> dict[str, Any]:
    """The JSON Schema of a form's (or a row's) values in the API, built from its fields' types."""
    properties = {}
    for f in value_fields_of(fields):
        schema = f.kind.api_schema(f)
        if schema is not None:
            properties[f.id] = schema
    return {"type": "object", "properties": properties, "additionalProperties": False}


# -- text -------------------------------------------------------------------------------------------------------

@register("text")
class TextType(FieldType):
    title = N_("One line of text")
    free_text = True
    phone = "one line (`max_length`)"
    stored = "text"
    open311_datatype = "string"
    open311_arguments = frozenset({"address_string", "description"})
    xlsform_types = ("text", "string")

    def xlsform_default(self, text: str, raw: Any) -> tuple[Any, Said | None]:
        return text, None


@register("textarea")
class TextareaType(FieldType):
    title = N_("Several lines of text")
    free_text = True
    long_text = True
    template = "textarea"
    input_type = None  # a <textarea> has no type
    phone = "several lines (`max_length`)"
    stored = "text"
    open311_datatype = "text"
    open311_arguments = frozenset({"description"})
    xlsform_types = ("text", "string")
    xlsform_appearance = "multiline"

    def xlsform_default(self, text: str, raw: Any) -> tuple[Any, Said | None]:
        return text, None

    def make(self, spec: FieldSpec) -> Any:
        return wtf.TextAreaField(spec.id, validators=[OptionalValidator()])


# -- numbers ----------------------------------------------------------------------------------------------------

class NumberType(FieldType):
    input_type = "number"
    number = True
    whole = False  # whole numbers only
    stored = "number"
    open311_datatype = "number"

    def attributes(self, spec: FieldSpec) -> dict[str, Any]:
        attrs = super().attributes(spec)
        for key in ("min", "max", "step"):
            if getattr(spec, key) is not None:
                attrs[key] = f"{getattr(spec, key):g}"
        return attrs

    def limits(self, spec: FieldSpec, value: Any) -> Iterator[tuple[str, dict]]:
        if isinstance(value, int | float):
            if spec.min is not None and value < spec.min:
                yield "min", {"min": _number_text(spec.min)}
            if spec.max is not None and value > spec.max:
                yield "max", {"max": _number_text(spec.max)}
            if spec.step:
                steps = round((value - (spec.min or 0)) / spec.step, 9)
                if steps != math.floor(steps):
                    yield "step", {"step": _number_text(spec.step)}
        yield from super().limits(spec, value)

    def api_schema(self, spec: FieldSpec | None = None) -> dict[str, Any] | None:
        schema: dict[str, Any] = {"type": "integer" if self.whole else "number"}
        if spec is not None and spec.min is not None:
            schema["minimum"] = spec.min
        if spec is not None and spec.max is not None:
            schema["maximum"] = spec.max
        return schema

    def xlsform_default(self, text: str, raw: Any) -> tuple[Any, Said | None]:
        try:
            number = int(text) if self.whole else float(text)
            if not math.isfinite(number):
                raise ValueError(text)
            return number, None
        except ValueError:
            return None, (say(N_("default '%(text)s' is not a whole number"), text=text) if self.whole
                          else say(N_("default '%(text)s' is not a number"), text=text))

    def check_default(self, value: Any, choices: list[Any] | None = None) -> Said | None:
        if isinstance(value, str):  # numeric text reads back as the number (definitions have written "3")
            try:
                value = int(value) if self.whole else float(value)
            except ValueError:
                pass
        number = isinstance(value, int) or (isinstance(value, float) and math.isfinite(value) and not self.whole)
        if number and not isinstance(value, bool):
            return None
        return say(N_("default %(value)s is not a whole number (such as 3)") if self.whole
                   else N_("default %(value)s is not a number (such as 2.5)"), value=_shown(value))


def _number_text(number: float) -> str:
    return f"{number:g}"


@register("integer")
class IntegerType(NumberType):
    title = N_("Whole number")
    phone = "numeric keyboard; `unit` shown beside; `min`, `max`, `step` checked"
    xlsform_types = ("integer", "int")
    whole = True

    def make(self, spec: FieldSpec) -> Any:
        return wtf.IntegerField(spec.id, validators=[OptionalValidator()])

    def attributes(self, spec: FieldSpec) -> dict[str, Any]:
        return {"inputmode": "numeric", **super().attributes(spec)}


@register("decimal")
class DecimalType(NumberType):
    title = N_("Number")
    phone = "decimal keyboard; `unit` shown beside; `min`, `max`, `step` checked"
    xlsform_types = ("decimal",)

    def make(self, spec: FieldSpec) -> Any:
        return wtf.DecimalField(spec.id, validators=[OptionalValidator()])

    def value(self, field: Any) -> Any:
        return float(field.data) if isinstance(field.data, Decimal | int | float) else None

    def form_data(self, value: Any) -> Any:
        # A number shows as it is; anything else (an odd value kept from before) shows empty, never breaks the page.
        if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
            return None
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            return None
        return number if number.is_finite() else None

    def attributes(self, spec: FieldSpec) -> dict[str, Any]:
        attrs = {"inputmode": "decimal", **super().attributes(spec)}
        attrs.setdefault("step", "any")
        return attrs


# -- dates and times --------------------------------------------------------------------------------------------

_EXCEL_EPOCH = dt.datetime(1899, 12, 30)  # day 0 of Excel's (1900) date system, as openpyxl and xlrd count


def _excel_moment(raw: Any, text: str, *, time_only: bool = False) -> dt.datetime | dt.time | None:
    """An Excel cell meant as a moment: a datetime, a time, a serial number (a time cell without its format is
    a fraction of a day) or ISO text; a time of day when `time_only`. None when it is none of these."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, dt.datetime):
        moment = raw
    elif isinstance(raw, dt.date):
        moment = dt.datetime.combine(raw, dt.time())
    elif isinstance(raw, dt.time):
        return raw.replace(microsecond=0) if time_only else None
    elif isinstance(raw, int | float) and 0 <= raw < 2_958_466:  # up to 9999-12-31
        moment = _EXCEL_EPOCH + dt.timedelta(seconds=round(raw * 86_400))
        if time_only and raw >= 1:
            return None
    else:
        try:
            if time_only:
                return dt.time.fromisoformat(text.strip().zfill(5) if len(text.strip()) == 4 else text.strip())
            moment = dt.datetime.fromisoformat(text.strip())
        except ValueError:
            return None
    return moment.time().replace(microsecond=0) if time_only else moment.replace(microsecond=0)

def _moment(kind: type[dt.date | dt.time], value: Any) -> Any:
    """A stored or default date, time or datetime as its input shows it; None (shown empty) for text it cannot
    read: an odd value kept from before must not break the form's page."""
    if isinstance(value, str):
        if kind is dt.time and re.fullmatch(r"[0-9]:[0-9]{2}(:[0-9]{2})?", value):
            value = "0" + value  # 9:30, as people write it
        try:
            return kind.fromisoformat(value)
        except ValueError:
            return None
    return value if isinstance(value, dt.date | dt.time) else None


def _moment_text(value: Any, pattern: str, kind: type[dt.date | dt.time]) -> bool:
    """Whether a default is ISO text of this shape naming a real moment (not 25:00, not 2026-02-30)."""
    if not isinstance(value, str) or not re.fullmatch(pattern, value):
        return False
    return _moment(kind, value) is not None


@register("date")
class DateType(FieldType):
    title = N_("Date")
    input_type = "date"
    is_moment = True
    phone = "the phone's date picker"
    stored = "ISO text (`2026-11-20`)"
    open311_datatype = "datetime"
    xlsform_types = ("date",)

    def make(self, spec: FieldSpec) -> Any:
        return wtf.DateField(spec.id, validators=[OptionalValidator()])

    def form_data(self, value: Any) -> Any:
        return _moment(dt.date, value)

    def check_default(self, value: Any, choices: list[Any] | None = None) -> Said | None:
        if _moment_text(value, r"[0-9]{4}-[0-9]{2}-[0-9]{2}", dt.date):
            return None
        return say(N_("default %(value)s is not a date: write YYYY-MM-DD (2026-11-20)"), value=_shown(value))

    def api_schema(self, spec: FieldSpec | None = None) -> dict[str, Any] | None:
        return {"type": "string", "format": "date"}

    def xlsform_default(self, text: str, raw: Any) -> tuple[Any, Said | None]:
        moment = _excel_moment(raw, text)
        if isinstance(moment, dt.datetime):
            return moment.date().isoformat(), None
        return None, say(N_("default '%(text)s' is not a date (YYYY-MM-DD)"), text=text)


@register("time")
class TimeType(FieldType):
    title = N_("Time")
    input_type = "time"
    phone = "the phone's time picker"
    stored = "text `HH:MM` (`09:30`)"
    xlsform_types = ("time",)

    def make(self, spec: FieldSpec) -> Any:
        return wtf.TimeField(spec.id, validators=[OptionalValidator()])

    def form_data(self, value: Any) -> Any:
        return _moment(dt.time, value)

    def check_default(self, value: Any, choices: list[Any] | None = None) -> Said | None:
        if _moment_text(value, r"[0-9]{1,2}:[0-9]{2}(:[0-9]{2})?", dt.time):
            return None
        return say(N_("default %(value)s is not a time: write HH:MM (09:30)"), value=_shown(value))

    def api_schema(self, spec: FieldSpec | None = None) -> dict[str, Any] | None:
        return {"type": "string", "pattern": "^[0-9]{2}:[0-9]{2}$"}

    def xlsform_default(self, text: str, raw: Any) -> tuple[Any, Said | None]:
        moment = _excel_moment(raw, text, time_only=True)
        if isinstance(moment, dt.time):
            return moment.strftime("%H:%M"), None
        return None, say(N_("default '%(text)s' is not a time of day (HH:MM)"), text=text)


@register("datetime")
class DateTimeType(FieldType):
    title = N_("Date and time")
    input_type = "datetime-local"
    is_moment = True
    phone = "the phone's date and time picker"
    stored = "ISO text without zone, the district's time (`2026-11-20T09:30`)"
    open311_datatype = "datetime"
    xlsform_types = ("datetime",)

    def make(self, spec: FieldSpec) -> Any:
        return wtf.DateTimeLocalField(spec.id, format=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"],
                                      validators=[OptionalValidator()])

    def form_data(self, value: Any) -> Any:
        return _moment(dt.datetime, value)

    def check_default(self, value: Any, choices: list[Any] | None = None) -> Said | None:
        if _moment_text(value, r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2})?", dt.datetime):
            return None
        return say(N_("default %(value)s is not a date and time: write YYYY-MM-DDTHH:MM (2026-11-20T09:30)"),
                   value=_shown(value))

    def api_schema(self, spec: FieldSpec | None = None) -> dict[str, Any] | None:
        return {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2})?$"}

    def shown(self, value: Any) -> Any:
        # 2026-12-07 05:21, as people write it, not the stored ISO 2026-12-07T05:21
        return value.replace("T", " ", 1) if isinstance(value, str) else value

    def xlsform_default(self, text: str, raw: Any) -> tuple[Any, Said | None]:
        moment = _excel_moment(raw, text)
        if isinstance(moment, dt.datetime):
            return moment.isoformat(timespec="minutes"), None
        return None, say(N_("default '%(text)s' is not a date and time (YYYY-MM-DDTHH:MM)"), text=text)


# -- choices ----------------------------------------------------------------------------------------------------

class ChoiceField(wtf.SelectField):
    """A select that never refuses on its own: the engine checks choices only for visible fields."""

    def pre_validate(self, form: Any) -> None:
        pass


class RadioChoiceField(wtf.RadioField):
    def pre_validate(self, form: Any) -> None:
        pass


class MultiChoiceField(wtf.SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()

    def pre_validate(self, form: Any) -> None:
        pass


def _choice_schema(spec: FieldSpec | None) -> dict[str, Any]:
    if spec is not None and spec.choices:
        # A client may send a choice's value as the definition writes it or as text (what a page posts).
        return {"enum": list(dict.fromkeys([v for v, _label in spec.choices] + [str(v) for v, _ in spec.choices]))}
    return {"type": ["string", "integer"]}


def _choice_value(value: Any) -> bool:
    """Whether a value could be a choice's (text or a whole number, as the definition's `value` is)."""
    return isinstance(value, str | int) and not isinstance(value, bool)


@register("single_choice")
class SingleChoiceType(FieldType):
    title = N_("One choice")
    template = "single_choice"
    display = "choices"
    is_choice = True
    offers_choices = True
    needs_choices = True
    phone = "radio buttons for up to 6 fixed choices, otherwise a list"
    stored = "the choice's `value`"
    open311_datatype = "singlevaluelist"
    open311_arguments = frozenset({"service_code"})
    xlsform_types = ("select_one",)

    def make(self, spec: FieldSpec) -> Any:
        # Few static choices read best as radio buttons on a phone; long or live lists as a select.
        if spec.choices and len(spec.choices) <= 6 and not spec.choices_from:
            return RadioChoiceField(spec.id, choices=[], validate_choice=False)
        return ChoiceField(spec.id, choices=[], validate_choice=False)

    def value(self, field: Any) -> Any:
        return field.data if field.data not in ("", None, "None") else None

    def form_data(self, value: Any) -> Any:
        return None if value is None else str(value)

    def api_schema(self, spec: FieldSpec | None = None) -> dict[str, Any] | None:
        return _choice_schema(spec)

    def xlsform_default(self, text: str, raw: Any) -> tuple[Any, Said | None]:
        return text, None

    def check_default(self, value: Any, choices: list[Any] | None = None) -> Said | None:
        if not _choice_value(value):
            return say(N_("default %(value)s is not a choice's value"), value=_shown(value))
        if choices is not None and str(value) not in {str(c) for c in choices}:
            return say(N_("default %(value)s is not one of the field's choices: %(allowed)s"), value=_shown(value),
                       allowed=", ".join(_shown(c) for c in choices))
        return None

    def docs(self) -> dict[str, str]:
        return {**super().docs(), "XLSForm": "`select_one` LIST, `acknowledge` (one choice `OK`)"}


@register("multiple_choice")
class MultipleChoiceType(FieldType):
    title = N_("Several choices")
    template = "multiple_choice"
    display = "choices"
    is_choice = True
    multiple = True
    offers_choices = True
    needs_choices = True
    phone = "check boxes"
    stored = "list of values"
    open311_datatype = "multivaluelist"
    xlsform_types = ("select_multiple",)

    def make(self, spec: FieldSpec) -> Any:
        return MultiChoiceField(spec.id, choices=[], validate_choice=False)

    def value(self, field: Any) -> Any:
        return [v for v in (field.data or []) if v not in ("", None)]

    def form_data(self, value: Any) -> Any:
        if value in (None, ""):
            return []
        return [str(v) for v in (value if isinstance(value, list) else [value])]

    def api_schema(self, spec: FieldSpec | None = None) -> dict[str, Any] | None:
        return {"type": "array", "items": _choice_schema(spec)}

    def xlsform_default(self, text: str, raw: Any) -> tuple[Any, Said | None]:
        return text.split(), None

    def check_default(self, value: Any, choices: list[Any] | None = None) -> Said | None:
        if _choice_value(value):
            value = [value]  # one value: the list of it, as the page shows it
        if not isinstance(value, list) or not all(_choice_value(v) for v in value):
            return say(N_("default %(value)s is not a list of choices' values (such as [a, b])"), value=_shown(value))
        known = {str(c) for c in choices} if choices is not None else None
        wrong = [v for v in value if known is not None and str(v) not in known]
        if wrong:
            return say(N_("default %(value)s is not one of the field's choices: %(allowed)s"), value=_shown(wrong[0]),
                       allowed=", ".join(_shown(c) for c in choices or ()))
        return None

    def docs(self) -> dict[str, str]:
        return {**super().docs(), "XLSForm": "`select_multiple` LIST"}


# -- places -----------------------------------------------------------------------------------------------------

@register("area")
class AreaType(SingleChoiceType):
    title = N_("Road, segment or grid")
    display = "choices"  # the area's name (a live label), not its key
    needs_choices = False
    names_area = True
    live_choices = "areas"
    phone = ("a list of the scheme's areas (roads, segments, grids), filtered by `area_kinds`; past 60, a search "
             "by name that fills the list")
    stored = "the area's key"
    open311_datatype = None
    open311_arguments = frozenset()
    xlsform_types = ()

    def make(self, spec: FieldSpec) -> Any:
        return ChoiceField(spec.id, choices=[], validate_choice=False)

    def area_key(self, value: Any) -> str | None:
        return value or None

    def with_area(self, key: str) -> Any:
        return key

    def api_schema(self, spec: FieldSpec | None = None) -> dict[str, Any] | None:
        return {"type": "string", "description": "An area's key."}

    def xlsform_default(self, text: str, raw: Any) -> tuple[Any, Said | None]:
        return FieldType.xlsform_default(self, text, raw)

    def docs(self) -> dict[str, str]:
        return {**FieldType.docs(self)}


class LocationField(wtf.Field):
    """Browser geolocation (lat, lng, accuracy in metres) with an area picked from a list as the fallback."""

    def process(self, formdata: Any, data: Any = wtf.core.unset_value, extra_filters: Any = None) -> None:
        self.process_errors = []
        self.data = data if isinstance(data, dict) else {}
        self.raw_data = []
        if formdata is not None and any(f"{self.name}-{k}" in formdata for k in ("lat", "lng", "area")):
            raw = {k: (formdata.get(f"{self.name}-{k}") or "").strip() for k in ("lat", "lng", "accuracy", "area")}
            self.raw_data = [raw]
            self.data = {}
            try:
                if raw["lat"] and raw["lng"]:
                    lat, lng = float(raw["lat"]), float(raw["lng"])
                    if not (-90 <= lat <= 90 and -180 <= lng <= 180):
                        raise ValueError
                    self.data.update(lat=round(lat, 6), lng=round(lng, 6))
                    if raw["accuracy"]:
                        accuracy = float(raw["accuracy"])
                        if not math.isfinite(accuracy) or accuracy < 0:
                            raise ValueError
                        self.data["accuracy"] = round(accuracy, 1)
            except ValueError:
                self.process_errors.append("invalid location")
            if raw["area"]:
                self.data["area"] = raw["area"]
        self.choices: list[tuple[str, str]] = getattr(self, "choices", [])

    def __call__(self, **kwargs: Any) -> Markup:
        return Markup("")


LOCATION_PARTS = ("lat", "lng", "accuracy", "area")
LOCATION_LIMITS = {"lat": (-90, 90), "lng": (-180, 180), "accuracy": (0, math.inf)}


@register("location")
class LocationType(FieldType):
    title = N_("Position on the map")
    template = "location"
    display = "location"
    gives_location = True
    names_area = True
    offers_choices = True
    live_choices = "areas"
    one_input = False
    phone = ('"use my current location" (browser geolocation with accuracy) on a map whose pin can be dragged '
             "(the road or grid there is picked), and a road/grid list as the fallback (past 60 places, a search "
             "by name that fills the list)")
    stored = "`{lat, lng, accuracy, area}`"
    open311_arguments = frozenset({"location"})
    xlsform_types = ("geopoint", "location", "gps")

    def make(self, spec: FieldSpec) -> Any:
        return LocationField(spec.id)

    def value(self, field: Any) -> Any:
        return dict(field.data) if field.data else None

    def chosen(self, value: Any) -> frozenset[str]:
        return super().chosen(value.get("area") if isinstance(value, dict) else None)

    def area_key(self, value: Any) -> str | None:
        return value.get("area") if isinstance(value, dict) else None

    def with_area(self, key: str) -> Any:
        return {"area": key}

    def export_cells(self, spec: FieldSpec, value: Any) -> list[Any]:
        if isinstance(value, dict):
            parts = [f"{value['lat']},{value['lng']}"] if "lat" in value else []
            return [" ".join(parts + ([value["area"]] if value.get("area") else []))]
        return super().export_cells(spec, value)

    def api_schema(self, spec: FieldSpec | None = None) -> dict[str, Any] | None:
        return {"type": "object", "additionalProperties": False, "properties": {
            "lat": {"type": "number", "minimum": -90, "maximum": 90},
            "lng": {"type": "number", "minimum": -180, "maximum": 180},
            "accuracy": {"type": "number", "minimum": 0, "description": "In metres."},
            "area": {"type": "string", "description": "An area's key (the road or grid picked)."}}}

    def api_input(self, spec: FieldSpec, value: Any, name: str, data: MultiDict, _: Gettext) -> str | None:
        # Checked here: the page's location input keeps quiet about numbers it cannot use (a phone's own
        # reading is never wrong, a client's may be).
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
        if area is not None and form_text(area) is None:
            return _("The area is an area's key.")
        for part in LOCATION_PARTS:
            if value.get(part) is not None:
                data.add(f"{name}-{part}", form_text(value[part]))
        return None


# -- routes -----------------------------------------------------------------------------------------------------

MAX_ROUTE_POINTS = 5000  # positions a route keeps (one every ten metres: fifty kilometres)


class RouteField(wtf.Field):
    """The route walked while the form was open: the phone's positions as a GeoJSON LineString (one hidden
    input, its JSON), checked as a shape."""

    def process_formdata(self, valuelist: list) -> None:
        self.data = None
        text = (valuelist[0] if valuelist else "") or ""
        if not isinstance(text, str) or not text.strip():
            return
        route, problem = read_route(text)
        if problem:
            self.process_errors.append(problem)
        self.data = route

    def _value(self) -> str:
        return json.dumps(self.data, separators=(",", ":")) if self.data else ""

    def __call__(self, **kwargs: Any) -> Markup:
        return Markup("")


def read_route(text: str) -> tuple[dict[str, Any] | None, str | None]:
    """A route from its JSON (a LineString in WGS-84 of at most MAX_ROUTE_POINTS positions), or what is wrong.
    A single position is no route yet: nothing."""
    from flask_babel import gettext  # (at request time: this module has no Flask of its own)

    from ..org.engine import check_geometry

    if len(text) > MAX_ROUTE_POINTS * 48:
        return None, gettext("The route is too long.")
    try:
        data = json.loads(text)
    except ValueError:
        return None, gettext("The route could not be read: record it again.")
    points = data.get("coordinates") if isinstance(data, dict) and data.get("type") == "LineString" else None
    if not isinstance(points, list) or not all(isinstance(p, list) and len(p) == 2 for p in points):
        return None, gettext("The route could not be read: record it again.")  # (heights are not kept)
    if len(points) < 2:
        return None, None
    if len(points) > MAX_ROUTE_POINTS:
        return None, gettext("The route is too long.")
    route, problem = check_geometry(data)
    return (route, None) if problem is None else (None, problem)


def route_length_m(route: Mapping[str, Any] | None) -> float:
    """The length of a route in metres (along the ground, near enough at a district's size)."""
    points = (route or {}).get("coordinates") if isinstance(route, Mapping) else None
    if not isinstance(points, list):
        return 0.0
    total = 0.0
    for first, second in zip(points, points[1:], strict=False):
        (lng1, lat1), (lng2, lat2) = first[:2], second[:2]
        scale = math.cos(math.radians((lat1 + lat2) / 2))
        total += math.hypot((lng2 - lng1) * scale, lat2 - lat1) * 111_320
    return total


@register("route")
class RouteType(FieldType):
    title = N_("Route walked")
    template = "route"
    display = "route"
    gives_route = True
    one_input = True
    phone = ('"record my route": the phone\'s positions while the form is open, as a line (every 10 m or so, '
             "while the fix is good), shown with its length; recording stops when the person says so")
    stored = "GeoJSON `LineString` in WGS-84 (`coordinates`: `[longitude, latitude]` pairs)"

    def make(self, spec: FieldSpec) -> Any:
        return RouteField(spec.id)

    def value(self, field: Any) -> Any:
        return field.data or None

    def check_default(self, value: Any, choices: list[Any] | None = None) -> Said | None:
        return say(N_("a field of type %(type)s takes no default"), type=self.name)  # (a route is walked)

    def export_cells(self, spec: FieldSpec, value: Any) -> list[Any]:
        return [""] if not value else [f"{round(route_length_m(value))} m"]

    def api_schema(self, spec: FieldSpec | None = None) -> dict[str, Any] | None:
        return {"type": "object", "required": ["type", "coordinates"], "additionalProperties": False,
                "description": "A GeoJSON LineString in WGS-84.",
                "properties": {"type": {"const": "LineString"}, "coordinates": {
                    "type": "array", "minItems": 2, "maxItems": MAX_ROUTE_POINTS,
                    "items": {"type": "array", "minItems": 2, "maxItems": 2, "items": {"type": "number"}}}}}

    def api_input(self, spec: FieldSpec, value: Any, name: str, data: MultiDict, _: Gettext) -> str | None:
        if value is None:
            return None
        route, problem = read_route(json.dumps(value)) if isinstance(value, dict) else (None, _("Not a route."))
        if problem or route is None:
            return problem or _("Not a route.")
        data.add(name, json.dumps(route, separators=(",", ":")))
        return None


# -- uploads ----------------------------------------------------------------------------------------------------

class UploadsField(wtf.Field):
    """Photos or files: kept upload ids (hidden or checkbox inputs) and new files under the same name."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.kept: list[int] = []
        self.new_files: list[FileStorage] = []

    def process_formdata(self, valuelist: list) -> None:
        self.kept, self.new_files = [], []
        for item in valuelist:
            if isinstance(item, FileStorage):
                if item.filename:
                    self.new_files.append(item)
            elif isinstance(item, str) and item.isascii() and item.isdigit() and len(item) <= 10:
                self.kept.append(int(item))
        self.data = list(self.kept)

    def process_data(self, value: Any) -> None:
        self.kept = [int(v) for v in value or [] if str(v).isascii() and str(v).isdigit() and len(str(v)) <= 10]
        self.data = list(self.kept)

    def _value(self) -> str:
        return ""

    def __call__(self, **kwargs: Any) -> Markup:  # rendered by its template, not here
        return Markup("")


@register("photo")
class PhotoType(FieldType):
    title = N_("Photos")
    template = "uploads"
    display = "uploads"
    is_file = True
    multiple = True
    one_input = False
    default_accept = ("image",)
    phone = "opens the camera (`capture`), several photos (`max_files`), size limit (`max_size_mb`)"
    stored = "list of upload ids"
    api_doc = "list of `{name, content}`, the content in base64"
    open311_arguments = frozenset({"media"})
    xlsform_types = ("image", "photo")

    def make(self, spec: FieldSpec) -> Any:
        return UploadsField(spec.id)

    def value(self, field: Any) -> Any:
        return list(field.kept)

    def accept(self, spec: FieldSpec) -> str:
        return ",".join(["image/*"] + (["application/pdf"] if "pdf" in spec.accept else []))

    def limits(self, spec: FieldSpec, value: Any) -> Iterator[tuple[str, dict]]:
        yield from super().limits(spec, value)
        if spec.max_files and isinstance(value, list) and len(value) > spec.max_files:
            yield "max_files", {"max_files": spec.max_files}

    def export_cells(self, spec: FieldSpec, value: Any) -> list[Any]:
        return [""] if value is None else [len(value)]  # how many: the files themselves are on the record's page

    def api_schema(self, spec: FieldSpec | None = None) -> dict[str, Any] | None:
        schema: dict[str, Any] = {"type": "array", "items": {
            "type": "object", "required": ["content"], "additionalProperties": False,
            "properties": {"name": {"type": "string"},
                           "content": {"type": "string", "contentEncoding": "base64"}}}}
        if spec is not None and spec.max_files:
            schema["maxItems"] = spec.max_files
        return schema

    def api_input(self, spec: FieldSpec, value: Any, name: str, data: MultiDict, _: Gettext) -> str | None:
        if not isinstance(value, list):
            return _("A list of files is expected.")
        files = []
        for item in value:
            if (not isinstance(item, dict) or not isinstance(item.get("content"), str)
                    or set(item) - {"name", "content"}):
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

    def from_xlsform(self, out: dict[str, Any]) -> None:
        out.update({"max_files": 1, "accept": ["image"], "capture": True})


@register("file")
class FileType(PhotoType):
    title = N_("Files")
    default_accept = ("image", "pdf")
    phone = "pictures or PDF (`accept: [image, pdf]`)"
    open311_arguments = frozenset()
    xlsform_types = ("file",)

    def from_xlsform(self, out: dict[str, Any]) -> None:
        out["max_files"] = 1


# -- no value of their own, or values of their children ---------------------------------------------------------

@register("note")
class NoteType(FieldType):
    title = N_("A note (no input)")
    template = "note"
    has_value = False
    one_input = False
    phone = "read-only text"
    stored = "—"
    xlsform_types = ("note",)

    def make(self, spec: FieldSpec) -> Any:
        return None

    def api_schema(self, spec: FieldSpec | None = None) -> dict[str, Any] | None:
        return None

    def docs(self) -> dict[str, str]:
        return {**super().docs(), "in the JSON API": "—"}


@register("section")
class SectionType(NoteType):
    """A titled group: its fields' values sit at its own level (the form's page renders it around them)."""
    title = N_("Section (a group of fields)")

    template = ""
    transparent = True
    phone = "a titled group; hiding it hides everything in it"
    stored = "(its fields, at the top level)"
    xlsform_types = ()

    def docs(self) -> dict[str, str]:
        return {**super().docs(), "in the JSON API": "(its fields, at the top level)",
                "XLSForm": "`begin group` … `end group`"}


@register("repeat")
class RepeatType(FieldType):
    """Rows of its fields, added and removed on the page (which renders it around them)."""
    title = N_("Repeated rows")

    template = ""
    holds_rows = True
    one_input = False
    phone = ("rows added and removed with buttons (`min_repeat`, `max_repeat`); or exactly as many rows as "
             "`repeat_count` says, without buttons")
    stored = "list of row objects"

    def make(self, spec: FieldSpec) -> Any:
        return None  # the builder makes a list of row forms of its children

    def export_cells(self, spec: FieldSpec, value: Any) -> list[Any]:
        return [""] if value is None else [len(value)]  # how many rows

    def api_schema(self, spec: FieldSpec | None = None) -> dict[str, Any] | None:
        rows = values_schema(spec.children) if spec is not None else {"type": "object"}
        schema: dict[str, Any] = {"type": "array", "items": rows}
        if spec is not None and spec.max_repeat:
            schema["maxItems"] = spec.max_repeat
        if spec is not None and spec.repeat_count is not None:
            schema["description"] = (f"As many rows as `{spec.repeat_count.source}` says (0 to 100): missing rows get "
                                     "their defaults, extra rows are dropped.")
        return schema

    def docs(self) -> dict[str, str]:
        return {**super().docs(), "XLSForm": "`begin repeat` … `end repeat`"}
