"""Import an XLSForm workbook (sheets ``survey``, ``choices``, ``settings``; ``.xlsx`` or ``.xls``) as a Fangan
form definition.

Pure module: no Flask, no SQLAlchemy. The workbook is read with openpyxl (``.xlsx``) or xlrd (``.xls``), told
apart by their content, so every problem names its sheet, Excel row and column; pyxform supplies the XLSForm
column, type and yes/no aliases. What cannot be converted is left out and listed by sheet and row
(`XlsformImport.dropped`), so the rest imports; rows that refer to a row left out are left out with it. With
``strict`` a workbook with anything left out is refused. Problems that leave nothing sensible to import (an
unreadable file, no survey sheet, groups that do not close) refuse the workbook: ``XlsformError(issues)``.
Every message is said in English or Chinese (`XlsformIssue.in_language`).

Settings: ``form_title`` → ``name`` (else the file name), ``form_id`` → ``id`` (lower-cased, other characters
become ``_``; the ``form_id`` argument wins; else the file name; else it is asked for), ``default_language``
says which language a plain ``label`` column is in beside ``label::…`` columns (else Chinese when it has Chinese
characters, English otherwise). Texts (label, hint, constraint_message, choice labels) become one string per
language (``{zh, en, fr…}``) when language columns are used, a plain string otherwise. A language is known by
its code in brackets (``English (en)``), its code, or its name in English or Chinese (``French``, ``藏语``).

Types:

* text (appearance ``multiline`` → textarea), integer, decimal, date, time, dateTime → datetime,
  geopoint → location, note (a note without a name gets ``note_<row>``), file (max_files 1), image → photo;
* select_one / select_multiple LIST → single_choice / multiple_choice with the list's choices (value = name;
  values are always text, so ``${x} = 1`` on a select becomes ``x == '1'``); ``or_other`` adds the choice
  ``other`` and a text field ``<name>_other`` shown when it is picked, as pyxform does;
* select_one_from_file / select_multiple_from_file FILE.csv → the same, with the choices read from the
  attached CSV (columns ``name`` and ``label``, or those the ``parameters`` column names as ``value=`` and
  ``label=``; UTF-8 or GB18030);
* calculate → a readonly field with ``calculate``: ``integer`` when the result is surely whole, ``decimal`` when
  it is otherwise numeric, else ``text``;
* acknowledge → single_choice with one choice ``OK`` (ODK stores ``OK``, so expressions keep working);
* begin/end group → section, begin/end repeat → repeat (``repeat_count``, a number or a formula, is kept);
* metadata (start, end, today, deviceid, username, audit…) is skipped and noted: Fangan records who sent a
  record and when; ``${x}`` naming a skipped ``today`` becomes ``today``, ``start``/``end`` become ``now`` and
  ``username`` becomes ``user.name``; other metadata cannot be referenced;
* rows with no type, name or label are comments and are skipped, as pyxform does;
* anything else (geotrace, geoshape, barcode, audio, video, range, rank, select_one_external…) is left out.

Columns: required (yes/true → ``required: true``, an expression → ``required_if``), relevant → visible_if,
constraint + constraint_message → constraints, calculation → calculate, trigger → ``calculate_on`` (the
calculation runs when a named field changes), default (a literal, Excel date and time cells included →
``default``; a formula such as ``today()`` → ``default_from``), read_only yes → readonly, choice_filter,
repeat_count. ``appearance`` is ignored except multiline and ``search()`` (left out).

Field ids come from ``name``: lower-cased, other characters → ``_``, a leading digit gets ``f_``; names that
are reserved in expressions (value, choice, today, now, user, period, scheme, Python keywords) get a ``_``
suffix. References are rewritten to the ids, so renaming is safe.

Expressions are parsed (not pattern-replaced) and re-emitted in the Fangan language: ``${x}`` → the id,
``.`` → ``value`` in a constraint (the field's own id elsewhere), ``=`` → ``==``, ``x = ''`` → ``x is None``,
and/or/not(), div → ``/``, mod → ``%``, ``selected(x, 'a')`` → ``'a' in x`` (``x == 'a'`` on a select_one),
count-selected / string-length → len, count(${repeat}) → len, if(c, a, b) → ``(a if c else b)``,
regex(x, 'p') → ``matches(x, 'p')``, today(), now(), number → float, int, round, coalesce, min/max (two or more
arguments), abs, ceiling → ceil, floor, string → str, boolean → bool, concat → ``str(a) + str(b)``,
true()/false(). In a choice_filter the bare column ``name`` is the candidate (``choice.value``) and any other
column of the choices sheet (the 街道 → 社区 idiom) is ``choice.<column>``: the choices keep those columns as
``data``. Everything else (paths, predicates, ``|``, substr, sum, indexed-repeat, jr:choice-name,
``${last-saved#x}``…) is left out with its row. Translations are then checked with ``check_expression``.
"""

from __future__ import annotations

import ast
import csv
import difflib
import functools
import io
import keyword
import re
import unicodedata
import warnings
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import PurePath
from typing import Any

import openpyxl
import xlrd
from babel import Locale
from pyxform import aliases, constants
from pyxform.question_type_dictionary import QUESTION_TYPE_DICT
from ruamel.yaml import YAML

from ..definitions.errors import N_, DefinitionError, Said, expression_problem_zh, say
from ..definitions.loader import parse_text
from ..definitions.references import FORM_CONTEXT_NAMES, ReferenceChecker
from ..definitions.schema import validate_schema
from ..expressions import check_expression
from .fields import FIELD_TYPES, FieldType

__all__ = ["ExpressionScope", "XlsformError", "XlsformImport", "XlsformIssue", "import_xlsform", "sanitize_id",
           "to_yaml", "translate_expression"]

MAX_TEXT = 4000  # common.json#/$defs/text maxLength
MAX_ID = 64  # common.json#/$defs/id maxLength
MAX_FILE_CHOICES = 5000  # choices read from one attached file: a longer list belongs in live choices
MAX_ROUNDS = 20  # passes that leave out rows referring to rows left out before
MAX_ROWS = 10_000  # rows with something in them, per sheet: a form is far smaller
MAX_COLUMNS = 256  # columns read per sheet (an .xls has no more)
MAX_UNZIPPED = 64 * 1024 * 1024  # bytes an .xlsx may unpack to: a small file must not fill the memory
MAX_QUOTED = 200  # characters of a cell quoted in a message
SHEETS = ("settings", "survey", "choices")


class _Said(Said):
    """Words that are already written (an expression checker's problem, a cell's text): English as they are,
    Chinese where the problem's kind is known."""

    def in_language(self, language: str) -> str:
        return expression_problem_zh(self.template) if language == "zh" else self.template


class _Checked(Said):
    """A definition check's error: its English (the template) and its Chinese (the context)."""

    def in_language(self, language: str) -> str:
        return (self.context or self.template) if language == "zh" else self.template


def _as_said(words: Said | str) -> Said:
    return words if isinstance(words, Said) else _Said(words)


