"""Read YAML and JSON definition files, keeping line numbers for every key and item.

Reading is bounded, whatever the file: it is refused past MAX_FILE_BYTES, past MAX_DEPTH levels of
nesting, past MAX_VALUES values (keys, items and texts, an alias counting as everything it stands for,
so an alias bomb stops after ten thousand values instead of expanding to billions), and a number
longer than MAX_NUMBER_CHARS characters is refused before Python converts it. The limits are checked
while ruamel composes the file, so a refused file costs no more than reading that far.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from flask_babel import gettext as _
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.composer import Composer
from ruamel.yaml.constructor import ConstructorError, RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent
from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode
from ruamel.yaml.scanner import RoundTripScanner

from ..core.archives import size_text
from .errors import N_, DefinitionError, DefinitionsInvalid, format_path, said

YAML_SUFFIXES = (".yaml", ".yml")
DEFINITION_SUFFIXES = (*YAML_SUFFIXES, ".json")
MAX_FILE_BYTES = 512 * 1024  # the largest shipped definition is 17 KB
MAX_VALUES = 10_000  # in one file; the largest shipped definition has about 1,100
MAX_DEPTH = 40  # levels of nesting; the shipped definitions reach 9
MAX_NUMBER = 2**53 - 1  # every whole number up to this is exact as a float, in JSON and in JavaScript
MAX_NUMBER_CHARS = 32  # a number written longer is refused before it is converted
NUMBER_TAGS = frozenset({"tag:yaml.org,2002:int", "tag:yaml.org,2002:float"})
UTF8_BOM = "\ufeff"


@dataclass
class SourceDocument:
    """One parsed file: its display name, raw text, the position-carrying tree and its plain data."""

    file: str
    text: str
    tree: Any = None
    data: Any = None
    errors: list[DefinitionError] = field(default_factory=list)
    over_limit: bool = False  # refused by a limit (size, nesting, values, a number's length): not read at all

    @property
    def ok(self) -> bool:
        return not self.errors

    def line_of(self, path: Sequence[str | int]) -> int:
        """1-based line of the node at `path`, or of its closest existing ancestor."""
        return line_of(self.tree, path)

    def error(self, path: Sequence[str | int], message: str, zh: str = "") -> DefinitionError:
        return DefinitionError(self.file, self.line_of(path), format_path(path), message, zh)


@dataclass
class ReadBudget:
    """Values that the files of one check may hold together; each file read takes its share."""

    limit: int
    used: int = 0

    @property
    def left(self) -> int:
        return self.limit - self.used


class _Refused(Exception):
    """A limit was reached while reading; carries where."""

    def __init__(self, line: int, path: Sequence[str | int], message: str):
        super().__init__(message)
        self.line, self.path, self.message = line, list(path), message


def decode_text(file: str, data: bytes) -> str:
    """A definition file's bytes as text: UTF-8 (a leading byte-order mark is dropped), or an error naming it."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        if _is_gbk(data):
            message = _("the file is not UTF-8 text (it looks like GBK): save it as UTF-8 and try again")
        else:
            message = _("the file is not UTF-8 text: save it as UTF-8 and try again")
        raise DefinitionsInvalid([DefinitionError(file, line, "", message)]) from exc
    return text.removeprefix(UTF8_BOM)


def _is_gbk(data: bytes) -> bool:
    try:
        data.decode("gb18030")
    except UnicodeDecodeError:
        return False
    return True


def _too_deep() -> str:
    return _("nested more than %(num)s levels deep", num=MAX_DEPTH)


class _BoundedScanner(RoundTripScanner):
    """Refuses `[[[[…` at the bracket past MAX_DEPTH: the scanner looks ahead, and deep brackets make it slow."""

    def fetch_flow_collection_start(self, TokenClass: Any, to_push: str) -> None:  # noqa: N803 - ruamel's name
        if self.flow_level >= MAX_DEPTH:
            raise _Refused(self.reader.line + 1, [], _too_deep())
        super().fetch_flow_collection_start(TokenClass, to_push)


