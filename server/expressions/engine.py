"""The one expression language for conditions and formulas in YAML definitions.

Python expression syntax, restricted by an AST allow-list checked at compile time, then compiled once into
closures (one per node) that evaluate it. Pure module: no Flask, no SQLAlchemy.

Rules for empty values (``None``; a missing name or key evaluates to ``None`` because forms have empty
fields):

* ``==``, ``!=``, ``is None``, ``is not None``, ``and``, ``or``, ``not``, ``if else`` work with ``None``.
* arithmetic (``+ - * / // %``, unary ``-``/``+``) with ``None`` raises ``ExpressionError("empty value in
  arithmetic ...")``; ordering comparisons (``< <= > >=``) with ``None`` raise ``ExpressionError("empty value
  in comparison ...")``.
* ``x in None`` is ``False`` and ``x not in None`` is ``True`` (an empty multi-choice field contains nothing).
* functions: ``coalesce`` skips ``None``; ``len(None)`` is 0; ``str(None)`` is ``''``; ``bool(None)`` is
  ``False``; ``matches(None, p)`` searches ``''``; every other function given ``None`` raises
  ``ExpressionError("empty value in f()")``.

``matches(text, pattern)`` runs Google's RE2 (linear time, no backtracking): a pattern written in a definition
is checked with it, one from the data is checked when evaluated.
"""

from __future__ import annotations

import ast
import difflib
import inspect
import math
import operator as py_operator
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from datetime import time as time_of_day
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

import re2

from ..core.cache import memoize
from ..core.suggestions import affordable, close_matches

__all__ = [
    "FUNCTIONS",
    "MAX_INT",
    "MAX_LENGTH",
    "MAX_NODES",
    "MAX_PATTERN_LENGTH",
    "MAX_SECONDS",
    "MAX_STRING_LENGTH",
    "Expression",
    "ExpressionError",
    "check_expression",
    "compile_expression",
]

MAX_LENGTH = 1000  # characters of source
MAX_NODES = 300  # AST nodes (operator and load-context marker nodes are not counted)
# Wall-clock evaluation bound, checked before every node is evaluated. It is only a backstop: the limits on
# length, nodes, text and numbers already bound the work (no loops, each node evaluated at most once), so it
# must not be tight enough for a garbage-collection pause on a busy server to fail an honest formula — at
# 0.05 s, scoring a city's units failed now and then (bench/assessment.py counts such failures).
MAX_SECONDS = 2.0
MAX_STRING_LENGTH = 10_000  # longest text an expression may produce
MAX_INT = 10**30  # largest integer magnitude an expression may produce
MAX_PATTERN_LENGTH = 1000  # characters of a matches() pattern (one from the data may be longer than a literal)
MAX_PATTERN_MEMORY = 1 << 20  # bytes RE2 may use for one compiled pattern (its default is 8 MiB)
_DECIMALS = 9  # floats are rounded to this many places so that 0.1 + 0.2 == 0.3


class ExpressionError(ValueError):
    """Bad expression: message is human readable; .column is 0-based offset or None."""

    def __init__(self, message: str, column: int | None = None):
        super().__init__(message)
        self.message = message
        self.column = column
        # compile_expression raises for the first problem; all of them are kept here for display.
        self.problems: list[str] = [message]


# --------------------------------------------------------------------------------------------------------
# Values


def _kind(value: Any) -> str:
    """Human name of a value's type for error messages (authors are not Python programmers)."""
    if value is None:
        return "empty value"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, datetime):
        return "date-time"
    if isinstance(value, date):
        return "date"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, Mapping):
        return "group of values"
    return type(value).__name__


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float)


def _number(value: Any) -> int | float:
    """Bound and normalise a numeric result."""
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ExpressionError("number too large")
        # Binary floats make 0.1 + 0.2 != 0.3; definitions are written by people who expect decimals.
        return round(value, _DECIMALS)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
        # Bounding every integer result stops 9999999999*9999999999*... from exhausting memory.
        raise ExpressionError("number too large")
    return value


def _text(value: str) -> str:
    if len(value) > MAX_STRING_LENGTH:
        raise ExpressionError(f"text too long (more than {MAX_STRING_LENGTH} characters)")
    return value


_SCALARS = (bool, int, float, str, datetime, date, time_of_day)
_PLAIN_TYPES = frozenset(_SCALARS)  # exact types taken as they are, without a closer look


def _context_value(value: Any, name: str) -> Any:
    """Admit a value from the context: plain values, lists, and mappings (for dotted lookups) only."""
    if value is None or isinstance(value, _SCALARS):
        return value
    if isinstance(value, Decimal):
        # NUMERIC columns arrive as Decimal; mixing Decimal with float literals would raise TypeError.
        if not value.is_finite():
            raise ExpressionError(f"'{name}' is not a finite number")
        return float(value)
    if isinstance(value, list | tuple):
        return list(value)
    if isinstance(value, Mapping):
        return value
    raise ExpressionError(f"'{name}' has a value of unsupported type {type(value).__name__}")


def _plain_result(value: Any) -> Any:
    """The final result of an evaluation: never a mapping, function, type or module."""
    if value is None or isinstance(value, _SCALARS):
        return value
    if isinstance(value, list | tuple):
        return [_plain_result(item) for item in value]
    if isinstance(value, Mapping):
        raise ExpressionError("the result is a group of values, not a single value")
    raise ExpressionError(f"the result has an unsupported type {type(value).__name__}")


# --------------------------------------------------------------------------------------------------------
# Operators (none allows ** or string formatting; numbers are rounded)


def _arithmetic(symbol: str, a: Any, b: Any) -> None:
    if a is None or b is None:
        raise ExpressionError(f"empty value in arithmetic ('{symbol}')")