@dataclass(frozen=True)
class XlsformIssue:
    """One problem in the workbook, at a sheet, an Excel row (1-based) and a column header."""

    sheet: str
    row: int | None
    column: str | None
    words: Said
    name: str | None = None  # the row's field name, when a survey row is left out whole

    @property
    def message(self) -> str:
        return self.words.in_language("en")

    def in_language(self, language: str) -> str:
        """E.g. "survey row 12, column type: type 'geotrace' is not supported" (or in Chinese)."""
        if self.row is not None and self.name and self.column:
            where = say(N_("%(sheet)s row %(row)s (%(name)s), column %(column)s"), sheet=self.sheet, row=self.row,
                        name=self.name, column=self.column)
        elif self.row is not None and self.name:
            where = say(N_("%(sheet)s row %(row)s (%(name)s)"), sheet=self.sheet, row=self.row, name=self.name)
        elif self.row is not None and self.column:
            where = say(N_("%(sheet)s row %(row)s, column %(column)s"), sheet=self.sheet, row=self.row,
                        column=self.column)
        elif self.row is not None:
            where = say(N_("%(sheet)s row %(row)s"), sheet=self.sheet, row=self.row)
        elif self.column:
            where = say(N_("%(sheet)s, column %(column)s"), sheet=self.sheet, column=self.column)
        else:
            where = _Said(self.sheet)
        place = where.in_language(language)
        return f"{place}{'：' if language == 'zh' else ': '}{self.words.in_language(language)}" if place else \
            self.words.in_language(language)

    def __str__(self) -> str:
        return self.in_language("en")


class XlsformError(ValueError):
    """The workbook cannot be imported; `issues` lists every problem found. `strict`: it could have been, without
    what `issues` lists, had strict mode not been asked for."""

    def __init__(self, issues: list[XlsformIssue], *, strict: bool = False):
        self.issues = list(issues)
        self.strict = strict
        super().__init__("\n".join(str(issue) for issue in self.issues))


@dataclass
class XlsformImport:
    """An imported form: the definition, what was left out of it (by sheet and row) and what was skipped on
    purpose (metadata Fangan records itself, comment rows)."""

    definition: dict
    dropped: list[XlsformIssue] = field(default_factory=list)
    notes: list[XlsformIssue] = field(default_factory=list)


# --------------------------------------------------------------------------------------------------------
# Names, types and texts

_CONTEXT_ROOTS = frozenset(name.removesuffix(".*") for name in FORM_CONTEXT_NAMES)
# A field id equal to one of these would shadow a name the expression language gives another meaning.
_RESERVED = _CONTEXT_ROOTS | {"value", "choice"}

_SELECT_ONE = constants.SELECT_ONE
_SELECT_MULTIPLE = constants.SELECT_ALL_THAT_APPLY
# pyxform's select aliases minus the from-file forms (they map to plain selects there, but read a file).
_SELECTS = {alias: kind for alias, kind in aliases.select.items()
            if alias not in aliases.select_from_file and kind in (_SELECT_ONE, _SELECT_MULTIPLE)}
_SELECT_RE = re.compile(r"^(?P<command>" + "|".join(re.escape(a) for a in sorted(_SELECTS, key=len, reverse=True))
                        + r")\s+(?P<list>\S+)(?:\s+(?P<other>.+))?$", re.IGNORECASE)
_FROM_FILE_RE = re.compile(r"^(?P<command>" + "|".join(re.escape(a) for a in sorted(aliases.select_from_file,
                                                                                      key=len, reverse=True))
                           + r")\s+(?P<file>\S+)$", re.IGNORECASE)
_OR_OTHER = "or_other"
_OTHER_CHOICE = {"value": "other", "label": {"zh": "其他", "en": "Other"}}
_OTHER_LABEL = {"zh": "请注明其他", "en": "Please specify"}

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


def _select_type(kind: str) -> str:
    """The field type a select (pyxform's 'select one' or 'select all that apply') becomes."""
    return _declaring("select_one" if kind == _SELECT_ONE else "select_multiple")


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
# Columns of a choices sheet that are not data a choice_filter reads.
_CHOICE_OWN_COLUMNS = {"list_name", "name", "label", "image", "big-image", "audio", "video", "media"}

_LANGUAGE_NAMES = {"chinese": "zh", "中文": "zh", "汉语": "zh", "简体中文": "zh", "chinese (simplified)": "zh",
                   "english": "en", "英文": "en", "英语": "en"}
_LANGUAGE_CODE = re.compile(r"[a-z]{2,3}(?:-[a-z0-9]{2,8})*")

_DEFAULT_MESSAGE = {"zh": "填写的内容不符合要求", "en": "This value is not allowed"}
_CJK = re.compile(r"[\u3400-\u9fff]")


@functools.cache
def _language_names() -> dict[str, str]:
    """Language names in English and Chinese (lower-cased) → their code, as the CLDR names them."""
    names: dict[str, str] = {}
    for locale in ("en", "zh"):
        for code, name in Locale(locale).languages.items():
            if re.fullmatch(r"[a-z]{2,3}", code):
                names.setdefault(name.lower(), code)
    return {**names, **_LANGUAGE_NAMES}


def _normal_code(code: str) -> str | None:
    """'zh-CN' → zh, 'en_US' → en, 'pt-br' → pt-BR, 'xx' (not a language) → None."""
    parts = code.replace("_", "-").split("-")
    language = parts[0].lower()
    if language not in Locale("en").languages:
        return None
    if language in ("zh", "en"):
        return language  # the two languages of the pages, whatever their region
    rest = [p.upper() if len(p) == 2 else p.title() if len(p) == 4 else p for p in parts[1:]]
    return "-".join([language, *rest])


