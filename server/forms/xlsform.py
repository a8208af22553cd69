"""Import an XLSForm workbook (sheets ``survey``, ``choices``, ``settings``) as a Fangan form definition.

Pure module: no Flask, no SQLAlchemy. The workbook is read with openpyxl (so every problem names its sheet,
Excel row and column); pyxform supplies the XLSForm column, type and yes/no aliases. Every problem found is
collected and raised at once as ``XlsformError(issues)``; nothing is ever silently translated wrongly.

Settings: ``form_title`` → ``name`` (else the file name), ``form_id`` → ``id`` (lower-cased, other characters
become ``_``; the ``form_id`` argument wins; else the file name, else ``imported_form``), ``default_language``
says which language a plain ``label`` column is in when ``label::中文 (zh)`` / ``label::English (en)`` columns
exist too. Texts (label, hint, constraint_message, choice labels) become ``{zh, en}`` when language columns
are used, a plain string otherwise; languages other than zh and en are reported.

Types:

* text (appearance ``multiline`` → textarea), integer, decimal, date, time, dateTime → datetime,
  geopoint → location, note, file (max_files 1), image → photo (max_files 1, capture, accept image);
* select_one / select_multiple LIST → single_choice / multiple_choice with the list's choices (value = name;
  values are always text, so ``${x} = 1`` on a select becomes ``x == '1'``);
* calculate → a readonly field with ``calculate``: ``integer`` when the result is surely whole (len, int,
  ceil, floor, days_between, whole-number arithmetic), ``decimal`` when it is otherwise numeric, else ``text``;
* acknowledge → single_choice with one choice ``OK`` (ODK stores ``OK``, so expressions keep working);
* begin/end group → section, begin/end repeat → repeat (a literal ``repeat_count`` becomes ``max_repeat``);
* metadata (start, end, today, deviceid, username, email, phonenumber, simserial, subscriberid, audit,
  start-geopoint…) is skipped; ``${x}`` naming a skipped ``today`` becomes ``today``, ``start``/``end``
  become ``now`` and ``username`` becomes ``user.name``; other metadata cannot be referenced;
* anything else (geotrace, geoshape, barcode, audio, video, range, rank, hidden, trigger, select_one_from_file,
  select_one_external, xml-external, ``or_other``…) is reported as not supported.

Columns: required (yes/true → ``required: true``, an expression → ``required_if``), relevant → visible_if,
constraint + constraint_message → constraints, calculation → calculate, default (a literal → ``default``;
a formula such as ``today()`` → ``default_from``, which may only use context names), read_only yes →
readonly, choice_filter, repeat_count; on groups and repeats only label, hint, relevant (and repeat_count)
apply, as in XLSForm. ``appearance`` is ignored except multiline and ``search()`` (reported);
a ``trigger`` column is reported (it changes when calculations run). Media, guidance_hint, required_message
and parameters columns are ignored. ``${x}`` inside a label is kept as written (labels do not show answers).

Field ids come from ``name``: lower-cased, other characters → ``_``, a leading digit gets ``f_``; names that
are reserved in expressions (value, choice, today, now, user, period, scheme, Python keywords) get a ``_``
suffix. References are rewritten to the ids, so renaming is safe. Names with no usable letter (e.g. all
Chinese) and duplicates are reported.

Expressions are parsed (not pattern-replaced) and re-emitted in the Fangan language: ``${x}`` → the id,
``.`` → ``value`` in a constraint (the field's own id elsewhere), ``=`` → ``==``, ``x = ''`` → ``x is None``,
and/or/not(), div → ``/``, mod → ``%``, ``selected(x, 'a')`` → ``'a' in x`` (``x == 'a'`` on a select_one),
count-selected / string-length → len, count(${repeat}) → len, if(c, a, b) → ``(a if c else b)``, today(),
now(), number → float, int, round, coalesce, min/max (two or more arguments), abs, ceiling → ceil, floor,
string → str, boolean → bool, concat → ``str(a) + str(b)``, true()/false(). Everything else (paths,
predicates, ``|``, regex, substr, starts-with, contains, sum, indexed-repeat, jr:choice-name, date
functions…) is reported. In a choice_filter the bare column ``name`` is the candidate (``choice.value``);
filters over other choices columns (cascading selects by an extra column) or labels are reported, because
Fangan choices have only a value and a label. Translations are then checked with ``check_expression``.
"""

from __future__ import annotations

import ast
import difflib
import io
import keyword
import re
import unicodedata
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import PurePath
from typing import Any

import openpyxl
from pyxform import aliases, constants
from pyxform.question_type_dictionary import QUESTION_TYPE_DICT
from ruamel.yaml import YAML

from ..definitions.references import FORM_CONTEXT_NAMES
from ..expressions import check_expression
from .fields import FIELD_TYPES, FieldType

__all__ = ["ExpressionScope", "XlsformError", "XlsformIssue", "import_xlsform", "sanitize_id", "to_yaml",
           "translate_expression"]

MAX_TEXT = 4000  # common.json#/$defs/text maxLength
MAX_ID = 64  # common.json#/$defs/id maxLength
MAX_REPEAT = 100  # form.json max_repeat maximum
SHEETS = ("settings", "survey", "choices")


@dataclass(frozen=True)
class XlsformIssue:
    """One problem in the workbook, at a sheet, an Excel row (1-based) and a column header."""

    sheet: str
    row: int | None
    column: str | None
    message: str

    def __str__(self) -> str:
        """E.g. "survey row 12, column type: type 'geotrace' is not supported"."""
        where = " ".join(part for part in (self.sheet, f"row {self.row}" if self.row is not None else "") if part)
        if self.column:
            where = f"{where}, column {self.column}" if where else f"column {self.column}"
        return f"{where}: {self.message}" if where else self.message


class XlsformError(ValueError):
    """The workbook cannot be imported; `issues` lists every problem found."""

    def __init__(self, issues: list[XlsformIssue]):
        self.issues = list(issues)
        super().__init__("\n".join(str(issue) for issue in self.issues))


# --------------------------------------------------------------------------------------------------------
# Names, types and texts

_CONTEXT_ROOTS = frozenset(name.removesuffix(".*") for name in FORM_CONTEXT_NAMES)
# A field id equal to one of these would shadow a name the expression language gives another meaning.
_RESERVED = _CONTEXT_ROOTS | {"value", "choice"}

_SELECT_ONE = constants.SELECT_ONE
_SELECT_MULTIPLE = constants.SELECT_ALL_THAT_APPLY
# pyxform's select aliases minus the from-file forms (they map to plain selects there, but read a CSV file).
_SELECTS = {alias: kind for alias, kind in aliases.select.items()
            if alias not in aliases.select_from_file and kind in (_SELECT_ONE, _SELECT_MULTIPLE)}
