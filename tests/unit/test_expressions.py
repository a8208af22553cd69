"""Unit tests for the expression language (server/expressions): fast, no DB, no Flask."""

from __future__ import annotations

import builtins
import io
import time
import types
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server import expressions
from server.expressions import (
    FUNCTIONS,
    MAX_LENGTH,
    MAX_NODES,
    Expression,
    ExpressionError,
    check_expression,
    compile_expression,
    engine,
)

CONTEXT: dict[str, Any] = {
    "qty": 5,
    "unit": "m3",
    "rate": 0.93,
    "price": Decimal("2.50"),
    "x": None,
    "y": 7,
    "name": "Wang",
    "tags": ["a", "b"],
    "a": "2024-01-01",
    "b": date(2024, 3, 1),
    "today": date(2024, 5, 20),
    "opened": datetime(2024, 5, 18, 23, 59),
    "case": {"category": "ads", "score": 80, "detail": {"level": 2}, "empty": None},
    "user": {"unit": "district-1", "name": "Li"},
    "flat.key": "flat",
}


VALID = [
    ("1 + 2 * 3", 7),
    ("7 // 2", 3),
    ("7 % 3", 1),
    ("7 / 2", 3.5),
    ("-qty + +2", -3),
    ("(0.95-0.94)/0.005 == 2", True),
    ("0.1 + 0.2 == 0.3", True),
    ("0.1 * 3", 0.3),
    ("floor((0.95 - rate) / 0.005)", 4),
    ("ceil((0.95-0.94)/0.005)", 2),
    ("floor(2.9999999999)", 3),
    ("round(2.5)", 3),
    ("round(-2.5)", -3),
    ("round(2.675, 2)", 2.68),
    ("round(1234, -2)", 1200),
    ("int(2.9999999999)", 3),
    ("int('42')", 42),
    ("int(' 4.0 ')", 4),
    ("float('1.5') + 1", 2.5),
    ("str(qty) + unit", "5m3"),
    ("str(x)", ""),
    ("bool(tags)", True),
    ("bool(x)", False),
    ("abs(-3)", 3),
    ("min(3, 1, 2)", 1),
    ("max([3, 1, 2])", 3),
    ("sum([0.1, 0.2])", 0.3),
    ("len(name)", 4),
    ("len(x)", 0),
    ("qty > 3 if unit == 'm3' else False", True),
    ("qty > 3 if unit == 'm2' else False", False),
    ("1 < qty <= 5 < y", True),
    ("1 < qty > 10", False),
    ("case.category in ['rubbish', 'ads']", True),
    ("case.category not in ('rubbish', 'ads')", False),
    ("'a' in tags", True),
    ("'z' in x", False),
    ("'z' not in x", True),
    ("'xy' in name", False),
    ("'Wa' in name", True),
    ("case.detail.level * 10", 20),
    ("user.unit == 'district-1'", True),
    ("case.missing", None),
    ("case.empty.deeper", None),
    ("missing", None),
    ("flat.key", "flat"),
    ("coalesce(x, 0) + 1", 1),
    ("coalesce(x, case.empty)", None),
    ("coalesce(qty, 0) + 1", 6),
    ("x is None and qty is not None", True),
    ("x == None", True),
    ("x or 'default'", "default"),
    ("qty and name", "Wang"),
    ("not x", True),
    ("days_between(a, b)", 60),
    ("days_between(opened, today)", 2),
    ("days_between('2024-01-02', '2024-01-01')", -1),
    ("today", date(2024, 5, 20)),
    ("price * 2", 5.0),
    ("'ab' * 2", "abab"),
    ("[1, qty]", [1, 5]),
    ("(1, 'a')", [1, "a"]),
    ("True + 1", 2),
    ("1 == 1.0000000001", True),
]


@pytest.mark.parametrize(("source", "expected"), VALID)
def test_valid_expressions(source: str, expected: Any) -> None:
    result = compile_expression(source).evaluate(CONTEXT)
    assert result == expected
    assert type(result) is type(expected)


