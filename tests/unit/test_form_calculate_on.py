"""`calculate_on` (XLSForm's `trigger`): a calculation that runs only when one of its named fields changes."""

from __future__ import annotations

import datetime as dt

import pytest

from server.definitions.bundle import check_files
from server.definitions.errors import DefinitionsInvalid
from server.forms.engine import evaluate, form_spec, stored_values
from tests.support.schemes import MINI_SCHEME

SHOPS = [{"value": "a", "label": "A"}, {"value": "b", "label": "B"}]
FORM = {
    "kind": "form", "id": "t", "name": "t",
    "fields": [
        {"id": "problem", "type": "text"},
        {"id": "seen_at", "type": "datetime", "calculate": "now", "calculate_on": ["problem"], "readonly": True},
        {"id": "shop", "type": "single_choice", "choices": SHOPS},
        {"id": "contact", "type": "text", "calculate": "str(shop) + ' 负责人'", "calculate_on": ["shop"]},
        {"id": "rows", "type": "repeat",
         "fields": [{"id": "qty", "type": "integer"},
                    {"id": "note", "type": "text", "calculate": "str(qty) + ' @ ' + str(shop)",
                     "calculate_on": ["qty", "shop"]}]},
    ],
}
EARLIER = dt.datetime(2026, 11, 20, 9, 0)
NOW = dt.datetime(2026, 11, 20, 10, 30)
CONTEXT = {"now": NOW}


def run(values: dict, changed: set[str] | frozenset[str] = frozenset()):  # noqa: ANN201
    return evaluate(form_spec(FORM), values, CONTEXT, changed=changed)


def test_a_listed_field_that_changed_overwrites_the_value():
    state = run({"problem": "井盖缺失", "seen_at": EARLIER, "shop": "b", "contact": "王经理"},
                changed={"shop"})
    assert state.values["contact"] == "b 负责人"  # the shop changed: the suggestion follows it
    assert state.values["seen_at"] == EARLIER  # `problem` did not change: kept
    assert state.calculated == {"contact"}
    state = run({"problem": "井盖缺失", "seen_at": EARLIER}, changed={"problem"})
    assert state.values["seen_at"] == NOW


def test_an_unchanged_listed_field_keeps_what_was_typed():
    state = run({"shop": "a", "contact": "王经理", "problem": "x", "seen_at": EARLIER})
    assert state.values["contact"] == "王经理" and state.values["seen_at"] == EARLIER
    assert not state.calculated
    assert stored_values(form_spec(FORM), state)["contact"] == "王经理"
    # a change of a field it does not list leaves it too
    assert run({"shop": "a", "contact": "王经理"}, changed={"problem"}).values["contact"] == "王经理"


def test_an_empty_value_is_filled_when_a_listed_field_has_one():
    state = run({"shop": "a", "contact": None, "problem": "x", "seen_at": None})
    assert state.values["contact"] == "a 负责人" and state.values["seen_at"] == NOW
    assert state.calculated == {"contact", "seen_at"}
    # nothing to calculate from: it stays empty
    state = run({"shop": None, "contact": None, "problem": "", "seen_at": None})
    assert state.values["contact"] is None and state.values["seen_at"] is None


def test_a_row_field_follows_its_own_row_and_the_record():
    rows = [{"qty": 1, "note": "typed"}, {"qty": 2, "note": "kept"}]
    state = run({"shop": "a", "contact": "x", "rows": [dict(r) for r in rows]}, changed={"rows.1.qty"})
    assert [r["note"] for r in state.values["rows"]] == ["typed", "2 @ a"]
    assert "rows.1.note" in state.calculated and "rows.0.note" not in state.calculated
    state = run({"shop": "b", "contact": "x", "rows": [dict(r) for r in rows]}, changed={"shop"})
    assert [r["note"] for r in state.values["rows"]] == ["1 @ b", "2 @ b"]


def test_only_the_listed_fields_refresh_the_page():
    triggers = form_spec(FORM).triggers
    assert {"problem", "shop", "qty"} <= triggers
    plain = form_spec({**FORM, "id": "u", "fields": [
        {"id": "a", "type": "text"}, {"id": "b", "type": "text"},
        {"id": "c", "type": "text", "calculate": "a + b", "calculate_on": ["a"]}]})
    assert plain.triggers == {"a"}  # `b` feeds the calculation but does not run it


TRIGGER_FORM = """\
kind: form
id: log
name: 巡查日志
purpose: patrol
fields:
  - {id: problem, type: text}
  - {id: seen_at, type: datetime, calculate: now, calculate_on: [problem], readonly: true}
  - {id: shop, type: text, calculate_on: [problem]}
  - {id: contact, type: text, calculate: "shop", calculate_on: [contact, shoop]}
  - id: rows
    type: repeat
    fields:
      - {id: qty, type: integer}
      - {id: note, type: text, calculate: "str(qty)", calculate_on: [qty, problem, other_qty]}
  - id: others
    type: repeat
    fields:
      - {id: other_qty, type: integer}
"""


def errors_of(form: str) -> list[str]:
    with pytest.raises(DefinitionsInvalid) as info:
        check_files({"s.yaml": MINI_SCHEME, "log.yaml": form}, {})
    return [str(e) for e in info.value.errors]


def test_the_definition_check_names_what_can_never_take_effect():
    found = errors_of(TRIGGER_FORM)
    assert found == [
        "log.yaml line 8: fields[2].calculate_on: 'calculate_on' takes effect only with 'calculate'",
        "log.yaml line 9: fields[3].calculate_on[0]: field 'contact' cannot be calculated when it changes itself",
        "log.yaml line 9: fields[3].calculate_on[1]: unknown field 'shoop' (did you mean 'shop'?)",
        "log.yaml line 14: fields[4].fields[1].calculate_on[2]: 'other_qty' is not a field with a value of this "
        "row or of the record",
    ]
    # the valid ones pass: a field of the record and one of its own row
    fixed = (TRIGGER_FORM.replace("{id: shop, type: text, calculate_on: [problem]}", "{id: shop, type: text}")
             .replace("[contact, shoop]", "[shop]").replace(", other_qty]", "]"))
    check_files({"s.yaml": MINI_SCHEME, "log.yaml": fixed}, {})


def test_calculate_on_lists_at_least_one_field():
    found = errors_of(TRIGGER_FORM.replace("calculate_on: [problem], readonly", "calculate_on: [], readonly"))
    assert any("fields[1].calculate_on" in e for e in found), found