_SELECT_RE = re.compile(r"^(?P<command>" + "|".join(re.escape(a) for a in sorted(_SELECTS, key=len, reverse=True))
                        + r")\s+(?P<list>\S+)(?:\s+(?P<other>.+))?$", re.IGNORECASE)

# XLSForm types that are not a field type of their own: the importer makes them fields itself.
_OWN_TYPES = {"calculate": "calculate", "acknowledge": "acknowledge"}


def _types() -> dict[str, str]:
    """XLSForm type (lower-cased) → Fangan field type, as the registered field types declare (`xlsform_types`;
    one with an `xlsform_appearance` is taken only with that appearance), selects aside."""
    out: dict[str, str] = {}
    for name, kind in FIELD_TYPES.items():
        for xls_type in kind.xlsform_types if kind.xlsform_appearance is None else ():
            if xls_type.lower() not in _SELECTS:
                out.setdefault(xls_type.lower(), name)
    return {**out, **_OWN_TYPES}


def _declaring(xls_type: str) -> str:
    """The registered field type that declares an XLSForm type (`select_one` → the single choice)."""
    return next(name for name, kind in FIELD_TYPES.items() if xls_type in kind.xlsform_types)


def _select_type(command: str) -> str:
    """The field type a select command becomes (the one that declares `select_one` or `select_multiple`)."""
    return _declaring("select_one" if _SELECTS[command] == _SELECT_ONE else "select_multiple")


def _container_type(repeat: bool) -> str:
    """The registered field type a repeat (rows) or a group (a section) becomes."""
    return next(name for name, kind in FIELD_TYPES.items() if (kind.holds_rows if repeat else kind.transparent))


def _is_container(type_name: str | None) -> bool:
    kind = _kind(type_name)
    return kind is not None and (kind.holds_rows or kind.transparent)


def _with_appearance(xls_type: str, appearance: str) -> str | None:
    """The field type an XLSForm type becomes with this appearance (text + multiline → textarea), if any."""
    words = appearance.split()
    return next((name for name, kind in FIELD_TYPES.items() if kind.xlsform_appearance in words
                 and xls_type in (t.lower() for t in kind.xlsform_types)), None)


def _kind(type_name: str | None) -> FieldType | None:
    return FIELD_TYPES.get(type_name)


def _is_choice(type_name: str | None) -> bool:
    kind = _kind(type_name)
    return kind is not None and kind.is_choice


def _is_single_choice(type_name: str | None) -> bool:
    kind = _kind(type_name)
    return kind is not None and kind.is_choice and not kind.multiple
# Metadata is filled by the phone, never by a person: every type pyxform preloads, plus the session log.
_METADATA = {name.lower() for name, spec in QUESTION_TYPE_DICT.items() if "jr:preload" in spec.get("bind", {})}
_METADATA |= {"audit", "start-geopoint"}
# What a reference to a skipped metadata field means in Fangan (the rest cannot be referenced).
_METADATA_MEANING = {"start": "now", "end": "now", "start time": "now", "end time": "now", "get start time": "now",
                     "get end time": "now", "today": "today", "get today": "today", "username": "user.name",
                     "uri:username": "user.name"}

_YES = {key.lower() for key, flag in aliases.yes_no.items() if flag}
_NO = {key.lower() for key, flag in aliases.yes_no.items() if not flag}

# pyxform's survey column aliases, folded onto the column names used below.
_BIND_COLUMNS = {("bind", "relevant"): "relevant", ("bind", "calculate"): "calculation",
                 ("bind", "constraint"): "constraint", ("bind", "jr:constraintMsg"): "constraint_message",
                 ("control", "jr:count"): "repeat_count", ("bind", "readonly"): "read_only",
                 ("bind", "required"): "required", ("control", "appearance"): "appearance",
                 ("bind", "jr:requiredMsg"): "required_message",
                 constants.LABEL: "label", constants.NAME: "name", constants.TYPE: "type"}
_SURVEY_COLUMNS = {alias.lower(): _BIND_COLUMNS[target] for alias, target in aliases.survey_header.items()
                   if target in _BIND_COLUMNS}
_CHOICES_COLUMNS = {"caption": "label", "value": "name", "list name": "list_name", "list_name": "list_name"}
_SETTINGS_COLUMNS = {alias.lower(): {"title": "form_title", "id_string": "form_id"}.get(target, target)
                     for alias, target in aliases.settings_header.items()}
_TRANSLATED = ("label", "hint", "constraint_message")  # the translatable columns Fangan has a place for

_LANGUAGE_NAMES = {"english": "en", "英文": "en", "英语": "en", "chinese": "zh", "中文": "zh", "汉语": "zh",
                   "简体中文": "zh", "chinese (simplified)": "zh", "zh": "zh", "en": "en"}

_DEFAULT_MESSAGE = {"zh": "填写的内容不符合要求", "en": "This value is not allowed"}


def _language_code(text: str) -> str | None:
    """'中文 (zh)', 'English (en)', 'zh-CN', 'English' → zh/en; anything else → None."""
    cleaned = " ".join(text.split()).lower()
    if cleaned in _LANGUAGE_NAMES:
        return _LANGUAGE_NAMES[cleaned]
    match = re.search(r"\(\s*([a-z]{2,3})(?:[-_][a-z0-9]+)*\s*\)\s*$", cleaned) or re.fullmatch(
        r"([a-z]{2,3})[-_][a-z0-9]+", cleaned)
    code = match.group(1) if match else None
    return code if code in ("zh", "en") else None


def sanitize_id(name: str) -> str | None:
    """A Fangan id from a free name: lower-case, other characters → '_', a letter first; None if nothing is left."""
    text = unicodedata.normalize("NFKC", name).strip().lower()
    text = re.sub(r"[^a-z0-9_]+", "_", text).strip("_")
    if not text:
        return None
    if not text[0].isalpha():
        text = "f_" + text
    return text[:MAX_ID].rstrip("_")