FORBIDDEN = [
    ("2**10", "the power operator '**' is not allowed"),
    ("1<<5", "the shift operator '<<' is not allowed"),
    ("8 >> 1", "'>>' is not allowed"),
    ("1 & 2", "'&' is not allowed"),
    ("1 | 2", "'|' is not allowed"),
    ("1 ^ 2", "'^' is not allowed"),
    ("~1", "'~' is not allowed"),
    ("a @ b", "'@' is not allowed"),
    ("x.__class__", "must not start with '_'"),
    ("().__class__.__bases__", "must not start with '_'"),
    ("_private", "must not start with '_'"),
    ("open('/etc/passwd')", "unknown function 'open'"),
    ("eval('1')", "unknown function 'eval'"),
    ("__import__('os')", "must not start with '_'"),
    ("[x for x in y]", "comprehensions are not allowed"),
    ("(x for x in y)", "generator expressions are not allowed"),
    ("lambda: 1", "lambda is not allowed"),
    ("x[0]", "subscripts like 'x[0]' are not allowed"),
    ("'a'.upper()", "method calls like '.upper()' are not allowed"),
    ("os.system('ls')", "method calls like '.system()' are not allowed"),
    ("(x).y", "only allowed on plain dotted names"),
    ("f(x).y", "only allowed on plain dotted names"),
    ("'s'.y", "only allowed on plain dotted names"),
    ("f'{x}'", "f-strings are not allowed"),
    ("(y := 1)", "assignment ':=' is not allowed"),
    ("{'a':1}", "dict literals"),
    ("{1, 2}", "set literals"),
    ("min(*x)", "'*' unpacking is not allowed"),
    ("round(x, ndigits=2)", "keyword arguments"),
    ("min(**x)", "'**' unpacking"),
    ("x is 1", "'is' and 'is not' can only be used with None"),
    ("b'x'", "bytes literals"),
    ("1j", "complex numbers"),
    ("...", "not allowed"),
    ("1e999", "number too large"),
    ("9" * 40, "number too large"),
    ("round(1, 2, 3)", "wrong number of arguments for round()"),
    ("days_between(a)", "wrong number of arguments for days_between()"),
    ("import os", "syntax error"),
    ("x = 1", "syntax error"),
    ("1; 2", "syntax error"),
    ("", "empty expression"),
    ("   ", "empty expression"),
    ("1 +" * 400 + "1", "too long"),
    ("+".join(["x"] * 200), "too complex"),
]