def _cannot(symbol: str, a: Any, b: Any) -> ExpressionError:
    if symbol == "-" and isinstance(a, date) and isinstance(b, date):
        return ExpressionError("cannot subtract dates with '-'; use days_between(a, b)")
    return ExpressionError(f"cannot use '{symbol}' with {_kind(a)} and {_kind(b)}")


def _add(a: Any, b: Any) -> Any:
    _arithmetic("+", a, b)
    if _is_number(a) and _is_number(b):
        return _number(a + b)
    if isinstance(a, str) and isinstance(b, str):
        if len(a) + len(b) > MAX_STRING_LENGTH:
            raise ExpressionError(f"text too long (more than {MAX_STRING_LENGTH} characters)")
        return a + b
    raise _cannot("+", a, b)


def _sub(a: Any, b: Any) -> Any:
    _arithmetic("-", a, b)
    if _is_number(a) and _is_number(b):
        return _number(a - b)
    raise _cannot("-", a, b)


def _mul(a: Any, b: Any) -> Any:
    _arithmetic("*", a, b)
    if _is_number(a) and _is_number(b):
        return _number(a * b)
    # Text repetition is allowed but bounded before the text is built.
    if isinstance(a, int) and isinstance(b, str):
        a, b = b, a
    if isinstance(a, str) and isinstance(b, int):
        if len(a) * b > MAX_STRING_LENGTH:
            raise ExpressionError(f"text too long (more than {MAX_STRING_LENGTH} characters)")
        return a * b
    raise _cannot("*", a, b)