def _cell_text(value: Any) -> str:
    """A cell as text: numbers without a spurious '.0', dates in ISO form, strings stripped."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value).strip()


# --------------------------------------------------------------------------------------------------------
# Expressions: tokenize, parse (Pratt) and re-emit XLSForm's XPath subset in the Fangan language

_FULL_WIDTH = {"（": "(", "）": ")", "，": ",", "‘": "'", "’": "'", "“": '"', "”": '"', "＝": "=", "＞": ">",
               "＜": "<", "≥": ">=", "≤": "<=", "≠": "!=", "｛": "{", "｝": "}", "＄": "$"}

_TOKEN_RE = re.compile(r"""
    (?P<space>\s+)
  | (?P<field>\$\{[^}]*\})
  | (?P<string>'[^']*'|"[^"]*")
  | (?P<number>\d+(?:\.\d*)?|\.\d+)
  | (?P<dotdot>\.\.)
  | (?P<dot>\.)
  | (?P<op>!=|<=|>=|=|<|>|\+|-|\*|\||\(|\)|,|/|\[|\]|@)
  | (?P<name>[^\W\d][\w.:-]*)
""", re.VERBOSE)

_INFIX = {"or": 1, "and": 2, "=": 3, "!=": 3, "<": 4, "<=": 4, ">": 4, ">=": 4, "+": 5, "-": 5,
          "*": 6, "div": 6, "mod": 6, "|": 8}
_NEGATE_POWER = 7

# Python precedence levels of emitted code (higher binds tighter).
_IF, _OR, _AND, _NOT, _CMP, _ADD, _MUL, _NEG, _ATOM = range(1, 10)

# XPath function → (Fangan function, least and most arguments) for those that map one to one.
_SIMPLE_FUNCTIONS = {"number": ("float", 1, 1), "int": ("int", 1, 1), "round": ("round", 1, 2),
                     "coalesce": ("coalesce", 2, 2), "min": ("min", 2, 20), "max": ("max", 2, 20),
                     "abs": ("abs", 1, 1), "ceiling": ("ceil", 1, 1), "floor": ("floor", 1, 1),
                     "string": ("str", 1, 1), "boolean": ("bool", 1, 1), "string-length": ("len", 1, 1)}
_CONSTANT_FUNCTIONS = {"today": "today", "now": "now", "true": "True", "false": "False"}


class _Untranslatable(Exception):
    """An expression (part) that has no Fangan equivalent."""


Node = tuple  # ("num", text) ("str", text) ("field", name) ("dot",) ("bare", name) ("neg", x)
#               ("binary", op, left, right) ("call", name, args)


def _tokenize(source: str) -> list[tuple[str, str, int]]:
    wide = sorted({ch for ch in source if ch in _FULL_WIDTH})
    if wide:
        raise _Untranslatable("full-width " + ", ".join(f"'{ch}' (use '{_FULL_WIDTH[ch]}')" for ch in wide))
    tokens, position = [], 0
    while position < len(source):
        match = _TOKEN_RE.match(source, position)
        if not match:
            raise _Untranslatable(f"unexpected '{source[position]}' at character {position + 1}")
        if match.lastgroup != "space":
            tokens.append((match.lastgroup or "", match.group(), position))
        position = match.end()
    return tokens


class _Parser:
    """Pratt parser for XLSForm's XPath subset; nodes are plain tuples."""

    def __init__(self, source: str):
        self.tokens = _tokenize(source)
        self.index = 0
        self.length = len(source)

    def peek(self) -> tuple[str, str, int]:
        return self.tokens[self.index] if self.index < len(self.tokens) else ("end", "", self.length)

    def take(self) -> tuple[str, str, int]:
        token = self.peek()
        self.index += 1
        return token

    def parse(self) -> Node:
        node = self.expression(0)
        kind, text, position = self.peek()
        if kind != "end":
            raise _Untranslatable(f"unexpected '{text}' at character {position + 1}")
        return node

    def power(self, token: tuple[str, str, int]) -> int:
        kind, text, _ = token
        if kind == "op" and text in _INFIX:
            return _INFIX[text]
        if kind == "name" and text in ("and", "or", "div", "mod"):
            return _INFIX[text]
        if kind == "op" and text == "/":
            raise _Untranslatable("'/' is a path in XLSForm, not division (divide with 'div'); paths are not supported")
        if kind == "op" and text == "[":
            raise _Untranslatable("predicates like x[1] are not supported")
        return 0

    def expression(self, right_power: int) -> Node:
        left = self.prefix(self.take())
        while right_power < self.power(self.peek()):
            _, operator, _ = self.take()
            left = ("binary", operator, left, self.expression(_INFIX[operator]))
        return left

    def prefix(self, token: tuple[str, str, int]) -> Node:
        kind, text, position = token
        if kind == "number":
            return ("num", text)
        if kind == "string":
            return ("str", text[1:-1])
        if kind == "field":
            return ("field", text[2:-1].strip())
        if kind == "dot":
            return ("dot",)
        if kind == "name":
            if self.peek()[1] == "(" and self.peek()[0] == "op":
                self.take()
                return ("call", text, self.arguments())
            return ("bare", text)
        if kind == "op" and text == "(":
            node = self.expression(0)
            self.expect(")")
            return node
        if kind == "op" and text == "-":
            return ("neg", self.expression(_NEGATE_POWER))
        if kind == "dotdot" or (kind == "op" and text in ("/", "@")):
            raise _Untranslatable("XPath paths like '/data/x' or '..' are not supported; use ${name}")
        if kind == "end":
            raise _Untranslatable("the expression ends too early")
        raise _Untranslatable(f"unexpected '{text}' at character {position + 1}")

    def arguments(self) -> list[Node]:
        args: list[Node] = []
        if self.peek()[1] == ")":
            self.take()
            return args
        while True:
            args.append(self.expression(0))
            kind, text, position = self.take()
            if text == ")":
                return args
            if text != ",":
                raise _Untranslatable(f"expected ',' or ')' at character {position + 1}")

    def expect(self, wanted: str) -> None:
        kind, text, position = self.take()
        if text != wanted:
            where = "the end" if kind == "end" else f"'{text}' at character {position + 1}"
            raise _Untranslatable(f"expected '{wanted}' but found {where}")


@dataclass
class ExpressionScope:
    """What names mean while translating one expression."""

    names: dict[str, str]  # XLSForm name → Fangan expression (a field id or a context name)
    types: dict[str, str]  # XLSForm name → Fangan type (single_choice, repeat, …)
    mode: str = "field"  # field | constraint | choice_filter | default
    own: str | None = None  # the XLSForm name of the row's field, for '.'
    choice_columns: frozenset[str] = frozenset()  # extra columns of the choices sheet
    unusable: dict[str, str] = field(default_factory=dict)  # XLSForm name → why it cannot be referenced