def _language_code(text: str) -> str | None:
    """'中文 (zh)', 'English (en)', 'zh-CN', 'English', 'French', '法语', 'fr' → a language code; else None."""
    cleaned = " ".join(text.split()).lower()
    if cleaned in _language_names():
        return _language_names()[cleaned]
    match = re.search(r"\(\s*([a-z]{2,3}(?:[-_][a-z0-9]+)*)\s*\)\s*$", cleaned)
    if match:
        return _normal_code(match.group(1))
    if _LANGUAGE_CODE.fullmatch(cleaned.replace("_", "-")):
        return _normal_code(cleaned)
    return None


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
    """A cell as text: numbers without a spurious '.0', dates and times in ISO form, strings stripped (and the
    no-break spaces Excel keeps made plain)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, time):
        return value.isoformat(timespec="seconds" if value.second else "minutes")
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds" if value.second else "minutes")
    if isinstance(value, date):
        return value.isoformat()
    return str(value).replace("\u00a0", " ").strip()


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
                     "string": ("str", 1, 1), "boolean": ("bool", 1, 1), "string-length": ("len", 1, 1),
                     "regex": ("matches", 2, 2)}
_CONSTANT_FUNCTIONS = {"today": "today", "now": "now", "true": "True", "false": "False"}
_LAST_SAVED = "last-saved#"


class _Untranslatable(Exception):
    """An expression (part) that has no Fangan equivalent."""

    def __init__(self, words: Said):
        super().__init__(words.in_language("en"))
        self.words = words


def _no(template: str, **params: Any) -> _Untranslatable:
    return _Untranslatable(say(template, **params))


Node = tuple  # ("num", text) ("str", text) ("field", name) ("dot",) ("bare", name) ("neg", x)
#               ("binary", op, left, right) ("call", name, args)


def _tokenize(source: str) -> list[tuple[str, str, int]]:
    wide = sorted({ch for ch in source if ch in _FULL_WIDTH})
    if wide:
        raise _no(N_("full-width characters %(characters)s: type them half-width, as %(plain)s"),
                  characters=" ".join(wide), plain=" ".join(dict.fromkeys(_FULL_WIDTH[ch] for ch in wide)))
    tokens, position = [], 0
    while position < len(source):
        match = _TOKEN_RE.match(source, position)
        if not match:
            raise _no(N_("unexpected '%(text)s' at character %(position)s"), text=source[position],
                      position=position + 1)
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
            raise _no(N_("unexpected '%(text)s' at character %(position)s"), text=text, position=position + 1)
        return node

    def power(self, token: tuple[str, str, int]) -> int:
        kind, text, _ = token
        if kind == "op" and text in _INFIX:
            return _INFIX[text]
        if kind == "name" and text in ("and", "or", "div", "mod"):
            return _INFIX[text]
        if kind == "op" and text == "/":
            raise _no(N_("'/' is a path in XLSForm, not division (divide with 'div'); paths are not supported"))
        if kind == "op" and text == "[":
            raise _no(N_("predicates like x[1] are not supported"))
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
            raise _no(N_("XPath paths like '/data/x' or '..' are not supported; use ${name}"))
        if kind == "end":
            raise _no(N_("the expression ends too early"))
        raise _no(N_("unexpected '%(text)s' at character %(position)s"), text=text, position=position + 1)

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
                raise _no(N_("expected ',' or ')' at character %(position)s"), position=position + 1)

    def expect(self, wanted: str) -> None:
        kind, text, position = self.take()
        if text != wanted:
            if kind == "end":
                raise _no(N_("expected '%(wanted)s' but the expression ends"), wanted=wanted)
            raise _no(N_("expected '%(wanted)s' but found '%(text)s' at character %(position)s"), wanted=wanted,
                      text=text, position=position + 1)


@dataclass
class ExpressionScope:
    """What names mean while translating one expression."""

    names: dict[str, str]  # XLSForm name → Fangan expression (a field id or a context name)
    types: dict[str, str]  # XLSForm name → Fangan type (single_choice, repeat, …)
    mode: str = "field"  # field | constraint | choice_filter | default
    own: str | None = None  # the XLSForm name of the row's field, for '.'
    choice_columns: Mapping[str, str] = field(default_factory=dict)  # extra choices column → its `data` key
    unusable: dict[str, Said | str] = field(default_factory=dict)  # XLSForm name → why it cannot be referenced
    read_columns: set[str] = field(default_factory=set)  # filled: the extra choices columns the filter reads


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
        if node[0] == "bare" and self.scope.mode == "choice_filter" and (
                node[1] == "name" or node[1] in self.scope.choice_columns):
            return _declaring("select_one")  # a candidate's value or column: text, like a single choice
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
            raise _Untranslatable(_as_said(self.scope.unusable[name]))
        if name.lower().startswith(_LAST_SAVED):
            raise _no(N_("${%(name)s} (the answer last saved on this phone) is an ODK Collect feature; Fangan "
                         "forms do not have it"), name=name)
        hint = difflib.get_close_matches(name, list(self.scope.names), n=1)
        if hint:
            raise _no(N_("unknown field ${%(name)s} (did you mean ${%(hint)s}?)"), name=name, hint=hint[0])
        raise _no(N_("unknown field ${%(name)s}"), name=name)

    def current(self) -> str:
        if self.scope.mode == "constraint":
            return "value"
        if self.scope.mode == "field" and self.scope.own in self.scope.names:
            return self.scope.names[self.scope.own]
        raise _no(N_("'.' (the current value) cannot be used here"))

    def bare(self, name: str) -> str:
        if self.scope.mode != "choice_filter":
            raise _no(N_("bare name '%(name)s' is not supported; refer to fields as ${%(name)s}"), name=name)
        if name == "name":
            return "choice.value"
        if name == "label" or name.startswith("label::"):
            raise _no(N_("a choice_filter over choice labels is not supported; filter on name or another column"))
        if name in self.scope.choice_columns:
            self.scope.read_columns.add(name)
            return f"choice.{self.scope.choice_columns[name]}"
        raise _no(N_("'%(name)s' is not a column of the choices sheet"), name=name)

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
        raise _no(N_("the operator '%(operator)s' is not supported"), operator=operator)

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
                count = str(least) if least == most else f"{least}–{most}"
                raise _no(N_("%(function)s() takes %(count)s argument(s)"), function=name, count=count)

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
                raise _no(N_("selected() needs a select_one or select_multiple field first"))
            if wanted[0] == "num":
                wanted = ("str", _number_literal(wanted[1]))
            if _is_single_choice(self.type_of(chosen)):
                return f"{chosen_text} == {self.text(wanted, _ADD)}", _CMP
            return f"{self.text(wanted, _ADD)} in {chosen_text}", _CMP
        if name == "count-selected":
            arity(1, 1)
            if _is_single_choice(self.type_of(args[0])):
                raise _no(N_("count-selected() needs a select_multiple field"))
            return f"len({self.text(args[0])})", _ATOM
        if name == "count":
            arity(1, 1)
            kind = _kind(self.type_of(args[0]))
            if args[0][0] != "field" or kind is None or not kind.holds_rows:
                raise _no(N_("count() is only supported on a repeat group, as count(${repeat})"))
            return f"len({self.text(args[0])})", _ATOM
        if name == "concat":
            arity(1, 50)
            parts = [self.text(a) if a[0] == "str" else f"str({self.text(a)})" for a in args]
            return " + ".join(parts), (_ADD if len(parts) > 1 else _ATOM)
        if name in ("min", "max") and len(args) == 1:
            raise _no(N_("%(function)s() over a repeat group is not supported"), function=name)
        if name in _SIMPLE_FUNCTIONS:
            target, least, most = _SIMPLE_FUNCTIONS[name]
            arity(least, most)
            return f"{target}({', '.join(self.text(a) for a in args)})", _ATOM
        raise _no(N_("the function %(function)s() has no Fangan equivalent"), function=name)


def _number_literal(text: str) -> str:
    """A numeric literal Python accepts ('007' is a syntax error there, '.5' and '5.' are unusual)."""
    if "." not in text:
        return str(int(text))
    whole, _, fraction = text.partition(".")
    return f"{int(whole or '0')}.{fraction or '0'}"


def translate_expression(source: str, scope: ExpressionScope) -> tuple[str | None, list[Said]]:
    """Translate one XLSForm expression: (Fangan source, []) or (None, problems)."""
    try:
        tree = _Parser(source).parse()
        return _Emitter(scope).text(tree), []
    except _Untranslatable as problem:
        return None, [problem.words]
    except RecursionError:
        return None, [say(N_("the expression is nested too deeply"))]


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
    title: str  # as named in the workbook (or the attached file's name)
    kind: str  # survey | choices | settings, as issues name it (or the file's name)
    header_row: int = 1
    headers: dict[str, str] = field(default_factory=dict)  # column key → header as written
    rows: list[_Row] = field(default_factory=list)
    languages: set[str] = field(default_factory=set)

    def header(self, key: str) -> str:
        return self.headers.get(key, key)


class _Issues:
    def __init__(self) -> None:
        self.items: list[XlsformIssue] = []
        self.fatal = False

    def add(self, sheet: str, row: int | None, column: str | None, words: Said, *, fatal: bool = False,
            name: str | None = None) -> None:
        self.items.append(XlsformIssue(sheet, row, column, words, name))
        self.fatal = self.fatal or fatal


def _sorted(issues: Iterable[XlsformIssue]) -> list[XlsformIssue]:
    order = {name: i for i, name in enumerate(SHEETS)}
    return sorted(issues, key=lambda i: (order.get(i.sheet, len(SHEETS)), i.sheet, i.row or 0))


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


def _read_sheet(title: str, kind: str, rows: Iterable[Iterable[Any]], columns: dict[str, str],
                issues: _Issues) -> _Sheet:
    sheet = _Sheet(title, kind)
    keys: dict[int, str] = {}
    found_header = False
    for number, values in enumerate(rows, start=1):
        cells = {i: v for i, v in enumerate(values) if i < MAX_COLUMNS and _cell_text(v)}
        if not cells:
            continue
        if len(sheet.rows) >= MAX_ROWS:
            issues.add(kind, number, None, say(N_("the sheet has more than %(count)s rows"), count=MAX_ROWS),
                       fatal=True)
            break
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
                        issues.add(kind, number, header, say(N_("the column is left out: '%(language)s' is not a "
                                                                "language name or code Fangan knows"),
                                                             language=language))
                        continue
                    key = f"{base}::{code}"
                    sheet.languages.add(code)
                if key in sheet.headers:
                    issues.add(kind, number, header, say(N_("the column is left out: it repeats '%(other)s'"),
                                                         other=sheet.headers[key]))
                    continue
                keys[i] = key
                sheet.headers[key] = header
            continue
        sheet.rows.append(_Row(number, {keys[i]: v for i, v in cells.items() if i in keys}))
    return sheet


_XLSX_MAGIC = b"PK\x03\x04"
_XLS_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # an OLE2 compound file: Excel 97–2003


class _TooLarge(Exception):
    """A workbook that unpacks to more than MAX_UNZIPPED bytes."""


def _xlsx_sheets(data: bytes) -> Iterator[tuple[str, Iterable[Iterable[Any]]]]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        if sum(member.file_size for member in archive.infolist()) > MAX_UNZIPPED:
            raise _TooLarge
    with warnings.catch_warnings():
        # openpyxl warns about Excel features it drops (data validation, styles); none matter here.
        warnings.simplefilter("ignore")
        # Read-only streams the rows: a stray cell far away makes empty rows, not billions of empty cells.
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    try:
        for worksheet in book.worksheets:
            yield worksheet.title, worksheet.iter_rows(values_only=True, max_col=MAX_COLUMNS)
    finally:
        book.close()


def _xls_value(cell: Any, datemode: int) -> Any:
    """An .xls cell as openpyxl would give it: dates as datetime, times of day as time, booleans as bool."""
    if cell.ctype == xlrd.XL_CELL_DATE:
        try:
            parts = xlrd.xldate_as_tuple(cell.value, datemode)
        except xlrd.xldate.XLDateError:
            return cell.value  # not a date Excel can show: the number, which its row's checks then refuse
        return time(*parts[3:]) if parts[:3] == (0, 0, 0) else datetime(*parts)
    if cell.ctype == xlrd.XL_CELL_BOOLEAN:
        return bool(cell.value)
    if cell.ctype in (xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK, xlrd.XL_CELL_ERROR):
        return None
    return cell.value


def _xls_sheets(data: bytes) -> Iterator[tuple[str, Iterable[Iterable[Any]]]]:
    book = xlrd.open_workbook(file_contents=data, on_demand=True, ragged_rows=True)
    try:
        for index in range(book.nsheets):
            sheet = book.sheet_by_index(index)
            yield sheet.name, ([_xls_value(c, book.datemode) for c in sheet.row(r)[:MAX_COLUMNS]]
                               for r in range(sheet.nrows))
    finally:
        book.release_resources()


def _open(data: bytes, filename: str, issues: _Issues) -> dict[str, _Sheet] | None:
    """The survey, choices and settings sheets of an .xlsx or .xls workbook, told apart by content."""
    columns = {"survey": _SURVEY_COLUMNS, "choices": _CHOICES_COLUMNS, "settings": _SETTINGS_COLUMNS}
    reader = _xlsx_sheets if data.startswith(_XLSX_MAGIC) else _xls_sheets if data.startswith(_XLS_MAGIC) else None
    if reader is None:
        issues.add(filename, None, None, say(N_("not an Excel workbook (.xlsx or .xls)")), fatal=True)
        return None
    if reader is _xlsx_sheets and not _has_workbook(data):  # a .docx, an .odt: a zip, but no workbook in it
        issues.add(filename, None, None, say(N_("not an Excel workbook (.xlsx or .xls)")), fatal=True)
        return None
    sheets: dict[str, _Sheet] = {}
    try:
        for title, rows in reader(data):
            kind = title.strip().lower()
            if kind in columns and kind not in sheets:
                sheets[kind] = _read_sheet(title, kind, rows, columns[kind], issues)
    except _TooLarge:
        issues.add(filename, None, None, say(N_("the workbook unpacks to more than %(size)s MB"),
                                             size=MAX_UNZIPPED // 1024 // 1024), fatal=True)
        return None
    except Exception as error:  # noqa: BLE001 - any failure to read is the same problem to the uploader
        issues.add(filename, None, None, say(N_("the workbook cannot be read (%(error)s)"),
                                             error=type(error).__name__), fatal=True)
        return None
    return sheets


def _has_workbook(data: bytes) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return "xl/workbook.xml" in archive.namelist()
    except zipfile.BadZipFile:
        return False


def _decode(data: bytes) -> str | None:
    """A CSV file's text: UTF-8 (with or without its mark), else GB18030 (what Chinese Excel saves)."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return None


