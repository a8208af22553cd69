"""A literal `default` checked by its field's type; choices carrying `data` for a `choice_filter`; texts in
languages beyond zh and en, kept and shown."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from server.definitions.bundle import check_files
from server.definitions.errors import DefinitionsInvalid
from server.forms.engine import form_spec
from server.forms.fields import FIELD_TYPES
from server.org.engine import with_other_languages
from server.web.i18n import tr
from tests.support.schemes import MINI_SCHEME

CHOICES = ["a", 1]


@pytest.mark.parametrize(("type_", "value"), [
    ("text", "路面整洁"), ("textarea", ""), ("integer", 3), ("integer", -2), ("decimal", 2.5), ("decimal", 3),
    ("date", "2026-11-20"), ("date", "2024-02-29"), ("time", "09:30"), ("time", "23:59:59"),
    ("datetime", "2026-11-20T09:30"), ("datetime", "2026-11-20T09:30:15"),
    ("single_choice", "a"), ("single_choice", 1), ("single_choice", "1"),
    ("multiple_choice", []), ("multiple_choice", ["a", 1]), ("area", "shilong_old_street"),
    # what definitions have written before, and their pages showed: still valid
    ("text", 3), ("integer", "3"), ("decimal", "2.5"), ("time", "9:30"), ("multiple_choice", "a"),
])
def test_a_default_its_input_shows_is_accepted(type_, value):
    choices = CHOICES if FIELD_TYPES[type_].needs_choices else None
    assert FIELD_TYPES[type_].check_default(value, choices) is None


@pytest.mark.parametrize(("type_", "value", "said"), [
    ("integer", 2.5, "default 2.5 is not a whole number (such as 3)"),
    ("integer", True, "default true is not a whole number (such as 3)"),
    ("integer", "three", "default 'three' is not a whole number (such as 3)"),
    ("text", True, "default true is not text"),
    ("decimal", False, "default false is not a number (such as 2.5)"),
    ("date", "20/11/2026", "default '20/11/2026' is not a date: write YYYY-MM-DD (2026-11-20)"),
    ("date", "2026-02-30", "default '2026-02-30' is not a date: write YYYY-MM-DD (2026-11-20)"),
    ("time", "half past nine", "default 'half past nine' is not a time: write HH:MM (09:30)"),
    ("time", "25:00", "default '25:00' is not a time: write HH:MM (09:30)"),
    ("time", 930, "default 930 is not a time: write HH:MM (09:30)"),
    ("datetime", "2026-11-20 09:30", "default '2026-11-20 09:30' is not a date and time: write YYYY-MM-DDTHH:MM "
                                     "(2026-11-20T09:30)"),
    ("datetime", "2026-11-20T09:30+08:00", "default '2026-11-20T09:30+08:00' is not a date and time: write "
                                           "YYYY-MM-DDTHH:MM (2026-11-20T09:30)"),
    ("single_choice", "b", "default 'b' is not one of the field's choices: 'a', 1"),
    ("single_choice", ["a"], "default [\"a\"] is not a choice's value"),
    ("single_choice", True, "default true is not a choice's value"),
    ("multiple_choice", {"a": 1}, "default {\"a\": 1} is not a list of choices' values (such as [a, b])"),
    ("multiple_choice", "c", "default 'c' is not one of the field's choices: 'a', 1"),
    ("multiple_choice", ["a", "c"], "default 'c' is not one of the field's choices: 'a', 1"),
    ("note", "x", "a field of type note takes no default"),
    ("repeat", [], "a field of type repeat takes no default"),
    ("location", "x", "a field of type location takes no default"),
    ("photo", [], "a field of type photo takes no default"),
    ("route", "x", "a field of type route takes no default"),
])
def test_a_default_its_input_cannot_show_is_a_problem_saying_the_format(type_, value, said):
    choices = CHOICES if FIELD_TYPES[type_].needs_choices else None
    problem = FIELD_TYPES[type_].check_default(value, choices)
    assert problem is not None and problem.in_language("en") == said


@pytest.mark.parametrize(("type_", "stored", "shown"), [
    ("time", "half past nine", None), ("time", "09:30", dt.time(9, 30)), ("time", 930, None),
    ("date", "2026-02-30", None), ("date", "2026-11-20", dt.date(2026, 11, 20)),
    ("datetime", "soon", None), ("datetime", "2026-11-20T09:30", dt.datetime(2026, 11, 20, 9, 30)),
    ("decimal", "abc", None), ("decimal", True, None), ("decimal", 2.5, Decimal("2.5")),
    ("multiple_choice", "a", ["a"]), ("multiple_choice", 5, ["5"]), ("multiple_choice", None, []),
])
def test_a_value_the_input_cannot_show_is_shown_empty(type_, stored, shown):
    assert FIELD_TYPES[type_].form_data(stored) == shown


FORM = """\
kind: form
id: log
name: 巡查日志
purpose: patrol
fields:
{fields}
"""


def _errors(fields: str) -> list[str]:
    try:
        check_files({"s.yaml": MINI_SCHEME, "log.yaml": FORM.format(fields=fields)})
    except DefinitionsInvalid as exc:
        return [str(e) for e in exc.errors]
    return []


def test_the_definition_check_reports_a_wrong_default_with_its_path_and_format():
    found = _errors("""\
  - {id: started, type: time, default: half past nine}
  - {id: day, type: date, default: 2026-11-20}
  - id: busy
    type: single_choice
    choices: [{value: "yes", label: 是}, {value: "no", label: 否}]
    default: maybe
  - {id: helpers, type: integer, default: 1}""")
    assert found == [
        "log.yaml line 6: fields[0].default: default 'half past nine' is not a time: write HH:MM (09:30)",
        "log.yaml line 11: fields[2].default: default 'maybe' is not one of the field's choices: 'yes', 'no'"]


STREETS = """\
  - id: street
    type: single_choice
    choices: [{value: s1, label: 东街街道}, {value: s2, label: 西街街道}]
  - id: community
    type: single_choice
    choices:
      - {value: c1, label: 东一社区, data: {street: s1}}
      - {value: c2, label: 西一社区, data: {street: s2, size: 3, town: true}}
