"""Repeat groups with `repeat_count`: exactly that many rows, padded with defaults or cut, in the pure engine."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from server.forms.engine import MAX_ROWS, default_values, evaluate, form_spec, stored_values, whole_rows

FORM = {
    "kind": "form", "id": "household", "name": "入户登记",
    "fields": [
        {"id": "members", "type": "integer", "min": 0, "max": 20},
        {"id": "people", "type": "repeat", "repeat_count": "members",
         "fields": [{"id": "person_name", "type": "text", "required": True},
                    {"id": "seen_on", "type": "date", "default_from": "today"},
                    {"id": "relation", "type": "text", "default": "家人"}]},
        {"id": "listed", "type": "integer", "calculate": "len(people)"},
    ],
}
CONTEXT = {"today": dt.date(2026, 11, 22)}
NEW_ROW = {"person_name": None, "seen_on": dt.date(2026, 11, 22), "relation": "家人"}


def run(values: dict[str, Any], check: bool = True):  # noqa: ANN201
    spec = form_spec(FORM)
    return spec, evaluate(spec, values, CONTEXT, check=check)


def test_rows_are_added_with_their_defaults() -> None:
    _, state = run({"members": 3, "people": [{"person_name": "张三", "seen_on": None, "relation": "户主"}]},
                   check=False)
    assert state.values["people"] == [{"person_name": "张三", "seen_on": None, "relation": "户主"}, NEW_ROW, NEW_ROW]
    assert state.values["listed"] == 3  # later logic sees the rows the group has


def test_extra_rows_are_dropped_and_not_stored() -> None:
    rows = [{"person_name": name, "relation": "x"} for name in ("张三", "李四", "王五")]
    spec, state = run({"members": 1, "people": rows})
    assert state.ok, state.errors
    assert stored_values(spec, state)["people"] == [{"person_name": "张三", "relation": "x"}]
    assert stored_values(spec, state)["listed"] == 1


def test_padded_rows_are_checked_like_any() -> None:
    """A submission with fewer rows than the count is refused for what the new rows lack."""
    _, state = run({"members": 2, "people": [{"person_name": "张三"}]})
    assert state.errors == {"people.1.person_name": ["This field is required."]}


def test_values_given_are_not_changed_in_place() -> None:
    rows = [{"person_name": "张三"}, {"person_name": "李四"}]
    values = {"members": 1, "people": rows}
    run(values)
    assert values["people"] is rows and len(rows) == 2


@pytest.mark.parametrize(("members", "count"), [
    (None, None), ("", None), ("three", None), ([], None), (True, None), (float("nan"), None),
    (float("inf"), None), (0, 0), (2, 2), (2.9, 2), (2.9999999999, 3), ("4", 4), (" 5 ", 5), ("2.5", 2),
    (Decimal("3"), 3), (-4, 0), (MAX_ROWS + 1, MAX_ROWS), (10**40, MAX_ROWS), ("1e400", None),
])
def test_the_count_is_a_whole_number_from_0_to_100(members: Any, count: int | None) -> None:
    assert whole_rows(members) == count
    _, state = run({"members": members, "people": []}, check=False)
    assert len(state.values["people"]) == (count or 0)
    two = [{"person_name": "张三"}, {"person_name": "李四"}]
    _, state = run({"members": members, "people": two}, check=False)
    assert len(state.values["people"]) == (2 if count is None else count)  # an unknown count keeps the rows


def test_a_count_that_fails_keeps_the_rows_typed() -> None:
    spec = form_spec({**FORM, "id": "failing", "fields": [
        {**FORM["fields"][0]}, {**FORM["fields"][1], "repeat_count": "members * 2 + 1"}]})
    assert evaluate(spec, {"members": None, "people": [{"person_name": "x"}]}, CONTEXT).values["people"] == [
        {"person_name": "x"}]
    assert len(evaluate(spec, {"members": 2, "people": []}, CONTEXT, check=False).values["people"]) == 5


def test_a_new_form_has_as_many_rows_as_the_default_count() -> None:
    assert default_values(form_spec(FORM), CONTEXT)["people"] == []
    spec = form_spec({**FORM, "id": "fixed", "fields": [{**FORM["fields"][0], "default": 2}, FORM["fields"][1]]})
    assert default_values(spec, CONTEXT)["people"] == [NEW_ROW, NEW_ROW]
    written = form_spec({**FORM, "id": "three", "fields": [{**FORM["fields"][1], "repeat_count": 3}]})
    assert len(default_values(written, CONTEXT)["people"]) == 3


def test_a_hidden_group_is_left_alone() -> None:
    spec = form_spec({**FORM, "id": "hidden", "fields": [
        FORM["fields"][0], {**FORM["fields"][1], "visible_if": "members > 1"}]})
    state = evaluate(spec, {"members": 1, "people": [{"person_name": "x"}, {"person_name": "y"}]}, CONTEXT)
    assert "people" in state.hidden and "people" not in stored_values(spec, state)


def test_a_group_in_a_row_counts_by_its_row() -> None:
    spec = form_spec({"kind": "form", "id": "nested", "name": "n", "fields": [
        {"id": "flats", "type": "repeat", "fields": [
            {"id": "residents", "type": "integer"},
            {"id": "names", "type": "repeat", "repeat_count": "residents", "fields": [{"id": "who", "type": "text"}]},
        ]}]})
    state = evaluate(spec, {"flats": [{"residents": 2, "names": []}, {"residents": 0, "names": [{"who": "x"}]}]},
                     {}, check=False)
    assert [len(flat["names"]) for flat in state.values["flats"]] == [2, 0]


def test_the_count_triggers_a_refresh() -> None:
    assert "members" in form_spec(FORM).triggers