# --------------------------------------------------------------------------------------------------------
# Building the form


@dataclass
class _Entry:
    """One survey row, classified."""

    row: _Row
    category: str  # field | begin_group | end_group | begin_repeat | end_repeat | metadata | comment | skip
    type: str = ""  # Fangan type for fields (or calculate / acknowledge), as written for metadata
    xlsform_type: str = ""  # the row's own type, lower-cased
    list_name: str | None = None
    file: str | None = None  # select_one_from_file: the attached file's name
    or_other: bool = False
    name: str = ""
    id: str | None = None


@dataclass
class _Choice:
    row: int
    value: str
    label: str | dict
    data: dict[str, str] = field(default_factory=dict)  # extra column → its text


def _structure(row: _Row) -> str | None:
    """'begin' or 'end' for a group or repeat row, else None."""
    words = " ".join(_cell_text(row.cells.get("type")).split()).lower().replace("_", " ").split()
    if len(words) == 2 and words[0] in ("begin", "end") and words[1] in ("group", "repeat"):
        return words[0]
    return None


def _keep(rows: list[_Row], dropped: Mapping[int, Any]) -> tuple[list[_Row], dict[str, int]]:
    """The rows not left out (a group or repeat left out takes its rows with it), and the names of those left
    out → the row that was left out."""
    kept: list[_Row] = []
    gone: dict[str, int] = {}
    depth, cause = 0, 0
    for row in rows:
        kind, name = _structure(row), _cell_text(row.cells.get("name"))
        if depth:
            depth += {"begin": 1, "end": -1}.get(kind or "", 0)
        elif row.number in dropped:
            cause = row.number
            depth = 1 if kind == "begin" else 0
        else:
            kept.append(row)
            continue
        if name and kind != "end":
            gone.setdefault(name, cause)
    return kept, gone


