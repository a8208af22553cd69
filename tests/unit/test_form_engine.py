"""The pure form engine: visibility, required rules, limits, constraints, calculations, what is stored."""

from __future__ import annotations

import datetime as dt

from server.forms.engine import default_values, evaluate, form_spec, stored_values

FORM = {
    "kind": "form", "id": "t", "name": "t",
    "fields": [
        {"id": "kind", "type": "single_choice", "choices": [{"value": "a", "label": "A"}, {"value": "b", "label": "B"}],
         "required": True},
        {"id": "qty", "type": "decimal", "min": 0, "max": 10, "step": 0.5, "visible_if": "kind == 'a'"},
        {"id": "note", "type": "text", "required_if": "qty is not None and qty > 3",
         "constraints": [{"check": "len(value) >= 2", "message": {"zh": "太短", "en": "Too short"}}]},
        {"id": "total", "type": "decimal", "calculate": "coalesce(qty, 0) * 2"},
        {"id": "sec", "type": "section", "visible_if": "kind == 'b'",
         "fields": [{"id": "inner", "type": "text", "required": True}]},
        {"id": "rows", "type": "repeat", "min_repeat": 1, "max_repeat": 2,
         "fields": [{"id": "what", "type": "text", "required": True},
                    {"id": "how_many", "type": "integer", "visible_if": "what == 'count'", "required": True}]},
        {"id": "day", "type": "date", "default_from": "today"},
        {"id": "who", "type": "text", "default_from": "user.name"},
    ],
}
CONTEXT = {"user": {"name": "张三"}, "today": dt.date(2026, 11, 22)}


def run(values: dict, check: bool = True):  # noqa: ANN201
    spec = form_spec(FORM)
    return spec, evaluate(spec, values, CONTEXT, check=check)


def test_defaults_from_context():
    values = default_values(form_spec(FORM), CONTEXT)
    assert values["day"] == dt.date(2026, 11, 22) and values["who"] == "张三"
    assert values["rows"] == [{"what": None, "how_many": None}]


def test_hidden_fields_are_not_validated_nor_stored():
    spec, state = run({"kind": "b", "qty": 99, "inner": "x", "rows": [{"what": "x"}]})
    assert "qty" in state.hidden and "qty" not in state.errors
    assert state.ok, state.errors
    assert "qty" not in stored_values(spec, state)
    assert stored_values(spec, state)["total"] == 0


def test_required_if_limits_step_and_constraint_messages():
    _, state = run({"kind": "a", "qty": 12.25, "note": "", "rows": [{"what": "x"}]})
    assert state.errors["qty"] == ["Must be at most 10.", "Must be in steps of 0.5."]
    assert state.errors["note"] == ["This field is required."]
    _, state = run({"kind": "a", "qty": 4, "note": "x", "rows": [{"what": "x"}]})
    assert state.errors["note"] == ["{'zh': '太短', 'en': 'Too short'}"]  # the web layer translates texts


def test_section_visibility_hides_its_children():
    _, state = run({"kind": "a", "rows": [{"what": "x"}]})
    assert "sec" in state.hidden and "inner" in state.hidden and "inner" not in state.errors


def test_repeat_rows_are_checked_row_by_row():
    spec, state = run({"kind": "b", "inner": "y", "rows": [{"what": "count", "how_many": None}, {"what": "z"}]})
    assert state.errors == {"rows.0.how_many": ["This field is required."]}
    assert "rows.1.how_many" in state.hidden
    _, state = run({"kind": "b", "inner": "y", "rows": []})
    assert state.errors == {"rows": ["Add at least 1."]}
    _, state = run({"kind": "b", "inner": "y", "rows": [{"what": "a"}] * 3})
    assert state.errors == {"rows": ["At most 2."]}


def test_calculation_and_refresh_without_checks():
    _, state = run({"kind": "a", "qty": 2.5}, check=False)
    assert state.values["total"] == 5 and state.errors == {}


def test_triggers_are_the_fields_others_depend_on():
    assert form_spec(FORM).triggers == {"kind", "qty", "what"}