def _dividing(symbol: str, operation: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def divide(a: Any, b: Any) -> Any:
        _arithmetic(symbol, a, b)
        # Numbers only: '%' on text would be printf formatting ('%999999999d' % 1 allocates gigabytes).
        if not (_is_number(a) and _is_number(b)):
            raise _cannot(symbol, a, b)
        if b == 0:
            raise ExpressionError("division by zero")
        return _number(operation(a, b))

    return divide


def _negate(a: Any) -> Any:
    if a is None:
        raise ExpressionError("empty value in arithmetic ('-')")
    if not _is_number(a):
        raise ExpressionError(f"cannot use '-' with {_kind(a)}")
    return _number(-a)


def _positive(a: Any) -> Any:
    if a is None:
        raise ExpressionError("empty value in arithmetic ('+')")
    if not _is_number(a):
        raise ExpressionError(f"cannot use '+' with {_kind(a)}")
    return _number(+a)


def _comparable(a: Any, b: Any) -> tuple[Any, Any]:
    # Compare floats at the same precision arithmetic is rounded to, so context values match too.
    if isinstance(a, float) and _is_number(b):
        return round(a, _DECIMALS), b if not isinstance(b, float) else round(b, _DECIMALS)
    if isinstance(b, float) and _is_number(a):
        return a, round(b, _DECIMALS)
    return a, b


def _equality(negate: bool) -> Callable[[Any, Any], bool]:
    def compare(a: Any, b: Any) -> bool:
        a, b = _comparable(a, b)
        return bool(a != b) if negate else bool(a == b)

    return compare


def _ordering(symbol: str, operation: Callable[[Any, Any], Any]) -> Callable[[Any, Any], bool]:
    def compare(a: Any, b: Any) -> bool:
        if a is None or b is None:
            raise ExpressionError(f"empty value in comparison ('{symbol}')")
        a, b = _comparable(a, b)
        try:
            return bool(operation(a, b))
        except TypeError:
            raise ExpressionError(f"cannot compare {_kind(a)} and {_kind(b)} with '{symbol}'") from None

    return compare


def _contains(item: Any, container: Any) -> bool:
    if container is None:
        return False  # an empty multi-choice field contains nothing
    if isinstance(container, str):
        if not isinstance(item, str):
            raise ExpressionError(f"cannot look for {_kind(item)} in text with 'in'")
        return item in container
    if isinstance(container, list | tuple):
        return any(_equal(item, element) for element in container)
    if isinstance(container, Mapping):
        try:
            return item in container
        except TypeError:
            raise ExpressionError(f"cannot look for {_kind(item)} in a group of values") from None
    raise ExpressionError(f"cannot use 'in' with {_kind(container)}")


_equal = _equality(False)


def _is(a: Any, b: Any) -> bool:
    return a is None and b is None


def _is_not(a: Any, b: Any) -> bool:
    return not _is(a, b)


def _ge(a: Any, b: Any) -> Any:
    return a >= b


def _gt(a: Any, b: Any) -> Any:
    return a > b


def _le(a: Any, b: Any) -> Any:
    return a <= b


def _lt(a: Any, b: Any) -> Any:
    return a < b


_OPERATORS: dict[type, Callable[..., Any]] = {
    ast.Add: _add,
    ast.Sub: _sub,
    ast.Mult: _mul,
    ast.Div: _dividing("/", lambda a, b: a / b),
    ast.FloorDiv: _dividing("//", lambda a, b: a // b),
    ast.Mod: _dividing("%", lambda a, b: a % b),
    ast.USub: _negate,
    ast.UAdd: _positive,
    ast.Not: lambda a: not a,
    ast.Eq: _equal,
    ast.NotEq: _equality(True),
    ast.Lt: _ordering("<", _lt),
    ast.LtE: _ordering("<=", _le),
    ast.Gt: _ordering(">", _gt),
    ast.GtE: _ordering(">=", _ge),
    ast.In: _contains,
    ast.NotIn: lambda a, b: not _contains(a, b),
    ast.Is: _is,
    ast.IsNot: _is_not,
}

_FORBIDDEN_OPERATORS: dict[type, str] = {
    ast.Pow: "the power operator '**' is not allowed",
    ast.LShift: "the shift operator '<<' is not allowed",
    ast.RShift: "the shift operator '>>' is not allowed",
    ast.BitAnd: "the bitwise operator '&' is not allowed; use 'and'",
    ast.BitOr: "the bitwise operator '|' is not allowed; use 'or'",
    ast.BitXor: "the bitwise operator '^' is not allowed",
    ast.Invert: "the bitwise operator '~' is not allowed; use 'not'",
    ast.MatMult: "the operator '@' is not allowed",
}


# --------------------------------------------------------------------------------------------------------
# Functions


def _need(value: Any, function: str) -> None:
    if value is None:
        raise ExpressionError(f"empty value in {function}()")


def _need_number(value: Any, function: str) -> int | float:
    _need(value, function)
    if not _is_number(value):
        raise ExpressionError(f"{function}() needs a number, not {_kind(value)}")
    return value


def _values(args: tuple[Any, ...], function: str) -> list[Any]:
    """min/max accept either several values or one list."""
    values = list(args[0]) if len(args) == 1 and isinstance(args[0], list | tuple) else list(args)
    if not values:
        raise ExpressionError(f"{function}() needs at least one value")
    for value in values:
        _need(value, function)
    return values


def _fn_min(*args: Any) -> Any:
    values = _values(args, "min")
    try:
        return min(values)
    except TypeError:
        raise ExpressionError("min() cannot compare values of different kinds") from None


def _fn_max(*args: Any) -> Any:
    values = _values(args, "max")
    try:
        return max(values)
    except TypeError:
        raise ExpressionError("max() cannot compare values of different kinds") from None


def _fn_abs(x: Any) -> int | float:
    return _number(abs(_need_number(x, "abs")))


def _fn_round(x: Any, ndigits: Any = None) -> int | float:
    """Round half away from zero (2.5 -> 3), after rounding to 9 places, not Python's banker's rounding."""
    _need_number(x, "round")
    places = 0 if ndigits is None else ndigits
    if isinstance(places, bool) or not isinstance(places, int) or not -30 <= places <= _DECIMALS:
        raise ExpressionError(f"round() needs a whole number of places between -30 and {_DECIMALS}")
    if isinstance(x, bool):
        x = int(x)
    if isinstance(x, int) and places >= 0:
        return x
    try:
        rounded = Decimal(repr(_number(x))).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    except InvalidOperation:
        # Too many digits for the decimal context: such a float has no fractional part to round anyway.
        rounded = Decimal(repr(x))
    if ndigits is None or isinstance(x, int):
        return _number(int(rounded))
    return _number(float(rounded))


def _fn_ceil(x: Any) -> int:
    x = _need_number(x, "ceil")
    return _number(math.ceil(round(x, _DECIMALS)))


def _fn_floor(x: Any) -> int:
    x = _need_number(x, "floor")
    return _number(math.floor(round(x, _DECIMALS)))


def _parse_number(text: str, function: str) -> float | int:
    cleaned = text.strip()
    # Bounded so that int() of a 10 000-digit string cannot be used to burn CPU.
    if len(cleaned) > 100:
        raise ExpressionError(f"{function}(): text too long to be a number")
    try:
        return int(cleaned)
    except ValueError:
        pass
    try:
        number = float(cleaned)
    except ValueError:
        raise ExpressionError(f"{function}(): cannot convert {text!r} to a number") from None
    if not math.isfinite(number):
        raise ExpressionError(f"{function}(): cannot convert {text!r} to a number")
    return number


def _fn_int(x: Any) -> int:
    _need(x, "int")
    if isinstance(x, str):
        x = _parse_number(x, "int")
    if not _is_number(x):
        raise ExpressionError(f"int() needs a number or text, not {_kind(x)}")
    return _number(int(round(x, _DECIMALS)) if isinstance(x, float) else int(x))


def _fn_float(x: Any) -> float:
    _need(x, "float")
    if isinstance(x, str):
        x = _parse_number(x, "float")
    if not _is_number(x):
        raise ExpressionError(f"float() needs a number or text, not {_kind(x)}")
    return _number(float(x))


def _fn_str(x: Any) -> str:
    """Text of a value; an empty value gives empty text."""
    if x is None:
        return ""
    if isinstance(x, list | tuple) and len(x) > MAX_STRING_LENGTH:
        raise ExpressionError(f"text too long (more than {MAX_STRING_LENGTH} characters)")
    return _text(str(x))


def _fn_bool(x: Any) -> bool:
    return bool(x)


def _fn_len(x: Any) -> int:
    if x is None:
        return 0  # an empty field has no characters / choices
    if isinstance(x, str | list | tuple | Mapping):
        return len(x)
    raise ExpressionError(f"len() needs text or a list, not {_kind(x)}")


def _fn_sum(values: Any) -> int | float:
    _need(values, "sum")
    if not isinstance(values, list | tuple):
        raise ExpressionError(f"sum() needs a list, not {_kind(values)}")
    total: int | float = 0
    for value in values:
        total = _add(total, _need_number(value, "sum"))
    return total


def _fn_coalesce(*args: Any) -> Any:
    """The first argument that is not empty (None), else None."""
    for value in args:
        if value is not None:
            return value
    return None


def _as_date(value: Any, function: str) -> date:
    _need(value, function)
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            return date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text).date()
        except ValueError:
            raise ExpressionError(f"{function}(): {value!r} is not an ISO date (YYYY-MM-DD)") from None
    raise ExpressionError(f"{function}() needs a date, not {_kind(value)}")


def _fn_days_between(a: Any, b: Any) -> int:
    """Calendar days from a to b (b - a); dates, date-times or ISO text."""
    return (_as_date(b, "days_between") - _as_date(a, "days_between")).days


def _regex_options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # a bad pattern is the author's error, reported as such, not a line on stderr
    options.never_capture = True  # only whether it is found is asked
    options.max_mem = MAX_PATTERN_MEMORY
    return options


_REGEX_OPTIONS = _regex_options()


@memoize(128)
def _regex(pattern: str) -> tuple[Any, str | None]:
    """The compiled RE2 program of a pattern, or what is wrong with it (kept too: a bad pattern from the data
    is not compiled again on every row)."""
    try:
        return re2.compile(pattern, _REGEX_OPTIONS), None
    except re2.error as error:
        reason = error.args[0] if error.args else ""
        reason = reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)
        if "perl operator" in reason or re2.search(r"escape sequence: \\[1-9]", reason):
            reason += " (lookaround and backreferences are not supported)"
        return None, f"invalid pattern: {reason or 'not supported'}"