class _Builder:
    """Turns the read sheets into a form definition, collecting issues (one pass over the rows kept)."""

    def __init__(self, sheets: dict[str, _Sheet], issues: _Issues, rows: list[_Row], media: Mapping[str, bytes],
                 gone: Mapping[str, int]):
        self.sheets = sheets
        self.issues = issues
        self.rows = rows
        self.media = media
        self.survey = sheets["survey"]
        self.choices_sheet = sheets.get("choices")
        self.default_language: str | None = None
        self.lists: dict[str, list[_Choice]] = {}
        self.files: dict[str, tuple[list[_Choice], dict[str, str]] | Said] = {}  # file → (choices, columns)
        self.names: dict[str, str] = {}  # XLSForm name → Fangan expression
        self.types: dict[str, str] = {}  # XLSForm name → Fangan type
        self.id_types: dict[str, str] = {}  # Fangan id → Fangan type (for calculations)
        self.unusable: dict[str, Said | str] = {
            name: say(N_("${%(name)s} cannot be used: survey row %(row)s is left out"), name=name, row=row)
            for name, row in gone.items()}
        self.ids: set[str] = set()
        self.id_rows: dict[str, int] = {}  # Fangan id → the survey row it comes from
        self.row_names: dict[int, str] = {}  # row → its XLSForm name, to stop later rows using a row left out
        self.name_rows: dict[str, int] = {}  # XLSForm name → the row it is registered to
        self.notes: list[XlsformIssue] = []

    def problem(self, row: int, column: str | None, words: Said) -> None:
        """A survey row that cannot be converted: it is left out, and rows after it cannot use it."""
        name = self.row_names.get(row)
        self.issues.add("survey", row, column, words, name=name)
        if name and self.name_rows.get(name, row) == row and name not in self.unusable:
            self.names.pop(name, None)
            self.unusable[name] = say(N_("${%(name)s} cannot be used: survey row %(row)s is left out"), name=name,
                                      row=row)

    # -- texts ---------------------------------------------------------------
    def text(self, sheet: _Sheet, row: _Row, base: str) -> str | dict | None:
        """A plain string, or one string per language when the sheet has language columns for `base`."""
        plain = _cell_text(row.cells.get(base))
        codes = sorted(sheet.languages, key=lambda c: ({"zh": 0, "en": 1}.get(c, 2), c))
        texts = {code: _cell_text(row.cells[f"{base}::{code}"]) for code in codes
                 if _cell_text(row.cells.get(f"{base}::{code}"))}
        if plain and any(f"{base}::{code}" in sheet.headers for code in codes):
            code = self.default_language or ("zh" if _CJK.search(plain) else "en")
            texts.setdefault(code, plain)
            texts = {c: texts[c] for c in sorted(texts, key=lambda c: ({"zh": 0, "en": 1}.get(c, 2), c))}
        result: str | dict | None = texts or plain or None
        for key, value in (texts.items() if texts else [(base, plain)]):
            if len(value) > MAX_TEXT:
                column = sheet.header(key if key == base else f"{base}::{key}")
                self.issues.add(sheet.kind, row.number, column,
                                say(N_("text longer than %(count)s characters"), count=MAX_TEXT))
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
        if self.choices_sheet is not None:
            self.lists = self.choices_of(self.choices_sheet, "list_name", "name", "label")

    def choices_of(self, sheet: _Sheet, list_key: str | None, value_key: str, label_key: str
                   ) -> dict[str, list[_Choice]]:
        """The lists of a choices sheet (or of an attached file: one list, ``list_key`` None)."""
        lists: dict[str, list[_Choice]] = {}
        extra = self.choice_columns(sheet, (value_key, label_key))
        for row in sheet.rows:
            list_name = _cell_text(row.cells.get(list_key)) if list_key else ""
            value = _cell_text(row.cells.get(value_key))
            if list_key and not list_name:
                self.issues.add(sheet.kind, row.number, sheet.header(list_key), say(N_("missing list_name")))
                continue
            if not value:
                self.issues.add(sheet.kind, row.number, sheet.header(value_key), say(N_("missing name")))
                continue
            items = lists.setdefault(list_name, [])
            twin = next((c for c in items if c.value == value), None)
            if twin is not None:
                self.issues.add(sheet.kind, row.number, sheet.header(value_key),
                                say(N_("duplicate name '%(value)s' in list '%(list)s' (also on row %(row)s)"),
                                    value=value, list=list_name, row=twin.row))
                continue
            # pyxform needs a label; Fangan does too, and the value is the honest stand-in.
            data = {column: _cell_text(row.cells.get(column)) for column in extra}
            items.append(_Choice(row.number, value, self.text(sheet, row, label_key) or value, data))
        return lists

    @staticmethod
    def choice_columns(sheet: _Sheet | None, own: Iterable[str] = ()) -> dict[str, str]:
        """The extra columns of a choices sheet (what a choice_filter may read) → their key in a choice's data."""
        if sheet is None:
            return {}
        out: dict[str, str] = {}
        for number, column in enumerate(sheet.headers, start=1):
            if column in _CHOICE_OWN_COLUMNS or column in own or "::" in column:
                continue
            key = sanitize_id(column) or f"column_{number}"  # a Chinese header (街道) has no letters for an id
            if key in ("value", "label"):
                key += "_"
            while key in out.values():
                key += "_"
            out[column] = key
        return out

    def file_choices(self, entry: _Entry) -> tuple[list[_Choice], dict[str, str]] | Said:
        """The choices of a select_one_from_file row, read from the attached CSV (or why they cannot be)."""
        name = PurePath(entry.file or "").name
        parameters = dict(re.findall(r"(\w+)\s*=\s*([^\s,;]+)", _cell_text(entry.row.cells.get("parameters"))))
        value_key, label_key = parameters.get("value", "name").lower(), parameters.get("label", "label").lower()
        cache_key = f"{name}\0{value_key}\0{label_key}"
        if cache_key not in self.files:
            self.files[cache_key] = self.read_file(name, value_key, label_key)
        return self.files[cache_key]

    def read_file(self, name: str, value_key: str, label_key: str) -> tuple[list[_Choice], dict[str, str]] | Said:
        if PurePath(name).suffix.lower() != ".csv":
            return say(N_("choices from '%(file)s' are not supported: only CSV files can be read"), file=name)
        data = self.media.get(name.lower())
        if data is None:
            return say(N_("the file '%(file)s' is not attached: attach it with the workbook"), file=name)
        text = _decode(data)
        if text is None:
            return say(N_("the file '%(file)s' is neither UTF-8 nor GB18030 text"), file=name)
        try:
            rows = list(csv.reader(io.StringIO(text, newline="")))
        except csv.Error as error:
            return say(N_("the file '%(file)s' is not CSV (%(error)s)"), file=name, error=str(error))
        sheet = _read_sheet(name, name, rows, {}, self.issues)
        if value_key not in sheet.headers:
            return say(N_("the file '%(file)s' has no column '%(column)s'"), file=name, column=value_key)
        if len(sheet.rows) > MAX_FILE_CHOICES:
            return say(N_("the file '%(file)s' has %(count)s choices; at most %(most)s can be imported (longer lists "
                          "belong in live choices)"), file=name, count=len(sheet.rows), most=MAX_FILE_CHOICES)
        choices = self.choices_of(sheet, None, value_key, label_key).get("", [])
        if not choices:
            return say(N_("the file '%(file)s' has no choices"), file=name)
        return choices, self.choice_columns(sheet, (value_key, label_key))

    # -- survey rows -------------------------------------------------------
    def classify(self, row: _Row) -> _Entry:
        raw = " ".join(_cell_text(row.cells.get("type")).split())
        name = _cell_text(row.cells.get("name"))
        entry = _Entry(row, "skip", name=name)
        if name:
            self.row_names[row.number] = name
        column = self.survey.header("type")
        if not raw:
            if not name and not any(key == "label" or key.startswith("label::") for key in row.cells):
                entry.category = "comment"  # pyxform skips these too
                self.notes.append(XlsformIssue("survey", row.number, None, say(N_(
                    "a row without a type, name or label is a comment: skipped"))))
            else:
                self.problem(row.number, column, say(N_("missing type")))
            return entry
        lowered = raw.lower()
        if _structure(row):
            words = lowered.replace("_", " ").split()
            entry.category = f"{words[0]}_{words[1]}"
            return entry
        from_file = _FROM_FILE_RE.match(raw)
        if from_file:
            entry.category, entry.file = "field", from_file.group("file")
            entry.type = _select_type(aliases.select_from_file[from_file.group("command").lower()])
            return entry
        select = _SELECT_RE.match(raw)
        if select:
            other = select.group("other")
            if other and other.strip().lower() != _OR_OTHER:
                self.problem(row.number, column, say(N_("'%(other)s' after the list name is not understood (only "
                                                        "or_other is)"), other=other))
                return entry
            entry.category, entry.list_name, entry.or_other = "field", select.group("list"), bool(other)
            entry.type = _select_type(_SELECTS[select.group("command").lower()])
            return entry
        if lowered in _SELECTS:
            self.problem(row.number, column, say(N_("type '%(type)s' needs a choice list name after it"), type=raw))
            return entry
        types = _types()
        if lowered in types:
            entry.category, entry.type, entry.xlsform_type = "field", types[lowered], lowered
            return entry
        if lowered in _METADATA:
            entry.category, entry.type = "metadata", lowered
            said = (N_("%(type)s metadata is skipped: Fangan records who sent a record and when")
                    if lowered in _METADATA_MEANING else N_("%(type)s metadata is skipped: Fangan does not keep it"))
            self.notes.append(XlsformIssue("survey", row.number, column, say(said, type=raw)))
            return entry
        known = [*types, "select_one", "select_multiple", "begin group", "begin repeat"]
        hint = difflib.get_close_matches(lowered, known, n=1, cutoff=0.75)
        if hint:
            self.problem(row.number, column, say(N_("type '%(type)s' is not supported; did you mean '%(hint)s'?"),
                                                 type=raw, hint=hint[0]))
        else:
            self.problem(row.number, column, say(N_("type '%(type)s' is not supported"), type=raw))
        return entry

    def register(self, entries: list[_Entry]) -> None:
        """Give every named row its id (or meaning), reporting missing, unusable and duplicate names."""
        seen: dict[str, int] = {}
        owners: dict[str, tuple[str, int]] = {}
        column = self.survey.header("name")
        for entry in entries:
            if entry.category in ("skip", "comment", "end_group", "end_repeat"):
                continue
            number = entry.row.number
            if not entry.name:
                if entry.category not in ("metadata", "begin_group", "begin_repeat") and entry.xlsform_type != "note":
                    self.problem(number, column, say(N_("missing name")))
                continue
            if entry.name in seen:
                self.problem(number, column, say(N_("duplicate name '%(name)s' (also on row %(row)s)"),
                                                 name=entry.name, row=seen[entry.name]))
                continue
            seen[entry.name] = number
            if entry.category == "metadata":
                meaning = _METADATA_MEANING.get(entry.type)
                if meaning:
                    self.names[entry.name] = meaning
                else:
                    self.unusable[entry.name] = say(N_("${%(name)s} is %(type)s metadata, which Fangan does not "
                                                       "keep"), name=entry.name, type=entry.type)
                continue
            ident = sanitize_id(entry.name)
            if ident is None:
                self.problem(number, column, say(N_("name '%(name)s' has no letters or digits usable in an id "
                                                    "(a-z, 0-9, _): give it a pinyin or English name"),
                                                 name=entry.name))
                continue
            if ident in _RESERVED or keyword.iskeyword(ident):
                ident += "_"  # references are rewritten, so renaming keeps every expression right
            claims = [(entry.name, ident)] + ([(f"{entry.name}_other", f"{ident}_other")] if entry.or_other else [])
            taken = next(((name, i) for name, i in claims if i in owners), None)
            if taken is not None:
                other, other_row = owners[taken[1]]
                self.problem(number, column, say(N_("name '%(name)s' becomes id '%(id)s', which '%(other)s' on row "
                                                    "%(row)s already has"), name=taken[0], id=taken[1], other=other,
                                                 row=other_row))
                continue
            entry.id = ident
            self.name_rows[entry.name] = number
            if entry.category in ("begin_group", "begin_repeat"):
                kind = _container_type(entry.category == "begin_repeat")
            else:
                kind = _declaring("select_one") if entry.type == "acknowledge" else entry.type
            for (name, claimed), claimed_kind in zip(claims, (kind, _declaring("text")), strict=False):
                owners[claimed] = (name, number)
                self.ids.add(claimed)
                self.names[name] = claimed
                self.types[name] = claimed_kind
                self.id_types[claimed] = claimed_kind
        for entry in entries:
            # Unnamed groups and notes get an id from their row (pyxform names them too), after every named
            # field has claimed its own.
            if entry.category in ("begin_group", "begin_repeat") and not entry.name:
                entry.id = self.unique(f"{entry.category.removeprefix('begin_')}_{entry.row.number}")
            elif entry.category == "field" and entry.xlsform_type == "note" and not entry.name:
                entry.id = self.unique(f"note_{entry.row.number}")

    def unique(self, ident: str) -> str:
        while ident in self.ids:
            ident += "_"
        self.ids.add(ident)
        return ident

    # -- expressions -------------------------------------------------------
    def expression(self, entry: _Entry, key: str, mode: str = "field",
                   choice_columns: Mapping[str, str] | None = None, read: set[str] | None = None) -> str | None:
        """The row's cell `key` translated (None when empty or when it cannot be: the row is then left out)."""
        source = _cell_text(entry.row.cells.get(key))
        if not source:
            return None
        scope = ExpressionScope(self.names, self.types, mode, entry.name or None, choice_columns or {},
                                self.unusable, read if read is not None else set())
        translated, problems = translate_expression(source, scope)
        column = self.survey.header(key)
        for problem in problems:
            self.problem(entry.row.number, column, say(N_("cannot translate '%(source)s': %(problem)s"),
                                                       source=_quoted(source), problem=problem))
        if translated is None:
            return None
        allowed = set(FORM_CONTEXT_NAMES)
        if mode != "default":  # defaults are computed before anything is filled in: context names only
            allowed |= self.ids
        allowed |= {"constraint": {"value"}, "choice_filter": {"choice.*"}}.get(mode, set())
        found = check_expression(translated, allowed)
        for text in found:
            problem: Said = _Said(text)
            if mode == "default" and text.startswith("unknown name"):
                problem = say(N_("%(problem)s (a default may only use today, now, user.*, period.* and scheme.*)"),
                              problem=problem)
            self.problem(entry.row.number, column, say(N_("'%(source)s' becomes '%(translated)s': %(problem)s"),
                                                       source=_quoted(source), translated=_quoted(translated),
                                                       problem=problem))
        return None if found else translated

    # -- fields ------------------------------------------------------------
    def run(self) -> tuple[dict[str, str], list[dict]]:
        """Settings and the fields of the rows kept."""
        settings = self.settings()
        self.read_choices()
        entries = [self.classify(row) for row in self.rows]
        self.register(entries)
        return settings, self.build(entries)

    def build(self, entries: list[_Entry]) -> list[dict]:
        top: list[dict] = []
        stack: list[tuple[_Entry, dict]] = []
        rows_inside: dict[int, int] = {}  # begin row → fields built in it
        for entry in entries:
            target = stack[-1][1]["fields"] if stack else top
            if entry.id:
                self.id_rows[entry.id] = entry.row.number
            if entry.category in ("begin_group", "begin_repeat"):
                container = self.container(entry)
                stack.append((entry, container))
                rows_inside[entry.row.number] = 0
                target.append(container)
            elif entry.category in ("end_group", "end_repeat"):
                self.close(entry, stack, rows_inside, target)
            elif entry.category == "field" and entry.id:
                built = self.field(entry)
                target.extend(built)
                if built and stack:
                    rows_inside[stack[-1][0].row.number] += 1
        for opened, _ in stack:
            kind = opened.category.removeprefix("begin_")
            self.issues.add("survey", opened.row.number, self.survey.header("type"),
                            say(N_("begin %(kind)s '%(name)s' has no matching end %(kind)s"), kind=kind,
                                name=opened.name or opened.id), fatal=True)
        return top

    def close(self, entry: _Entry, stack: list[tuple[_Entry, dict]], rows_inside: dict[int, int],
              target: list[dict]) -> None:
        kind = entry.category.removeprefix("end_")
        column = self.survey.header("type")
        if not stack:
            self.issues.add("survey", entry.row.number, column,
                            say(N_("end %(kind)s without a begin %(kind)s"), kind=kind), fatal=True)
            return
        opened, container = stack.pop()
        opened_kind = opened.category.removeprefix("begin_")
        if opened_kind != kind:
            self.issues.add("survey", entry.row.number, column,
                            say(N_("end %(kind)s closes the %(opened)s '%(name)s' begun on row %(row)s"), kind=kind,
                                opened=opened_kind, name=opened.name or opened.id, row=opened.row.number), fatal=True)
        if not rows_inside[opened.row.number]:
            self.problem(opened.row.number, column, say(N_("%(kind)s '%(name)s' has no fields to import"),
                                                        kind=opened_kind, name=opened.name or opened.id))
        elif stack:
            rows_inside[stack[-1][0].row.number] += 1

    def container(self, entry: _Entry) -> dict:
        repeat = entry.category == "begin_repeat"
        out: dict[str, Any] = {"id": entry.id, "type": _container_type(repeat)}
        self.common(entry, out)
        if repeat:
            count = self.expression(entry, "repeat_count")
            if count:
                out["repeat_count"] = count
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

    def field(self, entry: _Entry) -> list[dict]:
        """The row's field (with its `_other` text field after it for or_other); nothing when it is left out."""
        kind, number = entry.type, entry.row.number
        appearance = _cell_text(entry.row.cells.get("appearance")).lower()
        if "search(" in appearance:
            self.problem(number, self.survey.header("appearance"),
                         say(N_("appearance search() reads choices from a file at run time, which is not supported")))
        kind = _with_appearance(entry.xlsform_type, appearance) or kind
        out: dict[str, Any] = {"id": entry.id, "type": kind}
        self.common(entry, out)
        if _kind(kind) is not None and not _kind(kind).has_value:
            return [out]
        self.required(entry, out)
        readonly = _cell_text(entry.row.cells.get("read_only")).lower()
        if readonly in _YES:
            out["readonly"] = True
        elif readonly and readonly not in _NO:
            self.problem(number, self.survey.header("read_only"),
                         say(N_("read_only '%(value)s' is not understood: use yes or no"), value=readonly))
        calculation = self.expression(entry, "calculation")
        if kind == "calculate":
            if not _cell_text(entry.row.cells.get("calculation")):
                self.problem(number, self.survey.header("type"), say(N_("a calculate row needs a calculation")))
                return []
            out["type"] = self.calculated_type(calculation)
            out["readonly"] = True
            self.id_types[entry.id or ""] = out["type"]
        if calculation:
            out["calculate"] = calculation
        self.trigger(entry, out)
        self.default(entry, out)
        self.constraint(entry, out)
        if kind == "acknowledge":
            out["type"] = _declaring("select_one")
            out["choices"] = [{"value": "OK", "label": {"zh": "确认", "en": "OK"}}]
        elif _kind(kind) is not None:
            if _kind(kind).needs_choices:
                self.attach_choices(entry, out)
            _kind(kind).from_xlsform(out)
        built = [_ordered(out)]
        if entry.or_other and "choices" in out:
            out["choices"].append({"value": _OTHER_CHOICE["value"], "label": dict(_OTHER_CHOICE["label"])})
            picked = (f"{entry.id} == 'other'" if _is_single_choice(kind) else f"'other' in {entry.id}")
            built.append({"id": f"{entry.id}_other", "type": _declaring("text"), "label": dict(_OTHER_LABEL),
                          "visible_if": picked})
            self.id_rows[f"{entry.id}_other"] = number
        return built

    def trigger(self, entry: _Entry, out: dict) -> None:
        """The trigger column: the calculation runs when one of the fields it names changes (`calculate_on`)."""
        source = _cell_text(entry.row.cells.get("trigger"))
        if not source:
            return
        column = self.survey.header("trigger")
        names = re.findall(r"\$\{([^}]*)\}", source)
        if not names or re.sub(r"\$\{[^}]*\}|[\s,]", "", source):
            self.problem(entry.row.number, column, say(N_("trigger '%(source)s' is not understood: name fields as "
                                                          "${name}"), source=source))
            return
        if "calculate" not in out:
            self.problem(entry.row.number, column, say(N_("a trigger without a calculation (which empties the answer "
                                                          "when the named field changes) is not supported")))
            return
        ids = []
        for name in names:
            target = self.names.get(name.strip())
            if target is None or target not in self.ids:
                scope = ExpressionScope(self.names, self.types, unusable=self.unusable)
                _, problems = translate_expression(f"${{{name.strip()}}}", scope)
                problem = problems[0] if problems else say(N_("${%(name)s} is not a field"), name=name)
                self.problem(entry.row.number, column, say(N_("cannot translate '%(source)s': %(problem)s"),
                                                           source=source, problem=problem))
                return
            ids.append(target)
        out["calculate_on"] = list(dict.fromkeys(ids))

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
        if out["type"] == "acknowledge" and text == "OK":
            out["default"] = text
            return
        value, problem = (kind.xlsform_default(text, raw) if kind is not None
                          else (None, say(N_("a default is not supported on type '%(type)s'"), type=out["type"])))
        if problem:
            self.problem(number, column, _as_said(problem))
            return
        if kind is not None and kind.needs_choices:
            known = {c.value for c in self.lists.get(entry.list_name or "", [])} | (
                {_OTHER_CHOICE["value"]} if entry.or_other else set())
            missing = [v for v in ([value] if isinstance(value, str) else value) if known and v not in known]
            if missing:
                self.problem(number, column, say(N_("default '%(value)s' is not a choice of list '%(list)s'"),
                                                 value=missing[0], list=entry.list_name))
                return
        out["default"] = value

    def attach_choices(self, entry: _Entry, out: dict) -> None:
        column = self.survey.header("type")
        if entry.file:
            found = self.file_choices(entry)
            if isinstance(found, Said):
                self.problem(entry.row.number, column, found)
                return
            items, columns = found
        else:
            if self.choices_sheet is None:
                self.problem(entry.row.number, column, say(N_("choice list '%(list)s' cannot be found: there is no "
                                                              "choices sheet"), list=entry.list_name))
                return
            items = self.lists.get(entry.list_name or "", [])
            if not items:
                hint = difflib.get_close_matches(entry.list_name or "", list(self.lists), n=1)
                words = (say(N_("choice list '%(list)s' is not in the choices sheet (did you mean '%(hint)s'?)"),
                             list=entry.list_name, hint=hint[0]) if hint else
                         say(N_("choice list '%(list)s' is not in the choices sheet"), list=entry.list_name))
                self.problem(entry.row.number, column, words)
                return
            columns = self.choice_columns(self.choices_sheet, ("name", "label"))
        reads: set[str] = set()
        condition = self.expression(entry, "choice_filter", "choice_filter", columns, reads)
        read = sorted(reads) if condition else []
        # Fresh dicts per field: a shared object would come out of the YAML dump as an anchor and alias.
        # A choice without a value in a column the filter reads has '' there, as XLSForm compares it.
        out["choices"] = [{"value": c.value, "label": _copy_text(c.label),
                           **({"data": {columns[k]: c.data.get(k, "") for k in read}} if read else {})}
                          for c in items]
        if condition:
            out["choice_filter"] = condition