class _BoundedComposer(Composer):
    """ruamel's composer, counting as it goes: nesting, values (an alias counts as all it stands for), numbers."""

    def __init__(self, loader: Any = None, budget: ReadBudget | None = None):
        super().__init__(loader)
        self.warn_double_anchors = False  # valid YAML: an alias takes the latest anchor of its name
        self.budget = budget
        self.values = 0
        self.sizes: dict[Any, int | None] = {}  # anchor → values it stands for (None while it is being read)
        self.path: list[str | int | None] = []

    def _where(self) -> list[str | int]:
        return [part for part in self.path if part is not None]

    def _count(self, size: int, mark: Any, alias: str | None = None) -> None:
        self.values += size
        left = self.budget.left if self.budget is not None else MAX_VALUES
        if self.values <= min(MAX_VALUES, left):
            return
        if alias is not None:
            message = _("the alias *%(alias)s makes the file expand to more than %(num)s values: write the "
                        "values out, or use fewer aliases", alias=alias, num=f"{min(MAX_VALUES, left):,}")
        elif self.budget is not None and left < MAX_VALUES:
            message = _("the scheme's files hold more than %(num)s values together", num=f"{self.budget.limit:,}")
        else:
            message = _("the file holds more than %(num)s values (keys, items and texts): split it into "
                        "smaller files", num=f"{MAX_VALUES:,}")
        raise _Refused(mark.line + 1, self._where(), message)

    def compose_node(self, parent: Any, index: Any) -> Any:
        if isinstance(parent, SequenceNode):
            self.path.append(index)
        elif isinstance(parent, MappingNode) and isinstance(index, ScalarNode):
            self.path.append(str(index.value))
        else:
            self.path.append(None)  # the root, or a mapping's key
        event = self.parser.peek_event()
        if isinstance(event, AliasEvent):
            size = self.sizes.get(event.anchor, 0)  # an unknown alias: ruamel reports it
            if size is None:
                raise _Refused(event.start_mark.line + 1, self._where(),
                               _("the alias *%(alias)s refers to a value that contains it", alias=event.anchor))
            self._count(size, event.start_mark, alias=event.anchor)
            node = super().compose_node(parent, index)
        else:
            if self.depth >= MAX_DEPTH:
                raise _Refused(event.start_mark.line + 1, self._where(), _too_deep())
            before = self.values
            self._count(1, event.start_mark)
            if event.anchor is not None:
                self.sizes[event.anchor] = None
            node = super().compose_node(parent, index)
            if event.anchor is not None:
                self.sizes[event.anchor] = self.values - before
            if isinstance(node, ScalarNode) and node.tag in NUMBER_TAGS and len(node.value) > MAX_NUMBER_CHARS:
                raise _Refused(event.start_mark.line + 1, self._where(), _number_message(node.value))
        self.path.pop()
        return node


class _Constructor(RoundTripConstructor):
    """Reports a value Python cannot hold (`2024-13-45`, `!!int abc`) as a YAML error at its line."""

    def construct_non_recursive_object(self, node: Any, tag: str | None = None) -> Any:
        try:
            return super().construct_non_recursive_object(node, tag)
        except (ValueError, OverflowError, TypeError) as exc:
            raise ConstructorError(None, None, _("cannot read %(value)s: %(reason)s",
                                                 value=repr(node.value)[:80], reason=str(exc)[:200]),
                                   node.start_mark) from exc


def _yaml(budget: ReadBudget | None = None) -> tuple[YAML, list[_BoundedComposer]]:
    """A round-trip YAML reader within the limits; the list receives its composer (to read its count)."""
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    yaml.Scanner = _BoundedScanner
    yaml.Constructor = _Constructor
    composers: list[_BoundedComposer] = []

    def composer(loader: Any = None) -> _BoundedComposer:
        composers.append(_BoundedComposer(loader, budget))
        return composers[-1]

    yaml.Composer = composer
    return yaml, composers


