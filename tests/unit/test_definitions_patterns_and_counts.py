"""The definition check of `matches()` patterns and of repeat groups with `repeat_count` (as `fangan scheme
validate` reports them: file, line and path)."""

from __future__ import annotations

import pytest

from server.definitions.bundle import check_files
from server.definitions.errors import DefinitionsInvalid
from tests.support.schemes import MINI_SCHEME

FORM = """\
kind: form
id: log
name: 入户登记
purpose: patrol
fields:
  - {id: phone, type: text, constraints: [{check: "matches(value, '^1[3-9][0-9]{9}$')", message: 手机号格式不对}]}
  - {id: members, type: integer, min: 0, max: 20}
  - id: people
    type: repeat
    repeat_count: members
    fields: [{id: person_name, type: text, required: true}]
"""


def errors_of(form: str) -> list[str]:
    with pytest.raises(DefinitionsInvalid) as info:
        check_files({"s.yaml": MINI_SCHEME, "log.yaml": form}, {})
    return [str(e) for e in info.value.errors]


def test_the_example_is_valid() -> None:
    bundle = check_files({"s.yaml": MINI_SCHEME, "log.yaml": FORM}, {})
    assert [(m.kind, m.id) for m in bundle.members] == [("form", "log")]
    assert check_files({"s.yaml": MINI_SCHEME, "log.yaml": FORM.replace("repeat_count: members",
                                                                        "repeat_count: 3")}, {})


@pytest.mark.parametrize(("pattern", "problem"), [
    ("^1[3-9][0-9{9}$", "matches(): invalid pattern: missing ]: [0-9{9}$"),
    ("^(?=1)[0-9]{11}$", "matches(): invalid pattern: invalid perl operator: (?= (lookaround and backreferences "
                         "are not supported)"),
])
def test_a_broken_written_pattern_names_the_definition_path(pattern: str, problem: str) -> None:
    found = errors_of(FORM.replace("^1[3-9][0-9]{9}$", pattern))
    assert len(found) == 1, found
    assert found[0].startswith("log.yaml line 6: fields[0].constraints[0].check: invalid expression")
    assert found[0].endswith(problem)


def test_a_pattern_that_is_not_text_is_refused() -> None:
    found = errors_of(FORM.replace("'^1[3-9][0-9]{9}$'", "11"))
    assert len(found) == 1 and found[0].endswith("matches() needs a pattern as text, not number"), found


def test_repeat_count_with_min_or_max_repeat_is_an_error() -> None:
    found = errors_of(FORM.replace("    repeat_count: members\n",
                                   "    repeat_count: members\n    min_repeat: 1\n    max_repeat: 5\n"))
    assert found == [
        "log.yaml line 11: fields[2].min_repeat: 'min_repeat' cannot be used with 'repeat_count': the group always "
        "has as many rows as repeat_count says",
        "log.yaml line 12: fields[2].max_repeat: 'max_repeat' cannot be used with 'repeat_count': the group always "
        "has as many rows as repeat_count says",
    ]


@pytest.mark.parametrize(("count", "problem"), [
    ("membres", "fields[2].repeat_count: unknown name 'membres' (did you mean 'members'?)"),
    ("person_name", "fields[2].repeat_count: repeat_count of 'people' reads 'person_name', a field of its own rows"),
    ("members **", "fields[2].repeat_count: invalid expression 'members **': syntax error"),
    ("101", "fields[2].repeat_count: 101 is greater than the maximum of 100"),
])
def test_the_count_is_checked_like_other_expressions(count: str, problem: str) -> None:
    found = errors_of(FORM.replace("repeat_count: members", f"repeat_count: {count}"))
    assert len(found) == 1 and problem in found[0], found
    assert found[0].startswith("log.yaml line 10: ")


def test_repeat_count_only_on_a_repeat_group() -> None:
    found = errors_of(FORM.replace("{id: members, type: integer, min: 0, max: 20}",
                                   "{id: members, type: integer, min: 0, max: 20, repeat_count: '2'}"))
    assert found == ["log.yaml line 7: fields[1].repeat_count: only repeat groups have 'repeat_count'"]