_FIELD_ORDER = ("id", "type", "label", "hint", "required", "required_if", "visible_if", "readonly", "default",
                "default_from", "calculate", "calculate_on", "constraints", "choices", "choice_filter", "max_files",
                "accept", "capture", "min_repeat", "max_repeat", "repeat_count", "fields")


def _ordered(out: dict) -> dict:
    """Keys in the order people read a form definition."""
    return {key: out[key] for key in _FIELD_ORDER if key in out}


def _copy_text(text: str | dict) -> str | dict:
    return dict(text) if isinstance(text, dict) else text


def _quoted(text: str) -> str:
    """A cell's text as a message quotes it: a long formula is cut, not repeated whole."""
    return text if len(text) <= MAX_QUOTED else text[:MAX_QUOTED] + "…"


def _walk(fields: list[dict]) -> Iterator[dict]:
    for item in fields:
        yield item
        yield from _walk(item.get("fields", []))


def import_xlsform(data: bytes, filename: str = "form.xlsx", *, form_id: str | None = None,
                   attachments: Mapping[str, bytes] | None = None, strict: bool = False) -> XlsformImport:
    """Convert an XLSForm workbook (with the files its rows name, by file name) into a Fangan form definition.

    What cannot be converted is left out and listed; with `strict`, or when nothing sensible is left, raise
    XlsformError listing every problem.
    """
    opening = _Issues()
    sheets = _open(data, filename, opening)
    if sheets is None or opening.fatal:
        raise XlsformError(_sorted(opening.items))
    if "survey" not in sheets:
        opening.add("survey", None, None, say(N_("the workbook has no sheet named 'survey'")), fatal=True)
        raise XlsformError(_sorted(opening.items))
    media = {PurePath(name).name.lower(): content for name, content in (attachments or {}).items()}
    dropped: dict[int, list[XlsformIssue]] = {}
    for _ in range(MAX_ROUNDS):
        issues = _Issues()
        kept, gone = _keep(sheets["survey"].rows, dropped)
        builder = _Builder(sheets, issues, kept, media, gone)
        settings, fields = builder.run()
        if not issues.fatal and not any(i.sheet == "survey" for i in issues.items):
            # what the scheme check would refuse goes too
            _check_definition(fields, builder.id_rows, issues, sheets["survey"])
        left_out = {i.row for i in issues.items if i.sheet == "survey" and i.row is not None}
        if issues.fatal or not left_out:
            break
        for issue in issues.items:
            if issue.sheet == "survey" and issue.row in left_out:
                dropped.setdefault(issue.row, []).append(issue)
    else:
        issues.add("survey", None, None, say(N_("too many rows depend on rows that cannot be imported")), fatal=True)
    if not any(not _is_container(f["type"]) for f in _walk(fields)):
        issues.add("survey", None, None, say(N_("the survey sheet has no fields to import")), fatal=True)

    stem = PurePath(filename).stem
    ident = sanitize_id(form_id) if form_id else None
    if form_id and ident is None:
        issues.add("settings", None, "form_id", say(N_("form id '%(id)s' has no letters or digits usable in an id"),
                                                    id=form_id), fatal=True)
    ident = ident or sanitize_id(settings.get("form_id", "")) or sanitize_id(stem)
    if ident is None:  # a Chinese file name and no form_id: two such forms must not share a made-up id
        issues.add("settings", None, "form_id", say(N_("the form has no id: give one (the form id box, or --id), or "
                                                       "fill in form_id on the settings sheet")), fatal=True)
        ident = "form"
    title = settings.get("form_title") or stem or ident
    if len(title) > MAX_TEXT:
        issues.add("settings", None, "form_title", say(N_("text longer than %(count)s characters"), count=MAX_TEXT),
                   fatal=True)
    left = [*opening.items, *(i for found in dropped.values() for i in found),
            *(i for i in issues.items if not (i.sheet == "survey" and i.row in dropped))]
    if issues.fatal or (strict and left):
        raise XlsformError(_sorted(left), strict=not issues.fatal)
    return XlsformImport({"kind": "form", "id": ident, "name": title, "fields": fields}, _sorted(left),
                         _sorted(builder.notes))