def _compiled_pattern(pattern: Any) -> Any:
    """The compiled pattern of matches(); ExpressionError when it is not text or RE2 refuses it."""
    if not isinstance(pattern, str):
        raise ExpressionError(f"matches() needs a pattern as text, not {_kind(pattern)}")
    if len(pattern) > MAX_PATTERN_LENGTH:  # before the cache: a long text is not kept as a key
        raise ExpressionError(f"matches(): pattern too long (more than {MAX_PATTERN_LENGTH} characters)")
    compiled, problem = _regex(pattern)
    if problem is not None:
        raise ExpressionError(f"matches(): {problem}")
    return compiled


def _fn_matches(text: Any, pattern: Any) -> bool:
    """Whether the pattern is found in the text (a search: anchor it with ^ and $ for a whole match).

    RE2 runs in time linear in the text, whatever the pattern: patterns come from definitions and run on input
    from anyone, so none can hang the server (no backreferences or lookaround, which need backtracking)."""
    compiled = _compiled_pattern(pattern)
    # Read, not produced: the text is not bound to MAX_STRING_LENGTH (a long description may be checked).
    subject = text if isinstance(text, str) else _fn_str(text)
    return compiled.search(subject) is not None


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "min": _fn_min,
    "max": _fn_max,
    "abs": _fn_abs,
    "round": _fn_round,
    "ceil": _fn_ceil,
    "floor": _fn_floor,
    "len": _fn_len,
    "sum": _fn_sum,
    "int": _fn_int,
    "float": _fn_float,
    "str": _fn_str,
    "bool": _fn_bool,
    "coalesce": _fn_coalesce,
    "days_between": _fn_days_between,
    "matches": _fn_matches,
}


# --------------------------------------------------------------------------------------------------------
# Compile-time checking


_NOT_COUNTED = (ast.expr_context, ast.operator, ast.unaryop, ast.cmpop, ast.boolop)

_FORBIDDEN_NODES: dict[type, str] = {
    ast.Lambda: "lambda is not allowed",
    ast.ListComp: "comprehensions are not allowed",
    ast.SetComp: "comprehensions are not allowed",
    ast.DictComp: "comprehensions are not allowed",
    ast.GeneratorExp: "generator expressions are not allowed",
    ast.NamedExpr: "assignment ':=' is not allowed",
    ast.JoinedStr: "f-strings are not allowed",
    ast.FormattedValue: "f-strings are not allowed",
    ast.Starred: "'*' unpacking is not allowed",
    ast.Subscript: "subscripts like 'x[0]' are not allowed; use a dotted name like 'case.category'",
    ast.Slice: "slices like 'x[1:2]' are not allowed",
    ast.Dict: "dict literals like {'a': 1} are not allowed",
    ast.Set: "set literals like {1, 2} are not allowed; use a list [1, 2]",
    ast.Await: "'await' is not allowed",
    ast.Yield: "'yield' is not allowed",
    ast.YieldFrom: "'yield' is not allowed",
}