class _Emitter:
    """Turns a parsed XPath tree into Fangan source text."""

    def __init__(self, scope: ExpressionScope):
        self.scope = scope

    def text(self, node: Node, least: int = 0) -> str:
        """Emit `node`, in parentheses when it binds looser than `least`."""
        source, level = self.emit(node)
        return f"({source})" if level < least else source

    def type_of(self, node: Node) -> str | None:
        if node[0] == "field":
            return self.scope.types.get(node[1])
        if node[0] == "dot" and self.scope.own is not None:
            return self.scope.types.get(self.scope.own)
        if node[0] == "bare" and node[1] == "name" and self.scope.mode == "choice_filter":
            return _declaring("select_one")  # a candidate's value: text, like a single choice
        return None

    def emit(self, node: Node) -> tuple[str, int]:
        kind = node[0]
        if kind == "num":
            return _number_literal(node[1]), _ATOM
        if kind == "str":
            return repr(node[1]), _ATOM
        if kind == "field":
            return self.reference(node[1]), _ATOM
        if kind == "dot":
            return self.current(), _ATOM
        if kind == "bare":
            return self.bare(node[1]), _ATOM
        if kind == "neg":
            return "-" + self.text(node[1], _NEG), _NEG
        if kind == "binary":
            return self.binary(node[1], node[2], node[3])
        return self.call(node[1], node[2])

    def reference(self, name: str) -> str:
        if name in self.scope.names:
            return self.scope.names[name]
        if name in self.scope.unusable:
            raise _Untranslatable(self.scope.unusable[name])
        hint = difflib.get_close_matches(name, list(self.scope.names), n=1)
        raise _Untranslatable(f"unknown field ${{{name}}}" + (f" (did you mean ${{{hint[0]}}}?)" if hint else ""))

    def current(self) -> str:
        if self.scope.mode == "constraint":
            return "value"
        if self.scope.mode == "field" and self.scope.own in self.scope.names:
            return self.scope.names[self.scope.own]
        raise _Untranslatable("'.' (the current value) cannot be used here")

    def bare(self, name: str) -> str:
        if self.scope.mode != "choice_filter":
            raise _Untranslatable(f"bare name '{name}' is not supported; refer to fields as ${{{name}}}")
        if name == "name":
            return "choice.value"
        if name == "label" or name.startswith("label::"):
            raise _Untranslatable("a choice_filter over choice labels is not supported; filter on name")
        if name in self.scope.choice_columns:
            raise _Untranslatable(f"a choice_filter over the extra choices column '{name}' is not supported yet: "
                                  "Fangan choices have only a value and a label")
        raise _Untranslatable(f"'{name}' is not a column of the choices sheet")

    def binary(self, operator: str, left: Node, right: Node) -> tuple[str, int]:
        if operator in ("or", "and"):
            level = _OR if operator == "or" else _AND
            return f"{self.text(left, level)} {operator} {self.text(right, level)}", level
        if operator in ("=", "!="):
            return self.equality(operator, left, right), _CMP
        if operator in ("<", "<=", ">", ">="):
            return f"{self.text(left, _ADD)} {operator} {self.text(right, _ADD)}", _CMP
        if operator in ("+", "-"):
            return f"{self.text(left, _ADD)} {operator} {self.text(right, _MUL)}", _ADD
        if operator in ("*", "div", "mod"):
            symbol = {"*": "*", "div": "/", "mod": "%"}[operator]
            return f"{self.text(left, _MUL)} {symbol} {self.text(right, _NEG)}", _MUL
        raise _Untranslatable(f"the operator '{operator}' is not supported")

    def equality(self, operator: str, left: Node, right: Node) -> str:
        # Empty answers are '' in XLSForm but None in Fangan.
        for side, other in ((left, right), (right, left)):
            if side == ("str", ""):
                return f"{self.text(other, _ADD)} {'is' if operator == '=' else 'is not'} None"
        # Choice values are text: compare them with text even when the sheet wrote a number.
        if _is_choice(self.type_of(left)) and right[0] == "num":
            right = ("str", _number_literal(right[1]))
        elif _is_choice(self.type_of(right)) and left[0] == "num":
            left = ("str", _number_literal(left[1]))
        symbol = "==" if operator == "=" else "!="
        return f"{self.text(left, _ADD)} {symbol} {self.text(right, _ADD)}"

    def call(self, name: str, args: list[Node]) -> tuple[str, int]:
        def arity(least: int, most: int) -> None:
            if not least <= len(args) <= most:
                count = str(least) if least == most else f"{least} to {most}"
                raise _Untranslatable(f"{name}() takes {count} argument{'s' if most != 1 else ''}")

        if name in _CONSTANT_FUNCTIONS:
            arity(0, 0)
            return _CONSTANT_FUNCTIONS[name], _ATOM
        if name == "not":
            arity(1, 1)
            return "not " + self.text(args[0], _NOT), _NOT
        if name == "if":
            arity(3, 3)
            condition, then, otherwise = args
            return f"({self.text(then, _OR)} if {self.text(condition, _OR)} else {self.text(otherwise, _IF)})", _ATOM
        if name == "selected":
            arity(2, 2)
            chosen, wanted = args
            chosen_text = self.text(chosen, _ADD)  # unknown fields are reported before wrong types
            if not _is_choice(self.type_of(chosen)):
                raise _Untranslatable("selected() needs a select_one or select_multiple field first")
            if wanted[0] == "num":
                wanted = ("str", _number_literal(wanted[1]))
            if _is_single_choice(self.type_of(chosen)):
                return f"{chosen_text} == {self.text(wanted, _ADD)}", _CMP
            return f"{self.text(wanted, _ADD)} in {chosen_text}", _CMP
        if name == "count-selected":
            arity(1, 1)
            if _is_single_choice(self.type_of(args[0])):
                raise _Untranslatable("count-selected() needs a select_multiple field")
            return f"len({self.text(args[0])})", _ATOM
        if name == "count":
            arity(1, 1)
            kind = _kind(self.type_of(args[0]))
            if args[0][0] != "field" or kind is None or not kind.holds_rows:
                raise _Untranslatable("count() is only supported on a repeat group, as count(${repeat})")
            return f"len({self.text(args[0])})", _ATOM
        if name == "concat":
            arity(1, 50)
            parts = [self.text(a) if a[0] == "str" else f"str({self.text(a)})" for a in args]
            return " + ".join(parts), (_ADD if len(parts) > 1 else _ATOM)
        if name in ("min", "max") and len(args) == 1:
            raise _Untranslatable(f"{name}() over a repeat group is not supported")
        if name in _SIMPLE_FUNCTIONS:
            target, least, most = _SIMPLE_FUNCTIONS[name]
            arity(least, most)
            return f"{target}({', '.join(self.text(a) for a in args)})", _ATOM
        raise _Untranslatable(f"the function {name}() has no Fangan equivalent")