@pytest.mark.parametrize(("source", "fragment"), FORBIDDEN)
def test_forbidden_expressions_fail_at_compile_time(source: str, fragment: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_expression(source)
    assert fragment in caught.value.message
    assert check_expression(source), "check_expression must report the same problem"
    assert any(fragment in problem for problem in check_expression(source))


RUNTIME_ERRORS = [
    ("1 / 0", "division by zero"),
    ("qty // (y - 7)", "division by zero"),
    ("qty % 0", "division by zero"),
    ("x + 1", "empty value in arithmetic ('+')"),
    ("-x", "empty value in arithmetic ('-')"),
    ("x * 2", "empty value in arithmetic"),
    ("x < 1", "empty value in comparison ('<')"),
    ("1 >= case.missing", "empty value in comparison ('>=')"),
    ("'a' < 1", "cannot compare text and number with '<'"),
    ("name + 1", "cannot use '+' with text and number"),
    ("'%d' % qty", "cannot use '%' with text and number"),
    ("b - today", "use days_between(a, b)"),
    ("1 in name", "cannot look for number in text"),
    ("'a' * 10001", "text too long"),
    ("'aaaaaaaaaa' * 1000 + name", "text too long"),
    ("99999999999*99999999999*99999999999*99999999999", "number too large"),
    ("1e300 * 1e300", "number too large"),
    ("int('9' * 50)", "number too large"),
    ("int('abc')", "cannot convert 'abc' to a number"),
    ("float('nan')", "cannot convert 'nan' to a number"),
    ("floor(x)", "empty value in floor()"),
    ("ceil(name)", "ceil() needs a number, not text"),
    ("max([])", "needs at least one value"),
    ("min(1, 'a')", "cannot compare values"),
    ("sum(qty)", "sum() needs a list"),
    ("days_between(x, today)", "empty value in days_between()"),
    ("days_between('tomorrow', today)", "is not an ISO date"),
    ("case", "group of values, not a single value"),
    ("name.first", "'name' has no field 'first'"),
    ("round(1.5, 20)", "round() needs a whole number of places"),
]


@pytest.mark.parametrize(("source", "fragment"), RUNTIME_ERRORS)
def test_runtime_errors_are_expression_errors(source: str, fragment: str) -> None:
    expression = compile_expression(source)
    with pytest.raises(ExpressionError) as caught:
        expression.evaluate(CONTEXT)
    assert fragment in caught.value.message


def test_unknown_name_with_suggestion() -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_expression("qtty > 3", names=["qty", "unit"])
    assert caught.value.message == "unknown name 'qtty' (did you mean 'qty'?)"
    assert caught.value.column == 0


def test_unknown_name_without_suggestion_and_column() -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_expression("qty + zzzzz", names=["qty"])
    assert caught.value.message == "unknown name 'zzzzz'"
    assert caught.value.column == 6


def test_wildcard_names() -> None:
    allowed = ["qty", "user.*", "case.category"]
    expression = compile_expression("user.unit == case.category and user.org.name", names=allowed)
    assert expression.names == frozenset({"user.unit", "case.category", "user.org.name"})
    assert check_expression("usr.unit", allowed) == ["unknown name 'usr.unit' (did you mean 'user.unit'?)"]
    # the wildcard covers fields below the prefix, not the prefix itself
    assert check_expression("user", allowed) == ["unknown name 'user'"]
    assert check_expression("case.categori", allowed) == [
        "unknown name 'case.categori' (did you mean 'case.category'?)"
    ]


def test_unknown_function_with_suggestion() -> None:
    assert check_expression("open('/etc/passwd')") == ["unknown function 'open'"]
    assert check_expression("cel(1.5)") == ["unknown function 'cel' (did you mean 'ceil'?)"]
    assert check_expression("qty(1)") == ["unknown function 'qty'"]


def test_check_expression_reports_every_problem_and_never_raises() -> None:
    problems = check_expression("qtty + opn(1) + x[0] + y.__x__ + 2**3", ["qty", "x", "y"])
    assert problems == [
        "unknown name 'qtty' (did you mean 'qty'?)",
        "unknown function 'opn'",
        "subscripts like 'x[0]' are not allowed; use a dotted name like 'case.category'",
        "name '__x__' is not allowed: names must not start with '_'",
        "the power operator '**' is not allowed",
    ]
    assert check_expression(None) == ["an expression must be text"]  # type: ignore[arg-type]
    assert check_expression("qty + 1", ["qty"]) == []
    assert check_expression("a\x00") != []


def test_compile_error_columns() -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_expression("  qty + )")
    assert caught.value.message.startswith("syntax error")
    assert caught.value.column == 8
    with pytest.raises(ExpressionError) as caught:
        compile_expression("é + 2**3")
    assert caught.value.column == 4  # characters, not UTF-8 bytes
    with pytest.raises(ExpressionError) as caught:
        compile_expression("(qty +\n x[0])")
    assert caught.value.column == 8


def test_expression_metadata() -> None:
    expression = compile_expression("max(qty, case.score) > coalesce(limit, 3)")
    assert isinstance(expression, Expression)
    assert expression.source == "max(qty, case.score) > coalesce(limit, 3)"
    assert expression.names == frozenset({"qty", "case.score", "limit"})
    assert expression.functions == frozenset({"max", "coalesce"})
    assert expression == compile_expression("max(qty, case.score) > coalesce(limit, 3)")
    hash(expression)


def test_expression_is_reusable_with_different_contexts() -> None:
    expression = compile_expression("qty * 2")
    assert expression.evaluate({"qty": 2}) == 4
    assert expression.evaluate({"qty": 3.5}) == 7.0


def test_public_api_and_bounds() -> None:
    assert set(FUNCTIONS) >= {
        "min", "max", "abs", "round", "ceil", "floor", "len", "sum",
        "int", "float", "str", "bool", "coalesce", "days_between",
    }  # fmt: skip
    assert "today" not in FUNCTIONS
    assert issubclass(ExpressionError, ValueError)
    assert ExpressionError("m").column is None
    assert expressions.MAX_SECONDS == 2.0
    assert compile_expression("1" + " + 1" * 140).evaluate({}) == 141
    with pytest.raises(ExpressionError, match="too long"):
        compile_expression("1" * (MAX_LENGTH + 1))
    with pytest.raises(ExpressionError, match="too complex"):
        compile_expression("[" + ", ".join(["1"] * MAX_NODES) + "]")


def test_evaluation_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    """The clock is a backstop where work grows with the context: functions over lists check it. Everything
    else is bounded by the expression's size (no loops; each part evaluated at most once)."""
    over_a_list, bounded = compile_expression("sum(xs) + 1"), compile_expression("1 + 1 if x else 2")
    monkeypatch.setattr(engine, "MAX_SECONDS", -1.0)
    with pytest.raises(ExpressionError, match="evaluation took too long"):
        over_a_list.evaluate({"xs": [1, 2]})
    assert bounded.evaluate({"x": True}) == 2


def test_context_values_are_looked_up_not_getattr() -> None:
    class Record:
        category = "ads"

    expression = compile_expression("case.category")
    with pytest.raises(ExpressionError, match="unsupported type Record"):
        expression.evaluate({"case": Record()})  # objects are not mappings: no attribute access
    assert compile_expression("case.category").evaluate({"case": {"category": "ads"}}) == "ads"
    with pytest.raises(ExpressionError, match="unsupported type"):
        compile_expression("f").evaluate({"f": print})
    with pytest.raises(ExpressionError, match="unsupported type"):
        compile_expression("m").evaluate({"m": types})
    with pytest.raises(ExpressionError, match="context must be a mapping"):
        expression.evaluate(None)  # type: ignore[arg-type]


def test_function_names_are_not_values() -> None:
    # A bare function name is a variable reference, resolved from the context only.
    assert compile_expression("min").evaluate({}) is None
    assert compile_expression("coalesce(len, 1)").evaluate({}) == 1


# --------------------------------------------------------------------------------------------------------
# Properties

PLAIN_TYPES = (type(None), bool, int, float, str, date, datetime, list)
SMALL_CONTEXT: dict[str, Any] = {
    "x": 3,
    "y": 0.5,
    "s": "text",
    "n": None,
    "l": [1, 2],
    "d": date(2024, 1, 1),
    "case": {"category": "ads", "n": None},
}


def _run(source: str) -> None:
    """Compile and evaluate; only ExpressionError may escape, results must be plain, and it must be quick."""
    started = time.monotonic()
    try:
        expression = compile_expression(source)
    except ExpressionError:
        pass
    else:
        assert isinstance(expression, Expression)
        try:
            result = expression.evaluate(SMALL_CONTEXT)
        except ExpressionError:
            pass
        else:
            assert isinstance(result, PLAIN_TYPES), type(result)
            assert not callable(result)
            assert not isinstance(result, type | types.ModuleType)
            if isinstance(result, list):
                assert all(isinstance(item, PLAIN_TYPES) for item in result)
    problems = check_expression(source)
    assert isinstance(problems, list)
    assert time.monotonic() - started < 10.0  # a guard against a hang (minutes), not a benchmark


@settings(max_examples=300, deadline=None, database=None)
@given(st.text(max_size=80))
def test_arbitrary_text_never_escapes(source: str) -> None:
    _run(source)


VOCABULARY = [
    "__class__", "__globals__", "__builtins__", "__subclasses__", "__import__", "_x",
    "open", "eval", "exec", "import", "getattr", "compile", "globals", "lambda", "for", "in", "if", "else",
    "not", "and", "or", "is", "None", "True", "x", "y", "s", "n", "l", "d", "case", "category",
    "min", "max", "len", "str", "int", "round", "ceil", "coalesce", "days_between",
    "**", "<<", ">>", "*", "+", "-", "/", "//", "%", "==", "<", ":=", "=", ",", ":", "~", "&", "|",
    "9", "99999999999", "0", "1.5", "1e308", "'a'", "'%s'", "'2024-01-01'", "f'{x}'",
    "(", ")", ".", "[", "]", "{", "}", " ",
]  # fmt: skip


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(VOCABULARY), min_size=1, max_size=30))
def test_hostile_token_soup_never_escapes(tokens: list[str]) -> None:
    source = " ".join(tokens) if len(tokens) % 2 else "".join(tokens)

    def forbidden(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("an expression opened a file")

    with mock.patch.object(builtins, "open", forbidden), mock.patch.object(io, "open", forbidden):
        _run(source)


@pytest.mark.parametrize(
    "source",
    [
        "().__class__.__bases__[0].__subclasses__()",
        "[c for c in ().__class__.__base__.__subclasses__()]",
        "getattr(x, '__class__')",
        "x.__globals__['__builtins__']['open']('/etc/passwd')",
        "(lambda: open('/etc/passwd'))()",
        "'{0.__class__}'.format(x)",
        "'%999999999d' % 1",
        "'a' * 99999999999",
        "str(99999999999 * 99999999999 * 99999999999 * 99999999999)",
        "min.__self__",
        "case.category.__len__()",
    ],
)
def test_known_escapes_are_blocked(source: str) -> None:
    def forbidden(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("an expression opened a file")

    with mock.patch.object(builtins, "open", forbidden), pytest.raises(ExpressionError):
        compile_expression(source).evaluate(SMALL_CONTEXT)


# -- the compiled closures take Python's own operations for plain numbers: the same results and errors ----------

_OPERANDS = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(10**31), max_value=10**31),
                      st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(["", "ab", "3"]),
                      st.sampled_from([0, 0.0, 1e308, -1e308, 10**30]))