class _Checker:
    """Walks the parsed tree once, collecting every problem, referenced name and called function."""

    def __init__(self, source: str, lead: int, allowed: frozenset[str] | None):
        self.lines = source.splitlines(keepends=True) or [""]
        self.starts = [0]
        for line in self.lines:
            self.starts.append(self.starts[-1] + len(line))
        self.lead = lead
        self.allowed = allowed
        self.problems: list[tuple[str, int | None]] = []
        self.names: set[str] = set()
        self.functions: set[str] = set()

    def column(self, node: ast.AST) -> int | None:
        """0-based character offset into the original source (ast offsets are UTF-8 bytes per line)."""
        lineno = getattr(node, "lineno", None)
        col = getattr(node, "col_offset", None)
        if lineno is None or col is None or not 1 <= lineno <= len(self.lines):
            return None
        line = self.lines[lineno - 1].encode("utf-8")
        return self.lead + self.starts[lineno - 1] + len(line[:col].decode("utf-8", errors="ignore"))

    def problem(self, message: str, node: ast.AST) -> None:
        self.problems.append((message, self.column(node)))

    def visit(self, node: ast.AST) -> None:
        kind = type(node)
        if kind in _FORBIDDEN_NODES:
            self.problem(_FORBIDDEN_NODES[kind], node)
        elif isinstance(node, ast.Constant):
            self.constant(node)
        elif isinstance(node, ast.Name):
            if not self.underscore([node.id], node):
                self.name(node.id, node)
        elif isinstance(node, ast.Attribute):
            self.attribute(node)
        elif isinstance(node, ast.BinOp):
            if type(node.op) in _FORBIDDEN_OPERATORS:
                self.problem(_FORBIDDEN_OPERATORS[type(node.op)], node)
            self.visit(node.left)
            self.visit(node.right)
        elif isinstance(node, ast.UnaryOp):
            if type(node.op) in _FORBIDDEN_OPERATORS:
                self.problem(_FORBIDDEN_OPERATORS[type(node.op)], node)
            self.visit(node.operand)
        elif isinstance(node, ast.BoolOp):
            for value in node.values:
                self.visit(value)
        elif isinstance(node, ast.Compare):
            self.compare(node)
        elif isinstance(node, ast.IfExp):
            self.visit(node.test)
            self.visit(node.body)
            self.visit(node.orelse)
        elif isinstance(node, ast.Call):
            self.call(node)
        elif isinstance(node, ast.List | ast.Tuple):
            for element in node.elts:
                self.visit(element)
        else:
            self.problem(f"{kind.__name__} is not allowed in expressions", node)

    def constant(self, node: ast.Constant) -> None:
        value = node.value
        if isinstance(value, bool) or value is None or isinstance(value, str):
            return
        if isinstance(value, int | float):
            if not math.isfinite(value) if isinstance(value, float) else abs(value) > MAX_INT:
                self.problem("number too large", node)
            return
        if isinstance(value, bytes):
            self.problem("bytes literals are not allowed", node)
        elif isinstance(value, complex):
            self.problem("complex numbers are not allowed", node)
        else:
            self.problem(f"the literal {value!r} is not allowed", node)

    def name(self, dotted: str, node: ast.AST) -> None:
        self.names.add(dotted)
        if self.allowed is not None and not _name_allowed(dotted, self.allowed):
            message = f"unknown name '{dotted}'"
            candidates = _name_candidates(dotted, self.allowed) if affordable(len(self.allowed)) else []
            self.problem(message + _suggest(dotted, candidates), node)

    def underscore(self, parts: list[str], node: ast.AST) -> bool:
        bad = [part for part in parts if part.startswith("_")]
        for part in bad:
            self.problem(f"name '{part}' is not allowed: names must not start with '_'", node)
        return bool(bad)

    def chain(self, node: ast.AST) -> tuple[list[str], ast.AST]:
        """Dotted parts in written order, plus the node the chain hangs on (a Name when plain)."""
        parts: list[str] = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if isinstance(node, ast.Name):
            parts.append(node.id)
        parts.reverse()
        return parts, node

    def plain_chain(self, node: ast.Attribute) -> bool:
        """True for a.b.c of Names only; '(x).y' has the same tree but its base starts at a later offset."""
        _parts, base = self.chain(node)
        if not isinstance(base, ast.Name):
            return False
        inner: ast.AST = node
        while isinstance(inner, ast.Attribute):
            if (inner.lineno, inner.col_offset) != (base.lineno, base.col_offset):
                return False
            inner = inner.value
        return True

    def attribute(self, node: ast.Attribute) -> None:
        parts, base = self.chain(node)
        bad = self.underscore(parts, node)
        if not self.plain_chain(node):
            self.problem("attribute access is only allowed on plain dotted names like 'case.category'", node)
            if not isinstance(base, ast.Name):
                self.visit(base)
            return
        if not bad:
            self.name(".".join(parts), node)

    def compare(self, node: ast.Compare) -> None:
        operands = [node.left, *node.comparators]
        for index, op in enumerate(node.ops):
            if isinstance(op, ast.Is | ast.IsNot):
                pair = operands[index : index + 2]
                if not any(isinstance(o, ast.Constant) and o.value is None for o in pair):
                    self.problem("'is' and 'is not' can only be used with None", node)
        for operand in operands:
            self.visit(operand)

    def call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Name):
            if not self.underscore([func.id], func):
                if func.id in FUNCTIONS:
                    self.functions.add(func.id)
                    self.arity(func.id, len(node.args), node)
                    if func.id == "matches" and len(node.args) == 2 and isinstance(node.args[1], ast.Constant):
                        # A written pattern is checked with the definition, not first when someone submits.
                        try:
                            _compiled_pattern(node.args[1].value)
                        except ExpressionError as error:
                            self.problem(error.message, node.args[1])
                else:
                    self.problem(f"unknown function '{func.id}'" + _suggest(func.id, FUNCTIONS), func)
        elif isinstance(func, ast.Attribute):
            parts, _ = self.chain(func)
            if not self.underscore(parts, func):
                self.problem(f"method calls like '.{func.attr}()' are not allowed", func)
        else:
            self.problem("only functions can be called, by name", func)
        for keyword in node.keywords:
            if keyword.arg is None:
                self.problem("'**' unpacking is not allowed", keyword.value)
            else:
                self.problem(f"keyword arguments like '{keyword.arg}=' are not allowed", keyword.value)
        for arg in node.args:
            self.visit(arg)

    def arity(self, name: str, count: int, node: ast.AST) -> None:
        try:
            signature = inspect.signature(FUNCTIONS[name])
        except (TypeError, ValueError):
            return  # a builtin without a signature: checked when called
        try:
            signature.bind(*([None] * count))
        except TypeError:
            self.problem(f"wrong number of arguments for {name}()", node)


def _name_allowed(dotted: str, allowed: frozenset[str]) -> bool:
    if dotted in allowed:
        return True
    parts = dotted.split(".")
    return any(".".join(parts[:i]) + ".*" in allowed for i in range(1, len(parts)))