"""


def test_choices_may_carry_data_a_filter_reads():
    assert _errors(STREETS + "    choice_filter: choice.street == street and choice.value != 'c9'") == []
    spec = form_spec({"kind": "form", "id": "x", "name": "x", "fields": [
        {"id": "c", "type": "single_choice", "choices": [
            {"value": "c1", "label": "东一社区", "data": {"street": "s1"}}, {"value": "c2", "label": "西一社区"}]},
        {"id": "plain", "type": "single_choice", "choices": [{"value": 1, "label": "一"}]}]})
    assert list(spec.by_id["c"].static_choices()) == [("c1", "东一社区", {"street": "s1"}), ("c2", "西一社区", {})]
    assert [value for value, _label in spec.by_id["c"].choices] == ["c1", "c2"]  # still (value, label) pairs
    assert spec.by_id["plain"].choice_data == () and list(spec.by_id["plain"].static_choices()) == [(1, "一", {})]


def test_a_filter_reading_a_key_no_choice_has_is_an_error_naming_its_path():
    found = _errors(STREETS + "    choice_filter: choice.stret == street")
    assert found == ["log.yaml line 14: fields[1].choice_filter: no choice of 'community' has 'stret' in its data "
                     "(did you mean 'street'?): the filter would keep none"]
    # What a live source's choices carry is the source's to say (forms.md's table), not the definition's.
    assert _errors("  - {id: street, type: single_choice, choices_from: units, choice_filter: \"choice.kind == 'x'\"}"
                   ) == []


@pytest.mark.parametrize(("data", "said"), [
    ("{Street: s1}", "fields[1].choices[0].data: 'Street' is not a valid id"),
    ("{value: s1}", "fields[1].choices[0].data: 'value' may not be used here"),
    ("{street: [s1]}", "fields[1].choices[0].data.street: expected text or a number or true or false"),
    ("{}", "fields[1].choices[0].data: "),
])
def test_choice_data_is_ids_to_plain_values(data, said):
    found = _errors(STREETS.replace("{street: s1}", data))
    assert len(found) == 1 and said in found[0], found


def test_texts_keep_other_languages_and_refuse_what_is_no_language():
    assert _errors("""\
  - {id: qty, type: integer, label: {zh: 数量, en: Quantity, fr: Quantité, bo: གྲངས་ཚད།, pt-BR: Quantidade}}
  - {id: note, type: text, label: {ug: ئىزاھات}, hint: {fr: Écrivez}}""") == []
    found = _errors("""\
  - {id: qty, type: integer, label: {cn: 数量}}
  - {id: note, type: text, label: {ZH: 说明, fr: Note}}
  - {id: more, type: text, label: {fr: ""}}""")
    assert [e.split(": ", 1)[1] for e in found] == [
        "fields[0].label: 'cn' may not be used here", "fields[1].label.ZH: unknown field 'ZH'",
        "fields[2].label.fr: '' should be non-empty"]
    found = _errors("""\
  - {id: qty, type: integer, label: {zh: 数量, jp: 数}}
  - {id: note, type: text, label: {zh: 说明, eng: Note}}""")
    assert [e.split(": ", 1)[1] for e in found] == [
        "fields[0].label.jp: 'jp' is not a language code: texts use codes such as zh, en, fr, bo or pt-BR",
        "fields[1].label.eng: 'eng' is not a language code: texts use codes such as zh, en, fr, bo or pt-BR"]


def test_tr_picks_the_language_then_the_other_then_any():
    text = {"zh": "社区", "en": "Community", "fr": "Communauté"}
    assert tr(text, "zh") == "社区" and tr(text, "en") == "Community"
    assert tr({"zh": "社区", "fr": "Communauté"}, "en") == "社区"
    assert tr({"en": "Community", "fr": "Communauté"}, "zh") == "Community"
    assert tr({"fr": "Communauté"}, "zh") == "Communauté" and tr({"bo": "", "fr": "Communauté"}, "en") == "Communauté"
    assert tr({}, "zh") == "" and tr(None, "zh") == "" and tr("社区", "en") == "社区"


def test_an_organisation_edit_of_chinese_and_english_keeps_other_languages():
    old = {"zh": "东一社区", "en": "East One", "bo": "ཤར་"}
    assert with_other_languages({"zh": "东二社区"}, old) == {"zh": "东二社区", "bo": "ཤར་"}
    assert with_other_languages("东二社区", old) == {"zh": "东二社区", "bo": "ཤར་"}
    assert with_other_languages({"zh": "东二社区"}, "东一社区") == {"zh": "东二社区"}
    assert with_other_languages(None, old) is None  # cleared
