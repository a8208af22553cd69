"""One class per field type: how it becomes a WTForms field, how its input becomes a typed value, how it renders.

Registered by name in FIELD_TYPES (the definition's `type`); each has one template snippet
`forms/fields/<template>.html`.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from markupsafe import Markup
from werkzeug.datastructures import FileStorage
from wtforms import fields as wtf
from wtforms.validators import Optional as OptionalValidator
from wtforms.widgets import CheckboxInput, ListWidget

from .engine import FieldSpec

FIELD_TYPES: dict[str, FieldType] = {}


def register(name: str) -> Callable[[type[FieldType]], type[FieldType]]:
    def decorator(cls: type[FieldType]) -> type[FieldType]:
        FIELD_TYPES[name] = cls()
        cls.name = name
        return cls

    return decorator


class FieldType:
    """Base: a text input."""

    name = "text"
    template = "input"
    input_type = "text"

    def make(self, spec: FieldSpec) -> Any:
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
        if spec.readonly or spec.calculate is not None:
            attrs["readonly"] = True
        return attrs


@register("text")
class TextType(FieldType):
    pass


@register("textarea")
class TextareaType(FieldType):
    template = "textarea"
    input_type = None  # a <textarea> has no type

    def make(self, spec: FieldSpec) -> Any:
        return wtf.TextAreaField(spec.id, validators=[OptionalValidator()])


class NumberType(FieldType):
    input_type = "number"

    def attributes(self, spec: FieldSpec) -> dict[str, Any]:
        attrs = super().attributes(spec)
        for key in ("min", "max", "step"):
            if getattr(spec, key) is not None:
                attrs[key] = f"{getattr(spec, key):g}"
        return attrs


@register("integer")
class IntegerType(NumberType):
    def make(self, spec: FieldSpec) -> Any:
        return wtf.IntegerField(spec.id, validators=[OptionalValidator()])

    def attributes(self, spec: FieldSpec) -> dict[str, Any]:
        return {"inputmode": "numeric", **super().attributes(spec)}


@register("decimal")
class DecimalType(NumberType):
    def make(self, spec: FieldSpec) -> Any:
        return wtf.DecimalField(spec.id, validators=[OptionalValidator()])

    def value(self, field: Any) -> Any:
        return float(field.data) if isinstance(field.data, Decimal | int | float) else None

    def form_data(self, value: Any) -> Any:
        return Decimal(str(value)) if isinstance(value, int | float) else value

    def attributes(self, spec: FieldSpec) -> dict[str, Any]:
        attrs = {"inputmode": "decimal", **super().attributes(spec)}
        attrs.setdefault("step", "any")
        return attrs


@register("date")
class DateType(FieldType):
    input_type = "date"

    def make(self, spec: FieldSpec) -> Any:
        return wtf.DateField(spec.id, validators=[OptionalValidator()])

    def form_data(self, value: Any) -> Any:
        return dt.date.fromisoformat(value) if isinstance(value, str) else value


@register("time")
class TimeType(FieldType):
    input_type = "time"

    def make(self, spec: FieldSpec) -> Any:
        return wtf.TimeField(spec.id, validators=[OptionalValidator()])

    def form_data(self, value: Any) -> Any:
        return dt.time.fromisoformat(value) if isinstance(value, str) else value


@register("datetime")
class DateTimeType(FieldType):
    input_type = "datetime-local"

    def make(self, spec: FieldSpec) -> Any:
        return wtf.DateTimeLocalField(spec.id, format=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"],
                                      validators=[OptionalValidator()])

    def form_data(self, value: Any) -> Any:
        return dt.datetime.fromisoformat(value) if isinstance(value, str) else value


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


@register("single_choice")
class SingleChoiceType(FieldType):
    template = "single_choice"

    def make(self, spec: FieldSpec) -> Any:
        # Few static choices read best as radio buttons on a phone; long or live lists as a select.
        if spec.choices and len(spec.choices) <= 6 and not spec.choices_from:
            return RadioChoiceField(spec.id, choices=[], validate_choice=False)
        return ChoiceField(spec.id, choices=[], validate_choice=False)

    def value(self, field: Any) -> Any:
        return field.data if field.data not in ("", None, "None") else None

    def form_data(self, value: Any) -> Any:
        return None if value is None else str(value)


@register("area")
class AreaType(SingleChoiceType):
    def make(self, spec: FieldSpec) -> Any:
        return ChoiceField(spec.id, choices=[], validate_choice=False)


@register("multiple_choice")
class MultipleChoiceType(FieldType):
    template = "multiple_choice"

    def make(self, spec: FieldSpec) -> Any:
        return MultiChoiceField(spec.id, choices=[], validate_choice=False)

    def value(self, field: Any) -> Any:
        return [v for v in (field.data or []) if v not in ("", None)]

    def form_data(self, value: Any) -> Any:
        return [str(v) for v in value or []]


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
    template = "uploads"

    def make(self, spec: FieldSpec) -> Any:
        return UploadsField(spec.id)

    def value(self, field: Any) -> Any:
        return list(field.kept)

    def accept(self, spec: FieldSpec) -> str:
        return ",".join(["image/*"] + (["application/pdf"] if "pdf" in spec.accept else []))


@register("file")
class FileType(PhotoType):
    pass


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


@register("location")
class LocationType(FieldType):
    template = "location"

    def make(self, spec: FieldSpec) -> Any:
        return LocationField(spec.id)

    def value(self, field: Any) -> Any:
        return dict(field.data) if field.data else None


@register("note")
class NoteType(FieldType):
    template = "note"

    def make(self, spec: FieldSpec) -> Any:
        return None


def live_attrs(live_url: str | None) -> dict[str, str]:
    """htmx attributes that ask the server for the form again when this input changes."""
    return {"hx-post": live_url, "hx-trigger": "change"} if live_url else {}


def field_type(name: str) -> FieldType:
    return FIELD_TYPES[name]