def _number_literal(text: str) -> str:
    """A numeric literal Python accepts ('007' is a syntax error there, '.5' and '5.' are unusual)."""
    if "." not in text:
        return str(int(text))
    whole, _, fraction = text.partition(".")
    return f"{int(whole or '0')}.{fraction or '0'}"


def translate_expression(source: str, scope: ExpressionScope) -> tuple[str | None, list[str]]:
    """Translate one XLSForm expression: (Fangan source, []) or (None, problems)."""
    try:
        tree = _Parser(source).parse()
        return _Emitter(scope).text(tree), []
    except _Untranslatable as problem:
        return None, [str(problem)]
    except RecursionError:
        return None, ["the expression is nested too deeply"]


def _number_kind(node: ast.AST, types: dict[str, str]) -> str | None:
    """'integer' or 'decimal' when a translated calculation surely gives a number, else None."""
    if isinstance(node, ast.Constant) and not isinstance(node.value, bool):
        return {int: "integer", float: "decimal"}.get(type(node.value))
    if isinstance(node, ast.Name):
        kind = types.get(node.id)
        return kind if _kind(kind) is not None and _kind(kind).number else None
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        return _number_kind(node.operand, types)
    if isinstance(node, ast.BinOp):
        left, right = _number_kind(node.left, types), _number_kind(node.right, types)
        if isinstance(node.op, ast.Div):
            return "decimal"
        if left == right == "integer":
            return "integer"
        # '+' of two unknowns may join texts; every other operator needs numbers.
        return "decimal" if (left or right or not isinstance(node.op, ast.Add)) else None
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        name = node.func.id
        if name in ("len", "int", "ceil", "floor", "days_between") or (name == "round" and len(node.args) == 1):
            return "integer"
        if name in ("round", "float", "sum"):
            return "decimal"
        if name in ("abs", "min", "max", "coalesce"):
            kinds = [_number_kind(arg, types) for arg in node.args]
            if kinds and all(k == "integer" for k in kinds):
                return "integer"
            return "decimal" if any(kinds) and name != "coalesce" else None
    if isinstance(node, ast.IfExp):
        kinds = {_number_kind(branch, types) for branch in (node.body, node.orelse)}
        return kinds.pop() if len(kinds) == 1 else ("decimal" if None not in kinds else None)
    return None


# --------------------------------------------------------------------------------------------------------
# Reading the workbook


@dataclass
class _Row:
    number: int
    cells: dict[str, Any]  # column key → non-empty cell value


@dataclass
class _Sheet:
    title: str  # as named in the workbook
    header_row: int = 1
    headers: dict[str, str] = field(default_factory=dict)  # column key → header as written
    rows: list[_Row] = field(default_factory=list)
    languages: set[str] = field(default_factory=set)

    def header(self, key: str) -> str:
        return self.headers.get(key, key)


class _Issues:
    def __init__(self) -> None:
        self.items: list[XlsformIssue] = []

    def add(self, sheet: str, row: int | None, column: str | None, message: str) -> None:
        self.items.append(XlsformIssue(sheet, row, column, message))

    def sorted(self) -> list[XlsformIssue]:
        order = {name: i for i, name in enumerate(SHEETS)}
        return sorted(self.items, key=lambda i: (order.get(i.sheet, -1), i.row or 0))


def _column_key(header: str, columns: dict[str, str]) -> tuple[str, str | None]:
    """(base column, language as written or None) for a header like 'label::中文 (zh)' or 'relevance'."""
    text = " ".join(header.split())
    if text.lower() in columns:
        return columns[text.lower()], None
    base, language = text, None
    if "::" in text:
        base, language = text.split("::", 1)
    elif ":" in text and text.split(":", 1)[0].strip().lower() in _TRANSLATED:
        base, language = text.split(":", 1)  # the older single-colon form pyxform still reads
    base = base.strip().lower()
    return columns.get(base, base), (language.strip() if language else None)


def _read_sheet(worksheet: Any, kind: str, columns: dict[str, str], issues: _Issues) -> _Sheet:
    sheet = _Sheet(worksheet.title)
    keys: dict[int, str] = {}
    found_header = False
    for number, values in enumerate(worksheet.iter_rows(values_only=True), start=1):
        cells = {i: v for i, v in enumerate(values) if _cell_text(v)}
        if not cells:
            continue
        if not found_header:
            found_header, sheet.header_row = True, number
            for i, raw in cells.items():
                header = _cell_text(raw)
                base, language = _column_key(header, columns)
                key = base
                if language is not None:
                    if base not in _TRANSLATED:
                        continue  # translations of media and messages Fangan has no place for
                    code = _language_code(language)
                    if code is None:
                        issues.add(kind, number, header, f"language '{language}' is not supported: "
                                   "Fangan texts are in Chinese (zh) and English (en)")
                        continue
                    key = f"{base}::{code}"
                    sheet.languages.add(code)
                if key in sheet.headers:
                    issues.add(kind, number, header, f"the column repeats '{sheet.headers[key]}'")
                    continue
                keys[i] = key
                sheet.headers[key] = header
            continue
        sheet.rows.append(_Row(number, {keys[i]: v for i, v in cells.items() if i in keys}))
    return sheet


def _open(data: bytes, filename: str, issues: _Issues) -> dict[str, _Sheet] | None:
    try:
        with warnings.catch_warnings():
            # openpyxl warns about Excel features it drops (data validation, styles); none matter here.
            warnings.simplefilter("ignore")
            book = openpyxl.load_workbook(io.BytesIO(data), read_only=False, data_only=True)
    except Exception as error:  # noqa: BLE001 - any failure to read is the same problem to the uploader
        hint = " (save .xls files as .xlsx)" if filename.lower().endswith(".xls") else ""
        issues.add(filename, None, None, f"cannot read the file as an Excel .xlsx workbook{hint}: "
                   f"{type(error).__name__}")
        return None
    columns = {"survey": _SURVEY_COLUMNS, "choices": _CHOICES_COLUMNS, "settings": _SETTINGS_COLUMNS}
    sheets: dict[str, _Sheet] = {}
    for worksheet in book.worksheets:
        kind = worksheet.title.strip().lower()
        if kind in columns and kind not in sheets:
            sheets[kind] = _read_sheet(worksheet, kind, columns[kind], issues)
    book.close()
    return sheets


# --------------------------------------------------------------------------------------------------------
# Building the form