def _load(text: str, budget: ReadBudget | None) -> Any:
    """Parse YAML (or JSON) text within the limits, charging the values read to `budget`."""
    yaml, composers = _yaml(budget)
    try:
        return yaml.load(text)
    finally:
        if budget is not None and composers:
            budget.used += composers[0].values


def _number_message(value: Any) -> str:
    shown = str(value) if len(str(value)) <= 24 else str(value)[:20] + "…"
    return _("the number %(value)s is out of range: numbers must lie between -%(max)s and %(max)s",
             value=shown, max=MAX_NUMBER)


class _LongNumber(float):
    """A JSON integer too long to convert: kept as its text, refused by `_number_errors`."""

    def __new__(cls, text: str) -> _LongNumber:
        number = super().__new__(cls, math.inf)
        number.text = text
        return number

    def __str__(self) -> str:
        return self.text


def _json_int(text: str) -> int | float:
    return int(text) if len(text) <= MAX_NUMBER_CHARS else _LongNumber(text)


def _number_errors(doc: SourceDocument) -> list[DefinitionError]:
    """Numbers too large to keep exactly, and infinities and NaN (JSON has none)."""
    errors: list[DefinitionError] = []
    stack: list[tuple[Any, list[str | int]]] = [(doc.data, [])]
    while stack:
        node, path = stack.pop()
        if isinstance(node, dict):
            stack.extend((value, [*path, key]) for key, value in node.items())
        elif isinstance(node, list):
            stack.extend((value, [*path, i]) for i, value in enumerate(node))
        elif isinstance(node, int | float) and not isinstance(node, bool):
            if not math.isfinite(node) or abs(node) > MAX_NUMBER:
                errors.append(doc.error(path, _number_message(node)))
    return sorted(errors)


def _shape_error(file: str, data: Any, budget: ReadBudget | None) -> DefinitionError | None:
    """Nesting and values of data that json read but ruamel could not place (it is not also YAML)."""
    limit = min(MAX_VALUES, budget.left if budget is not None else MAX_VALUES)
    values = 0
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        values += 1 + (len(node) if isinstance(node, dict) else 0)
        if depth > MAX_DEPTH:
            return DefinitionError(file, 1, "", _too_deep())
        if values > limit:
            return DefinitionError(file, 1, "", _("the file holds more than %(num)s values (keys, items and "
                                                  "texts): split it into smaller files", num=f"{limit:,}"))
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, depth + 1) for child in children)
    return None


def parse_text(file: str, text: str, budget: ReadBudget | None = None) -> SourceDocument:
    """Parse one file's text within the limits; syntax errors and limits become DefinitionErrors on the document.

    `budget`, shared by the files of one check, bounds the values they hold together.
    """
    doc = SourceDocument(file=file, text=text)
    if len(text.encode("utf-8")) > MAX_FILE_BYTES:
        doc.errors.append(DefinitionError(file, 1, "", _("the file is larger than %(size)s",
                                                         size=size_text(MAX_FILE_BYTES))))
        doc.over_limit = True
        return doc
    text = text.removeprefix(UTF8_BOM)
    if file.lower().endswith(".json"):
        return _parse_json(doc, text, budget)
    try:
        doc.tree = _load(text, budget)
    except _Refused as exc:
        return _refused(doc, exc)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.problem and "duplicate key" not in exc.problem:
            problem = f"{exc.context}, {exc.problem}"
        doc.errors.append(DefinitionError(file, line, "", *said(N_("YAML syntax error: %(problem)s"), problem=problem)))
        return doc
    except YAMLError as exc:
        doc.errors.append(DefinitionError(file, 1, "", *said(N_("YAML syntax error: %(problem)s"), problem=str(exc))))
        return doc
    doc.data = to_plain(doc.tree)
    doc.errors.extend(_number_errors(doc))
    return doc


def _refused(doc: SourceDocument, exc: _Refused) -> SourceDocument:
    """A file over a limit: its one error, and nothing read from it."""
    doc.errors.append(DefinitionError(doc.file, exc.line, format_path(exc.path), exc.message))
    doc.over_limit = True
    return doc