def _name_candidates(dotted: str, allowed: frozenset[str]) -> list[str]:
    """Allowed names to suggest from; a wildcard 'p.*' offers p plus the tail of the name written."""
    parts = dotted.split(".")
    candidates = []
    for name in sorted(allowed):
        if name.endswith(".*"):
            prefix = name[:-2]
            depth = prefix.count(".") + 1
            written = ".".join(parts[:depth])
            # 'usr.unit' against 'user.*' suggests 'user.unit'; an unrelated prefix suggests nothing.
            if len(parts) > depth and difflib.SequenceMatcher(None, written, prefix).ratio() >= 0.6:
                candidates.append(".".join([prefix, *parts[depth:]]))
        else:
            candidates.append(name)
    return candidates


def _suggest(word: str, candidates: Iterable[str]) -> str:
    matches = close_matches(word, candidates, n=3)
    if not matches:
        return ""
    return " (did you mean " + " or ".join(f"'{match}'" for match in matches) + "?)"


def _analyse(source: Any, names: Iterable[str] | None) -> tuple[ast.Expression, _Checker]:
    """Parse and check; syntax and bound errors raise, rule violations are collected on the checker."""
    if not isinstance(source, str):
        raise ExpressionError("an expression must be text")
    if len(source) > MAX_LENGTH:
        raise ExpressionError(f"expression too long (more than {MAX_LENGTH} characters)")
    if isinstance(names, str):
        names = [names]  # a lone string would otherwise be split into characters
    allowed = None if names is None else frozenset(names)
    stripped = source.lstrip()
    lead = len(source) - len(stripped)
    if not stripped.strip():
        raise ExpressionError("empty expression", 0)
    try:
        # Invalid escapes such as '\d' warn; the project turns warnings into errors.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(stripped, mode="eval")
    except SyntaxError as error:
        column = None
        if error.offset and error.lineno:
            # SyntaxError offsets are 1-based characters within the line.
            before = stripped.splitlines(keepends=True)[: error.lineno - 1]
            column = lead + sum(len(line) for line in before) + max(error.offset - 1, 0)
        raise ExpressionError(f"syntax error: {error.msg}", column) from None
    except (ValueError, RecursionError, MemoryError):
        # ValueError: null bytes; the others: pathological nesting.
        raise ExpressionError("expression cannot be parsed") from None
    count = sum(1 for node in ast.walk(tree.body) if not isinstance(node, _NOT_COUNTED))
    if count > MAX_NODES:
        raise ExpressionError(f"expression too complex (more than {MAX_NODES} parts)")
    checker = _Checker(stripped, lead, allowed)
    try:
        checker.visit(tree.body)
    except RecursionError:
        raise ExpressionError("expression too complex (nested too deeply)") from None
    return tree, checker


# --------------------------------------------------------------------------------------------------------
# Evaluation


# Each checked node becomes a closure once, when the expression is compiled: evaluating is then a call per
# node, with no tree walk, no handler lookup and no evaluator object per evaluation. A closure takes the
# context and the wall-clock deadline.

Closure = Callable[[Mapping[str, Any], float], Any]


_NUMBER_TYPES = frozenset((int, float))  # exact types: a boolean takes the operators' own way
# Two plain numbers take Python's own operation, bounded as `_number` bounds it: (operation, divides).
_FAST_ARITHMETIC: dict[type, tuple[Callable[[Any, Any], Any], bool]] = {
    ast.Add: (py_operator.add, False), ast.Sub: (py_operator.sub, False), ast.Mult: (py_operator.mul, False),
    ast.Div: (py_operator.truediv, True), ast.FloorDiv: (py_operator.floordiv, True),
    ast.Mod: (py_operator.mod, True)}
_FAST_COMPARE: dict[type, Callable[[Any, Any], bool]] = {
    ast.Lt: py_operator.lt, ast.LtE: py_operator.le, ast.Gt: py_operator.gt, ast.GtE: py_operator.ge,
    ast.Eq: py_operator.eq, ast.NotEq: py_operator.ne}
_NUMBER_FUNCTIONS = {"ceil": math.ceil, "floor": math.floor}
# Functions whose work grows with their arguments (a list from the context): they check the deadline.
_GROWING_FUNCTIONS = frozenset({"sum", "min", "max", "len", "str"})


def _fixed(node: ast.AST) -> tuple[bool, Any]:
    """Whether an operand is a literal, and its value: read where it is used rather than called for."""
    return (True, node.value) if type(node) is ast.Constant else (False, None)


def _failing(message: str) -> Closure:
    """A node the checker should have refused: fail closed, when evaluated (as a tree walk would)."""

    def fail(_context: Mapping[str, Any], _deadline: float) -> Any:
        raise ExpressionError(message)

    return fail


def _lookup(parts: list[str]) -> Closure:
    """A dotted name, resolved by mapping lookup only (never getattr); missing means None."""
    if any(part.startswith("_") for part in parts):
        return _failing("names must not start with '_'")
    if len(parts) == 1:
        (name,) = parts

        def plain(context: Mapping[str, Any], _deadline: float) -> Any:
            value = context.get(name)
            return value if value is None or type(value) in _PLAIN_TYPES else _context_value(value, name)

        return plain
    dotted = ".".join(parts)
    prefixes = [".".join(parts[:depth]) for depth in range(len(parts) + 1)]

    def nested(context: Mapping[str, Any], _deadline: float) -> Any:
        if dotted in context:
            return _context_value(context[dotted], dotted)
        value: Any = context
        for depth, part in enumerate(parts):
            if value is None:
                return None
            if not isinstance(value, Mapping):
                raise ExpressionError(f"'{prefixes[depth]}' has no field '{part}'")
            value = _context_value(value.get(part), prefixes[depth + 1])
        return value

    return nested