@dataclass
class _Entry:
    """One survey row, classified."""

    row: _Row
    category: str  # field | begin_group | end_group | begin_repeat | end_repeat | metadata | skip
    type: str = ""  # Fangan type for fields (or calculate / acknowledge), as written for metadata
    xlsform_type: str = ""  # the row's own type, lower-cased
    list_name: str | None = None
    name: str = ""
    id: str | None = None


@dataclass
class _Choice:
    row: int
    value: str
    label: str | dict


class _Builder:
    """Turns the read sheets into a form definition, collecting issues."""

    def __init__(self, sheets: dict[str, _Sheet], issues: _Issues):
        self.sheets = sheets
        self.issues = issues
        self.survey = sheets["survey"]
        self.choices_sheet = sheets.get("choices")
        self.languages = set().union(*(s.languages for s in sheets.values()))
        self.default_language: str | None = None
        self.lists: dict[str, list[_Choice]] = {}
        self.names: dict[str, str] = {}  # XLSForm name → Fangan expression
        self.types: dict[str, str] = {}  # XLSForm name → Fangan type
        self.id_types: dict[str, str] = {}  # Fangan id → Fangan type (for calculations)
        self.unusable: dict[str, str] = {}
        self.ids: set[str] = set()

    # -- texts ---------------------------------------------------------------
    def text(self, sheet: _Sheet, row: _Row, base: str) -> str | dict | None:
        """A plain string, or {zh, en} when the sheet has language columns for `base`."""
        plain = _cell_text(row.cells.get(base))
        texts = {code: _cell_text(row.cells[f"{base}::{code}"]) for code in ("zh", "en")
                 if _cell_text(row.cells.get(f"{base}::{code}"))}
        translated = any(f"{base}::{code}" in sheet.headers for code in ("zh", "en"))
        if plain and translated:
            if self.default_language in ("zh", "en"):
                texts.setdefault(self.default_language, plain)
            elif texts:
                for code in self.languages:  # no default language: the plain text stands in for missing ones
                    texts.setdefault(code, plain)
        result: str | dict | None = texts or plain or None
        for key, value in (texts.items() if texts else [(base, plain)]):
            if len(value) > MAX_TEXT:
                column = sheet.header(key if key == base else f"{base}::{key}")
                self.issues.add(sheet.title.lower(), row.number, column, f"text longer than {MAX_TEXT} characters")
        return result

    # -- settings and choices ----------------------------------------------
    def settings(self) -> dict[str, str]:
        sheet = self.sheets.get("settings")
        if sheet is None or not sheet.rows:
            return {}
        values = {key: _cell_text(value) for key, value in sheet.rows[0].cells.items()}
        if values.get("default_language"):
            self.default_language = _language_code(values["default_language"])
        return values

    def read_choices(self) -> None:
        sheet = self.choices_sheet
        if sheet is None:
            return
        for row in sheet.rows:
            list_name, value = _cell_text(row.cells.get("list_name")), _cell_text(row.cells.get("name"))
            if not list_name:
                self.issues.add("choices", row.number, sheet.header("list_name"), "missing list_name")
                continue
            if not value:
                self.issues.add("choices", row.number, sheet.header("name"), "missing name")
                continue
            items = self.lists.setdefault(list_name, [])
            twin = next((c for c in items if c.value == value), None)
            if twin is not None:
                self.issues.add("choices", row.number, sheet.header("name"),
                                f"duplicate name '{value}' in list '{list_name}' (also on row {twin.row})")
                continue
            # pyxform needs a label; Fangan does too, and the value is the honest stand-in.
            items.append(_Choice(row.number, value, self.text(sheet, row, "label") or value))

    def choice_columns(self) -> frozenset[str]:
        if self.choices_sheet is None:
            return frozenset()
        plain = {"list_name", "name", "label", "image", "big-image", "audio", "video", "media"}
        return frozenset(k for k in self.choices_sheet.headers if k not in plain and "::" not in k)

    # -- survey rows -------------------------------------------------------
    def classify(self, row: _Row) -> _Entry:
        raw = " ".join(_cell_text(row.cells.get("type")).split())
        name = _cell_text(row.cells.get("name"))
        entry = _Entry(row, "skip", name=name)
        column = self.survey.header("type")
        if not raw:
            self.issues.add("survey", row.number, column, "missing type")
            return entry
        lowered = raw.lower()
        words = lowered.replace("_", " ").split()
        if len(words) == 2 and words[0] in ("begin", "end") and words[1] in ("group", "repeat"):
            entry.category = f"{words[0]}_{words[1]}"
            return entry
        select = _SELECT_RE.match(raw)
        if select:
            if select.group("other"):
                self.issues.add("survey", row.number, column, f"'{select.group('other')}' is not supported; "
                                "add an 'other' choice and a text field shown when it is chosen")
                return entry
            entry.category, entry.list_name = "field", select.group("list")
            entry.type = _select_type(select.group("command").lower())
            return entry
        if lowered in _SELECTS:
            self.issues.add("survey", row.number, column, f"type '{raw}' needs a choice list name after it")
            return entry
        types = _types()
        if lowered in types:
            entry.category, entry.type, entry.xlsform_type = "field", types[lowered], lowered
            return entry
        if lowered in _METADATA:
            entry.category, entry.type = "metadata", lowered
            return entry
        known = [*types, "select_one", "select_multiple", "begin group", "begin repeat"]
        hint = difflib.get_close_matches(lowered, known, n=1, cutoff=0.75)
        supported = f"; did you mean '{hint[0]}'?" if hint else ""
        self.issues.add("survey", row.number, column, f"type '{raw}' is not supported{supported}")
        return entry

    def register(self, entries: list[_Entry]) -> None:
        """Give every named row its id (or meaning), reporting missing, unusable and duplicate names."""
        seen: dict[str, int] = {}
        owners: dict[str, tuple[str, int]] = {}
        column = self.survey.header("name")
        for entry in entries:
            if entry.category in ("skip", "end_group", "end_repeat"):
                continue
            number = entry.row.number
            if not entry.name:
                if entry.category not in ("metadata", "begin_group", "begin_repeat"):
                    self.issues.add("survey", number, column, "missing name")
                continue
            if entry.name in seen:
                self.issues.add("survey", number, column,
                                f"duplicate name '{entry.name}' (also on row {seen[entry.name]})")
                continue
            seen[entry.name] = number
            if entry.category == "metadata":
                meaning = _METADATA_MEANING.get(entry.type)
                if meaning:
                    self.names[entry.name] = meaning
                else:
                    self.unusable[entry.name] = (f"${{{entry.name}}} is {entry.type} metadata, "
                                                 "which Fangan does not keep")
                continue
            ident = sanitize_id(entry.name)
            if ident is None:
                self.issues.add("survey", number, column, f"name '{entry.name}' has no letters or digits usable in "
                                "an id (a-z, 0-9, _)")
                continue
            if ident in _RESERVED or keyword.iskeyword(ident):
                ident += "_"  # references are rewritten, so renaming keeps every expression right
            if ident in owners:
                other, other_row = owners[ident]
                self.issues.add("survey", number, column, f"name '{entry.name}' becomes id '{ident}', which "
                                f"'{other}' on row {other_row} already has")
                continue
            owners[ident] = (entry.name, number)
            entry.id = ident
            self.ids.add(ident)
            self.names[entry.name] = ident
            if entry.category in ("begin_group", "begin_repeat"):
                kind = _container_type(entry.category == "begin_repeat")
            else:
                kind = _declaring("select_one") if entry.type == "acknowledge" else entry.type
            self.types[entry.name] = kind
            self.id_types[ident] = kind
        for entry in entries:
            # Unnamed groups get an id from their row, after every named field has claimed its own.
            if entry.category in ("begin_group", "begin_repeat") and not entry.name:
                entry.id = self.unique(f"{entry.category.removeprefix('begin_')}_{entry.row.number}")

    def unique(self, ident: str) -> str:
        while ident in self.ids:
            ident += "_"
        self.ids.add(ident)
        return ident

    # -- expressions -------------------------------------------------------
    def expression(self, entry: _Entry, key: str, mode: str = "field") -> str | None:
        source = _cell_text(entry.row.cells.get(key))
        if not source:
            return None
        scope = ExpressionScope(self.names, self.types, mode, entry.name or None,
                                self.choice_columns() if mode == "choice_filter" else frozenset(), self.unusable)
        translated, problems = translate_expression(source, scope)
        column = self.survey.header(key)
        for problem in problems:
            self.issues.add("survey", entry.row.number, column, f"cannot translate '{source}': {problem}")
        if translated is None:
            return None
        allowed = set(FORM_CONTEXT_NAMES)
        if mode != "default":  # defaults are computed before anything is filled in: context names only
            allowed |= self.ids
        allowed |= {"constraint": {"value"}, "choice_filter": {"choice.*"}}.get(mode, set())
        problems = check_expression(translated, allowed)
        for problem in problems:
            if mode == "default" and problem.startswith("unknown name"):
                problem += " (a default may only use today, now, user.*, period.* and scheme.*)"
            self.issues.add("survey", entry.row.number, column, f"'{source}' becomes '{translated}': {problem}")
        return None if problems else translated

    # -- fields ------------------------------------------------------------
    def build(self, entries: list[_Entry]) -> list[dict]:
        top: list[dict] = []
        stack: list[tuple[_Entry, dict]] = []
        rows_inside: dict[int, int] = {}  # begin row → rows meant as fields in it (reported ones too)
        for entry in entries:
            target = stack[-1][1]["fields"] if stack else top
            if stack and entry.category in ("field", "skip", "begin_group", "begin_repeat"):
                rows_inside[stack[-1][0].row.number] += 1
            if entry.category in ("begin_group", "begin_repeat"):
                container = self.container(entry)
                stack.append((entry, container))
                rows_inside[entry.row.number] = 0
                target.append(container)
            elif entry.category in ("end_group", "end_repeat"):
                self.close(entry, stack, rows_inside)
            elif entry.category == "field" and entry.id:
                built = self.field(entry)
                if built is not None:
                    target.append(built)
        for opened, _ in stack:
            kind = opened.category.removeprefix("begin_")
            self.issues.add("survey", opened.row.number, self.survey.header("type"),
                            f"begin {kind} '{opened.name or opened.id}' has no matching end {kind}")
        return top

    def close(self, entry: _Entry, stack: list[tuple[_Entry, dict]], rows_inside: dict[int, int]) -> None:
        kind = entry.category.removeprefix("end_")
        column = self.survey.header("type")
        if not stack:
            self.issues.add("survey", entry.row.number, column, f"end {kind} without a begin {kind}")
            return
        opened, container = stack.pop()
        opened_kind = opened.category.removeprefix("begin_")
        if opened_kind != kind:
            self.issues.add("survey", entry.row.number, column, f"end {kind} closes the {opened_kind} "
                            f"'{opened.name or opened.id}' begun on row {opened.row.number}")
        if not rows_inside[opened.row.number]:
            self.issues.add("survey", opened.row.number, column,
                            f"{opened_kind} '{opened.name or opened.id}' has no fields to import")

    def container(self, entry: _Entry) -> dict:
        repeat = entry.category == "begin_repeat"
        out: dict[str, Any] = {"id": entry.id, "type": _container_type(repeat)}
        self.common(entry, out)
        if repeat and _cell_text(entry.row.cells.get("repeat_count")):
            count = entry.row.cells["repeat_count"]
            text = _cell_text(count)
            if re.fullmatch(r"\d+", text) and 1 <= int(text) <= MAX_REPEAT:
                out["max_repeat"] = int(text)
            else:
                self.issues.add("survey", entry.row.number, self.survey.header("repeat_count"),
                                f"repeat_count '{text}' is not supported: it must be a whole number from 1 to "
                                f"{MAX_REPEAT}")
        out["fields"] = []
        return out

    def common(self, entry: _Entry, out: dict) -> None:
        """label, hint and visible_if: what every row may carry."""
        for key in ("label", "hint"):
            text = self.text(self.survey, entry.row, key)
            if text:
                out[key] = text
        visible = self.expression(entry, "relevant")
        if visible:
            out["visible_if"] = visible
        if _cell_text(entry.row.cells.get("trigger")):
            self.issues.add("survey", entry.row.number, self.survey.header("trigger"),
                            "the trigger column is not supported (Fangan recalculates on every change)")

    def field(self, entry: _Entry) -> dict | None:
        kind, number = entry.type, entry.row.number
        appearance = _cell_text(entry.row.cells.get("appearance")).lower()
        if "search(" in appearance:
            self.issues.add("survey", number, self.survey.header("appearance"),
                            "appearance search() reads choices from a CSV file, which is not supported")
        kind = _with_appearance(entry.xlsform_type, appearance) or kind
        out: dict[str, Any] = {"id": entry.id, "type": kind}
        self.common(entry, out)
        if _kind(kind) is not None and not _kind(kind).has_value:
            return out
        self.required(entry, out)
        readonly = _cell_text(entry.row.cells.get("read_only")).lower()
        if readonly in _YES:
            out["readonly"] = True
        elif readonly and readonly not in _NO:
            self.issues.add("survey", number, self.survey.header("read_only"),
                            f"read_only '{readonly}' is not supported: use yes or no")
        calculation = self.expression(entry, "calculation")
        if kind == "calculate":
            if not _cell_text(entry.row.cells.get("calculation")):
                self.issues.add("survey", number, self.survey.header("type"), "a calculate row needs a calculation")
                return None
            out["type"] = self.calculated_type(calculation)
            out["readonly"] = True
            self.id_types[entry.id or ""] = out["type"]
        if calculation:
            out["calculate"] = calculation
        self.default(entry, out)
        self.constraint(entry, out)
        if kind == "acknowledge":
            out["type"] = _declaring("select_one")
            out["choices"] = [{"value": "OK", "label": {"zh": "确认", "en": "OK"}}]
        elif _kind(kind) is not None:
            if _kind(kind).needs_choices:
                self.attach_choices(entry, out)
            _kind(kind).from_xlsform(out)
        return _ordered(out)

    def calculated_type(self, calculation: str | None) -> str:
        if calculation is None:
            return "text"
        try:
            tree = ast.parse(calculation, mode="eval")
        except SyntaxError:
            return "text"
        return _number_kind(tree.body, self.id_types) or "text"

    def required(self, entry: _Entry, out: dict) -> None:
        raw = entry.row.cells.get("required")
        text = _cell_text(raw)
        if not text or text.lower() in _NO:
            return
        if raw is True or text.lower() in _YES:
            out["required"] = True
            return
        condition = self.expression(entry, "required")
        if condition:
            out["required_if"] = condition

    def constraint(self, entry: _Entry, out: dict) -> None:
        check = self.expression(entry, "constraint", "constraint")
        message = self.text(self.survey, entry.row, "constraint_message")
        if check:
            out["constraints"] = [{"check": check, "message": message or dict(_DEFAULT_MESSAGE)}]

    def default(self, entry: _Entry, out: dict) -> None:
        raw = entry.row.cells.get("default")
        text = _cell_text(raw)
        if not text:
            return
        number, column = entry.row.number, self.survey.header("default")
        if isinstance(raw, str) and ("${" in raw or re.search(r"[A-Za-z][\w-]*\(", raw)):
            computed = self.expression(entry, "default", "default")
            if computed:
                out["default_from"] = computed
            return
        kind = _kind(out["type"])
        value, problem = (kind.xlsform_default(text, raw) if kind is not None
                          else (None, f"a default is not supported on type '{out['type']}'"))
        if problem:
            self.issues.add("survey", number, column, problem)
            return
        if kind is not None and kind.needs_choices:
            known = {c.value for c in self.lists.get(entry.list_name or "", [])}
            missing = [v for v in ([value] if isinstance(value, str) else value) if known and v not in known]
            if missing:
                self.issues.add("survey", number, column, f"default '{missing[0]}' is not a choice of list "
                                f"'{entry.list_name}'")
                return
        out["default"] = value

    def attach_choices(self, entry: _Entry, out: dict) -> None:
        column = self.survey.header("type")
        if self.choices_sheet is None:
            self.issues.add("survey", entry.row.number, column,
                            f"choice list '{entry.list_name}' cannot be found: there is no choices sheet")
            return
        items = self.lists.get(entry.list_name or "")
        if not items:
            hint = difflib.get_close_matches(entry.list_name or "", list(self.lists), n=1)
            self.issues.add("survey", entry.row.number, column, f"choice list '{entry.list_name}' is not in the "
                            "choices sheet" + (f" (did you mean '{hint[0]}'?)" if hint else ""))
            return
        # Fresh dicts per field: a shared object would come out of the YAML dump as an anchor and alias.
        out["choices"] = [{"value": c.value, "label": _copy_text(c.label)} for c in items]
        condition = self.expression(entry, "choice_filter", "choice_filter")
        if condition:
            out["choice_filter"] = condition