def _outcome(run: Any) -> tuple[str, Any]:
    try:
        value = run()
    except ExpressionError as error:
        return "error", error.message
    except (ZeroDivisionError, OverflowError) as error:  # evaluate() words these; compare the kind
        return "error", type(error).__name__
    if isinstance(value, float) and value != value:
        return "value", "nan"
    return "value", (type(value), value)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(a=_OPERANDS, b=_OPERANDS, symbol=st.sampled_from(["+", "-", "*", "/", "//", "%", "<", "<=", ">", ">=",
                                                         "==", "!="]))
def test_fast_paths_agree_with_the_operators(a: Any, b: Any, symbol: str) -> None:
    """For every pair of values, `a <op> b` evaluated gives what the language's operator function gives (the
    reference rules for empty values, booleans, text, zero and bounds), result or error."""
    import ast as python_ast

    op_type = type(python_ast.parse(f"a {symbol} b", mode="eval").body)
    node = python_ast.parse(f"a {symbol} b", mode="eval").body
    operator = engine._OPERATORS[type(node.ops[0]) if op_type is python_ast.Compare else type(node.op)]
    expected = _outcome(lambda: engine._plain_result(operator(a, b)))
    found = _outcome(lambda: compile_expression(f"a {symbol} b").evaluate({"a": a, "b": b}))
    # As a literal (a negative one is a unary minus, which rounds: not the same operand)
    written = type(b) in (int, float) and b == b and 0 <= b <= 10**30
    literal = _outcome(lambda: compile_expression(f"a {symbol} {b!r}").evaluate({"a": a})) if written else found
    for outcome in (found, literal):
        # Both refusing is agreement (evaluate() words Python's own errors: "division by zero"…).
        assert outcome == expected or (outcome[0] == expected[0] == "error"), (a, symbol, b)


@given(a=_OPERANDS, b=_OPERANDS, c=_OPERANDS)
def test_and_or_give_the_value_python_gives(a: Any, b: Any, c: Any) -> None:
    """`and` / `or` return one of their operands, as Python does, whether two or three are joined."""
    context = {"a": a, "b": b, "c": c}
    for source, expected in (("a and b", a and b), ("a or b", a or b), ("a and b and c", a and b and c),
                             ("a or b or c", a or b or c), ("coalesce(a, b)", a if a is not None else b)):
        found = compile_expression(source).evaluate(context)
        assert found is expected or found == expected or (found != found and expected != expected), source