def _dotted(node: ast.Attribute) -> list[str] | None:
    parts: list[str] = []
    current: ast.AST = node
    while isinstance(current, ast.Attribute):
        parts.append(current.attr)
        current = current.value
    if not isinstance(current, ast.Name):
        return None
    parts.append(current.id)
    parts.reverse()
    return parts


def _build_call(node: ast.Call) -> Closure:
    if not isinstance(node.func, ast.Name) or node.keywords:
        return _failing("only functions can be called, by name")
    name = node.func.id
    function = FUNCTIONS.get(name)
    if function is None:
        return _failing(f"unknown function '{name}'")
    args = [_build(arg) for arg in node.args]
    if len(args) == 1 and name in _NUMBER_FUNCTIONS:
        (only,) = args
        rounding = _NUMBER_FUNCTIONS[name]

        def on_number(context: Mapping[str, Any], deadline: float) -> Any:
            x = only(context, deadline)
            if type(x) in _NUMBER_TYPES:  # ceil/floor of a plain number: as _fn_ceil/_fn_floor do it
                result = rounding(round(x, _DECIMALS))
                if -MAX_INT <= result <= MAX_INT:
                    return result
            return _guarded(function, name, (x,))

        return on_number

    clocked = name in _GROWING_FUNCTIONS
    if not clocked and len(args) == 2:  # coalesce(x, 0), round(x, 2), days_between(a, b): no list to build
        first, second = args
        (first_fixed, first_value), (second_fixed, second_value) = _fixed(node.args[0]), _fixed(node.args[1])

        if function is _fn_coalesce:  # coalesce(x, 0): the first that is not empty, both evaluated as before
            def coalesce_two(context: Mapping[str, Any], deadline: float) -> Any:
                a = first_value if first_fixed else first(context, deadline)
                b = second_value if second_fixed else second(context, deadline)
                return a if a is not None else b

            return coalesce_two

        def call_two(context: Mapping[str, Any], deadline: float) -> Any:
            a = first_value if first_fixed else first(context, deadline)
            b = second_value if second_fixed else second(context, deadline)
            return _guarded(function, name, (a, b))

        return call_two

    def call(context: Mapping[str, Any], deadline: float) -> Any:
        # Work grows with the context only in functions over lists: they check the clock first.
        if clocked and time.monotonic() > deadline:
            raise ExpressionError("evaluation took too long")
        return _guarded(function, name, [arg(context, deadline) for arg in args])

    return call


def _guarded(function: Callable[..., Any], name: str, values: Iterable[Any]) -> Any:
    """Call a function of the language; its failures become ExpressionErrors that name it."""
    try:
        return function(*values)
    except ExpressionError:
        raise
    except TypeError:
        raise ExpressionError(f"wrong arguments for {name}()") from None
    except (ArithmeticError, ValueError) as error:
        raise ExpressionError(f"{name}(): {error}") from None


def _build_compare(node: ast.Compare) -> Closure:
    first = _build(node.left)
    links = [(_OPERATORS[type(op)], _build(comparator)) for op, comparator in zip(node.ops, node.comparators,
                                                                                 strict=True)]
    if len(links) == 1 and type(node.ops[0]) in (ast.In, ast.NotIn) and _texts(node.comparators[0]) is not None:
        return _build_membership(first, node.ops[0], _texts(node.comparators[0]))
    if len(links) == 1:
        ((operator, right),) = links
        fast = _FAST_COMPARE.get(type(node.ops[0]))
        if fast is None:
            return lambda context, deadline: operator(first(context, deadline), right(context, deadline))

        (left_fixed, left_value), (right_fixed, right_value) = _fixed(node.left), _fixed(node.comparators[0])

        def compare(context: Mapping[str, Any], deadline: float) -> bool:
            a = left_value if left_fixed else first(context, deadline)
            b = right_value if right_fixed else right(context, deadline)
            ta, tb = type(a), type(b)
            if ta in _NUMBER_TYPES and tb in _NUMBER_TYPES:  # at the precision arithmetic is rounded to
                return fast(round(a, _DECIMALS) if ta is float else a, round(b, _DECIMALS) if tb is float else b)
            if ta is str and tb is str:
                return fast(a, b)
            return operator(a, b)

        return compare

    def chained(context: Mapping[str, Any], deadline: float) -> bool:
        left = first(context, deadline)
        for operator, comparator in links:
            right = comparator(context, deadline)
            if not operator(left, right):
                return False  # chained comparisons stop at the first false link, like Python
            left = right
        return True

    return chained


def _texts(node: ast.AST) -> frozenset[str] | None:
    """The texts of a written list of texts (`kind in ['road', 'lane']`), else None."""
    if type(node) not in (ast.List, ast.Tuple) or not all(type(e) is ast.Constant and type(e.value) is str
                                                         for e in node.elts):
        return None
    return frozenset(e.value for e in node.elts)


def _build_membership(item: Closure, op: ast.cmpop, texts: frozenset[str]) -> Closure:
    """`x in ['a', 'b']`: a set lookup. Only a text equals a text (`_contains` compares each element with ==),
    so anything else is in no such list."""
    negate = type(op) is ast.NotIn

    def member(context: Mapping[str, Any], deadline: float) -> bool:
        value = item(context, deadline)
        found = value in texts if type(value) is str else (
            isinstance(value, str) and any(_equal(value, text) for text in texts))
        return not found if negate else found

    return member