_FIELD_ORDER = ("id", "type", "label", "hint", "required", "required_if", "visible_if", "readonly", "default",
                "default_from", "calculate", "constraints", "choices", "choice_filter", "max_files", "accept",
                "capture", "min_repeat", "max_repeat", "fields")


def _ordered(out: dict) -> dict:
    """Keys in the order people read a form definition."""
    return {key: out[key] for key in _FIELD_ORDER if key in out}


def _copy_text(text: str | dict) -> str | dict:
    return dict(text) if isinstance(text, dict) else text


def _walk(fields: list[dict]) -> Iterator[dict]:
    for item in fields:
        yield item
        yield from _walk(item.get("fields", []))


def import_xlsform(data: bytes, filename: str = "form.xlsx", *, form_id: str | None = None) -> dict:
    """Convert an XLSForm workbook into a Fangan form definition; raise XlsformError listing every problem."""
    issues = _Issues()
    sheets = _open(data, filename, issues)
    if sheets is None:
        raise XlsformError(issues.sorted())
    if "survey" not in sheets:
        issues.add("survey", None, None, "the workbook has no sheet named 'survey'")
        raise XlsformError(issues.sorted())
    builder = _Builder(sheets, issues)
    settings = builder.settings()
    builder.read_choices()
    entries = [builder.classify(row) for row in sheets["survey"].rows]
    builder.register(entries)
    fields = builder.build(entries)
    if not any(not _is_container(f["type"]) for f in _walk(fields)):
        issues.add("survey", None, None, "the survey sheet has no fields to import")

    stem = PurePath(filename).stem
    ident = sanitize_id(form_id) if form_id else None
    if form_id and ident is None:
        issues.add("settings", None, "form_id", f"form id '{form_id}' has no letters or digits usable in an id")
    ident = ident or sanitize_id(settings.get("form_id", "")) or sanitize_id(stem) or "imported_form"
    title = settings.get("form_title") or stem or ident
    if len(title) > MAX_TEXT:
        issues.add("settings", None, "form_title", f"text longer than {MAX_TEXT} characters")
    if issues.items:
        raise XlsformError(issues.sorted())
    return {"kind": "form", "id": ident, "name": title, "fields": fields}


def to_yaml(definition: dict) -> str:
    """Dump a definition as block-style YAML (ruamel round-trip, Chinese kept as written)."""
    yaml = YAML()
    yaml.default_flow_style = False
    yaml.allow_unicode = True
    yaml.width = 4096  # long labels and expressions stay on one line
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.representer.ignore_aliases = lambda *_: True  # repeated texts are written out, never as &anchors
    stream = io.StringIO()
    yaml.dump(definition, stream)
    return stream.getvalue()