def _parse_json(doc: SourceDocument, text: str, budget: ReadBudget | None) -> SourceDocument:
    # json gives exact syntax errors; ruamel then gives the positions (JSON is YAML 1.2) and checks the limits.
    file = doc.file
    try:
        plain = json.loads(text, parse_int=_json_int)
    except json.JSONDecodeError as exc:
        doc.errors.append(DefinitionError(file, exc.lineno, "", *said(N_("JSON syntax error: %(problem)s"),
                                                                       problem=exc.msg)))
        return doc
    except RecursionError:
        plain = None  # nested deeper than Python recurses: ruamel names the line below
        deep = DefinitionError(file, 1, "", _too_deep())
    else:
        deep = None
    try:
        doc.tree = _load(text, budget)
    except _Refused as exc:
        return _refused(doc, exc)
    except YAMLError:
        problem = deep or _shape_error(file, plain, budget)
        if problem is not None:
            doc.errors.append(problem)
            doc.over_limit = True
            return doc
        doc.tree = plain
    if deep is not None:
        doc.errors.append(deep)
        doc.over_limit = True
        return doc
    doc.data = plain
    doc.errors.extend(_number_errors(doc))
    return doc


def to_plain(node: Any) -> Any:
    """Turn ruamel's round-trip objects into plain JSON-compatible Python values."""
    if isinstance(node, dict):
        return {str(k): to_plain(v) for k, v in node.items()}
    if isinstance(node, list | tuple):
        return [to_plain(v) for v in node]
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, dt.datetime | dt.date):
        return node.isoformat()
    if isinstance(node, str):
        return str(node)
    return str(node)


def line_of(tree: Any, path: Sequence[str | int]) -> int:
    """Walk `path` through ruamel nodes; return the 1-based line of the deepest node found."""
    line = 0
    node = tree
    for part in path:
        if isinstance(node, CommentedMap) and part in node:
            try:
                # An error about a value points at the value; a key with a nested block points at the key.
                key_line, _ = node.lc.key(part)
                value = node[part]
                line = key_line if isinstance(value, dict | list) else node.lc.value(part)[0]
            except (KeyError, TypeError, AttributeError):
                pass
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
            try:
                line = node.lc.item(part)[0]
            except (KeyError, TypeError, AttributeError):
                pass
            node = node[part]
        else:
            break
    if line == 0 and isinstance(tree, CommentedMap | CommentedSeq) and not path:
        line = tree.lc.line
    return line + 1


def key_line(tree: Any, path: Sequence[str | int], key: str) -> int:
    """1-based line of `key` inside the mapping at `path`."""
    node = tree
    for part in path:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return line_of(tree, path)
    if isinstance(node, CommentedMap) and key in node:
        return node.lc.key(key)[0] + 1
    return line_of(tree, path)


def content_hash(data: Any) -> str:
    """Stable SHA-256 of a definition's content (key order ignored)."""
    canonical = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def content_key(definition: Any, digest: str | None = None) -> str:
    """What is compiled from a definition is kept by its content hash: `digest` when it is known (a stored
    definition's), else worked out."""
    return digest or content_hash(definition)


def data_problem(data: Any) -> str | None:
    """Why data sent by an editor cannot be written as a definition file, or None: nested past MAX_DEPTH, more than
    MAX_VALUES values, a key that is not text, or text that is not (a lone surrogate). Walked without recursion."""
    stack: list[tuple[Any, int]] = [(data, 0)]
    values = 0
    while stack:
        node, depth = stack.pop()
        values += 1
        if depth > MAX_DEPTH:
            return _too_deep()
        if values > MAX_VALUES:
            return _("more than %(num)s values", num=f"{MAX_VALUES:,}")
        if isinstance(node, dict):
            for key, value in node.items():
                if not isinstance(key, str) or not _encodable(key):
                    return _("a key that is not text")
                stack.append((value, depth + 1))
        elif isinstance(node, list):
            stack.extend((value, depth + 1) for value in node)
        elif isinstance(node, str) and not _encodable(node):
            return _("text that is not valid UTF-8")
    return None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True