# A definition's key → the survey column it comes from, to name the cell a definition check refuses.
_COLUMN_OF = {"calculate_on": "trigger", "visible_if": "relevant", "calculate": "calculation",
              "constraints": "constraint", "required_if": "required", "default_from": "default",
              "choices": "type", "readonly": "read_only"}


def _check_definition(fields: list[dict], id_rows: Mapping[str, int], issues: _Issues,
                      survey: _Sheet) -> None:
    """Put the form through the scheme's own checks: a field they refuse is named at its survey row (and left out
    in the next pass), so the definition given is one the scheme accepts. Nothing is expected to be found here:
    it is the net under the translation's own checks."""
    if not fields:
        return
    definition = {"kind": "form", "id": "imported_form", "name": "form", "fields": fields}
    doc = parse_text("form.yaml", to_yaml(definition))
    if doc.errors:  # the form as a whole is past a definition file's limits: no row is to blame
        issues.add("survey", None, None, _Checked(doc.errors[0].message, context=doc.errors[0].zh or None),
                   fatal=True)
        return
    errors: list[DefinitionError] = []
    if doc.data is not None:
        errors = validate_schema(doc)
        checker = ReferenceChecker(None, {("form", "imported_form"): doc})
        checker.check_form(doc)
        errors += checker.errors
    for error in errors:
        words = _Checked(error.message, context=error.zh or None)
        found = re.match(r"(?:fields\[\d+\]\.?)+", error.path)
        field_ = None
        if found:
            items: Any = {"fields": fields}
            for index in re.findall(r"\d+", found.group()):
                items = items["fields"][int(index)]
            field_ = items
        row = id_rows.get(field_.get("id", "")) if isinstance(field_, dict) else None
        rest = error.path[found.end():].lstrip(".") if found else error.path
        if row is None:
            issues.add("survey", None, rest or None, words, fatal=True)
        else:
            key = rest.split(".")[0].split("[")[0]
            issues.add("survey", row, survey.header(_COLUMN_OF.get(key, key)) if key else None, words)


# Text that YAML 1.1 tools (and people) read as something else: yes/no/on/off, numbers, times such as 10:15.
_AMBIGUOUS = re.compile(r"(?i)y|n|yes|no|true|false|on|off|null|~|[-+]?\.?[0-9][-+0-9.:_eE]*")


def _text_representer(representer: Any, text: str) -> Any:
    """Text as YAML: quoted where another tool would read it as a boolean, a number or a time."""
    style = "'" if _AMBIGUOUS.fullmatch(text) else None
    return representer.represent_scalar("tag:yaml.org,2002:str", text, style=style)


def to_yaml(definition: dict) -> str:
    """Dump a definition as block-style YAML (ruamel round-trip, Chinese kept as written; text that another YAML
    tool would read as a boolean, number or time quoted)."""
    yaml = YAML()
    yaml.representer.add_representer(str, _text_representer)
    yaml.default_flow_style = False
    yaml.allow_unicode = True
    yaml.width = 4096  # long labels and expressions stay on one line
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.representer.ignore_aliases = lambda *_: True  # repeated texts are written out, never as &anchors
    stream = io.StringIO()
    yaml.dump(definition, stream)
    return stream.getvalue()