def _build_boolop(node: ast.BoolOp) -> Closure:
    values = [_build(value) for value in node.values]
    if len(values) == 2:  # Python's own `and` / `or`: the same value as the loops below, without them
        left, right = values
        if isinstance(node.op, ast.And):
            return lambda context, deadline: left(context, deadline) and right(context, deadline)
        return lambda context, deadline: left(context, deadline) or right(context, deadline)
    if isinstance(node.op, ast.And):
        def both(context: Mapping[str, Any], deadline: float) -> Any:
            result: Any = False
            for value in values:
                result = value(context, deadline)
                if not result:
                    break
            return result

        return both

    def either(context: Mapping[str, Any], deadline: float) -> Any:
        result: Any = False
        for value in values:
            result = value(context, deadline)
            if result:
                break
        return result

    return either


def _build(node: ast.AST) -> Closure:
    """The closure of a checked node (anything the checker admits; the rest fails closed when evaluated)."""
    kind = type(node)
    if kind is ast.Constant:
        value = node.value
        return lambda _context, _deadline: value
    if kind is ast.Name:
        return _lookup([node.id])
    if kind is ast.Attribute:
        parts = _dotted(node)
        return _lookup(parts) if parts else _failing("attribute access is only allowed on plain dotted names")
    if kind is ast.UnaryOp or kind is ast.BinOp:
        operator = _OPERATORS.get(type(node.op))
        if operator is None:
            return _failing(_FORBIDDEN_OPERATORS.get(type(node.op), "operator not allowed"))
        if kind is ast.UnaryOp:
            operand = _build(node.operand)
            return lambda context, deadline: operator(operand(context, deadline))
        left, right = _build(node.left), _build(node.right)
        if type(node.op) not in _FAST_ARITHMETIC:
            return lambda context, deadline: operator(left(context, deadline), right(context, deadline))
        fast, divides = _FAST_ARITHMETIC[type(node.op)]

        (left_fixed, left_value), (right_fixed, right_value) = _fixed(node.left), _fixed(node.right)

        def arithmetic(context: Mapping[str, Any], deadline: float) -> Any:
            a = left_value if left_fixed else left(context, deadline)
            b = right_value if right_fixed else right(context, deadline)
            # Two plain numbers (not booleans; no division by zero): the operation itself, bounded as _number
            # bounds it; else the operator, with every rule for empty values, text, dates and zero.
            if type(a) in _NUMBER_TYPES and type(b) in _NUMBER_TYPES and (b or not divides):
                result = fast(a, b)
                if type(result) is float:
                    if result - result == 0:  # finite (inf - inf and nan - nan are nan)
                        return round(result, _DECIMALS)
                elif -MAX_INT <= result <= MAX_INT:
                    return result
            return operator(a, b)

        return arithmetic
    if kind is ast.Compare:
        return _build_compare(node)
    if kind is ast.BoolOp:
        return _build_boolop(node)
    if kind is ast.IfExp:
        test, body, orelse = _build(node.test), _build(node.body), _build(node.orelse)
        (body_fixed, body_value), (else_fixed, else_value) = _fixed(node.body), _fixed(node.orelse)
        if body_fixed and else_fixed:  # `1 if … else 3`: the two answers are written
            return lambda context, deadline: body_value if test(context, deadline) else else_value
        return lambda context, deadline: (body(context, deadline) if test(context, deadline)
                                          else orelse(context, deadline))
    if kind is ast.Call:
        return _build_call(node)
    if kind is ast.List or kind is ast.Tuple:
        elements = [_build(element) for element in node.elts]
        return lambda context, deadline: [element(context, deadline) for element in elements]
    return _failing(f"{kind.__name__} is not allowed in expressions")


@dataclass(frozen=True)
class Expression:
    """A checked expression, compiled into closures once: safe to evaluate many times (and from many threads)."""

    source: str
    names: frozenset[str]
    functions: frozenset[str]
    _tree: ast.Expression = field(repr=False, compare=False)
    _run: Closure = field(repr=False, compare=False)
    _clocked: bool = field(default=False, repr=False, compare=False)  # calls a function that checks the clock

    def evaluate(self, context: Mapping[str, Any]) -> Any:
        """Evaluate against a mapping of (possibly nested) values; raise ExpressionError on any failure."""
        if type(context) is not dict and not isinstance(context, Mapping):
            raise ExpressionError("the context must be a mapping")
        # Functions over lists are the only place work grows with the context: only they check the clock.
        deadline = time.monotonic() + MAX_SECONDS if self._clocked else 0.0
        try:
            result = self._run(context, deadline)
        except ExpressionError:
            raise
        except ZeroDivisionError:
            raise ExpressionError("division by zero") from None
        except OverflowError:
            raise ExpressionError("number too large") from None
        except (RecursionError, MemoryError):
            raise ExpressionError("expression too complex") from None
        except Exception as error:  # noqa: BLE001 - callers rely on ExpressionError being the only failure
            raise ExpressionError(f"cannot evaluate: {error}") from None
        return result if result is None or type(result) in _PLAIN_TYPES else _plain_result(result)


def compile_expression(source: str, names: Iterable[str] | None = None) -> Expression:
    """Parse and check; raise ExpressionError. If `names` is given, every referenced name must be allowed."""
    tree, checker = _analyse(source, names)
    if checker.problems:
        message, column = checker.problems[0]
        error = ExpressionError(message, column)
        error.problems = [text for text, _ in checker.problems]
        raise error
    return Expression(source, frozenset(checker.names), frozenset(checker.functions), tree, _build(tree.body),
                      bool(checker.functions & _GROWING_FUNCTIONS))


def check_expression(source: str, names: Iterable[str] | None = None) -> list[str]:
    """All problems as messages (empty when fine); never raises for bad input."""
    try:
        _tree, checker = _analyse(source, names)
    except ExpressionError as error:
        return [error.message]
    except Exception as error:  # noqa: BLE001 - a checker must report, not crash, on any input
        return [f"expression cannot be checked: {error}"]
    return [message for message, _ in checker.problems]
