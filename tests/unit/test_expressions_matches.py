"""matches(text, pattern): XLSForm's regex(), run by RE2 (linear time), checked when the definition is."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from server.expressions import FUNCTIONS, ExpressionError, check_expression, compile_expression, engine

PHONE = "matches(value, '^1[3-9][0-9]{9}$')"


@pytest.mark.parametrize(("value", "expected"), [
    ("13812345678", True),
    ("19912345678", True),
    ("12812345678", False),   # second digit 2
    ("1381234567", False),    # ten digits
    ("138123456789", False),  # twelve: the anchors make it a whole match
    (" 13812345678", False),
    ("", False),
    (None, False),            # an empty value is the empty text
    (13812345678, True),      # a number is matched as its text
])
def test_phone_number_pattern(value: Any, expected: bool) -> None:
    assert compile_expression(PHONE).evaluate({"value": value}) is expected


@pytest.mark.parametrize(("source", "context", "expected"), [
    ("matches(s, 'b')", {"s": "abc"}, True),              # found anywhere: a search, as ODK's regex()
    ("matches(s, '^b')", {"s": "abc"}, False),
    ("matches(s, 'c$')", {"s": "abc"}, True),
    ("matches(s, '')", {"s": None}, True),
    ("matches(s, '^$')", {"s": None}, True),
    ("matches(s, '^3.5$')", {"s": 3.5}, True),            # as str() writes it
    ("matches(s, '^True$')", {"s": True}, True),
    ("matches(s, '^2024-03-01$')", {"s": date(2024, 3, 1)}, True),
    (r"matches(s, '^\d{6}$')", {"s": "100080"}, True),   # '\d' in a YAML/Python text is a backslash and d
    (r"matches(s, '^\\d{6}$')", {"s": "10008"}, False),
    (r"matches(s, '^\p{Han}{2,4}$')", {"s": "王小明"}, True),  # whole characters, not bytes
    ("matches(s, '^.{3}$')", {"s": "王小明"}, True),
    ("matches(s, '(?i)^abc$')", {"s": "ABC"}, True),
    ("matches(s, p)", {"s": "x-1", "p": "^x-[0-9]$"}, True),  # a pattern from the data
    ("not matches(s, '[0-9]')", {"s": "abc"}, True),
])
def test_matches(source: str, context: dict[str, Any], expected: bool) -> None:
    assert compile_expression(source).evaluate(context) is expected


def test_catastrophic_pattern_completes() -> None:
    """`(a+)+$` on 'aaaa…b' backtracks for ages in Python's re; RE2 answers at once (no timing asserted)."""
    expression = compile_expression("matches(s, '(a+)+$')")
    assert expression.evaluate({"s": "a" * 50_000 + "b"}) is False  # no run of a's ends the text
    assert expression.evaluate({"s": "b" + "a" * 50_000}) is True
    assert compile_expression("matches(s, '^(a+)+$')").evaluate({"s": "a" * 50_000 + "b"}) is False
    assert compile_expression("matches(s, '^(a|aa)+$')").evaluate({"s": "a" * 50_000 + "b"}) is False
    assert compile_expression("matches(s, '^(a|aa)+$')").evaluate({"s": "a" * 50_000}) is True


@pytest.mark.parametrize(("source", "fragment"), [
    ("matches(s, '[')", "matches(): invalid pattern: missing ]"),
    ("matches(s, '(a)\\\\1')", "backreferences are not supported"),
    ("matches(s, '(?=a)b')", "lookaround and backreferences are not supported"),
    ("matches(s, '(?<!a)b')", "lookaround"),
    ("matches(s, 'a{5000}')", "invalid repetition size"),
    ("matches(s, 3)", "matches() needs a pattern as text, not number"),
    ("matches(s, None)", "matches() needs a pattern as text, not empty value"),
    ("matches(s)", "wrong number of arguments for matches()"),
    ("matches(s, 'a', 'b')", "wrong number of arguments for matches()"),
])
def test_a_written_pattern_is_checked_at_compile_time(source: str, fragment: str) -> None:
    problems = check_expression(source)
    assert any(fragment in problem for problem in problems), problems
    with pytest.raises(ExpressionError, match="matches") as caught:
        compile_expression(source)
    if "pattern" in fragment or "invalid" in fragment:
        assert caught.value.column == source.index(", ") + 2  # points at the pattern


@pytest.mark.parametrize(("pattern", "fragment"), [
    ("[", "invalid pattern: missing ]"),
    ("(?=x)", "lookaround"),
    (None, "needs a pattern as text, not empty value"),
    (12, "needs a pattern as text, not number"),
    ("a" * 1001, "pattern too long (more than 1000 characters)"),
])
def test_a_bad_pattern_from_the_data_fails_when_evaluated(pattern: Any, fragment: str) -> None:
    expression = compile_expression("matches(s, p)")  # nothing to check until it runs
    with pytest.raises(ExpressionError, match="matches") as caught:
        expression.evaluate({"s": "x", "p": pattern})
    assert fragment in caught.value.message


def test_patterns_are_compiled_once_and_the_cache_is_bounded() -> None:
    engine._regex.cache_clear()
    expression = compile_expression("matches(s, p)")
    for text in ("a", "b", "c"):
        expression.evaluate({"s": text, "p": "^[ab]$"})
    info = engine._regex.cache_info()
    assert (info.misses, info.hits) == (1, 2)
    assert info.maxsize is not None and info.maxsize <= 1000


def test_long_text_is_searched_not_refused() -> None:
    """The text is read, not produced: a long description is searched (the 10,000-character bound is for
    text an expression makes)."""
    assert compile_expression("matches(s, '电话')").evaluate({"s": "x" * 50_000 + "电话"}) is True


def test_matches_is_a_function_of_the_language() -> None:
    assert "matches" in FUNCTIONS
    assert compile_expression(PHONE).functions == frozenset({"matches"})
