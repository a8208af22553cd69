"""Read YAML and JSON definition files, keeping line numbers for every key and item."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from .errors import DefinitionError, format_path

YAML_SUFFIXES = (".yaml", ".yml")
DEFINITION_SUFFIXES = (*YAML_SUFFIXES, ".json")
MAX_FILE_BYTES = 2 * 1024 * 1024


@dataclass
class SourceDocument:
    """One parsed file: its display name, raw text, the position-carrying tree and its plain data."""

    file: str
    text: str
    tree: Any = None
    data: Any = None
    errors: list[DefinitionError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def line_of(self, path: Sequence[str | int]) -> int:
        """1-based line of the node at `path`, or of its closest existing ancestor."""
        return line_of(self.tree, path)

    def error(self, path: Sequence[str | int], message: str) -> DefinitionError:
        return DefinitionError(self.file, self.line_of(path), format_path(path), message)


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    return yaml


def parse_text(file: str, text: str) -> SourceDocument:
    """Parse one file's text; syntax errors become DefinitionErrors on the document."""
    doc = SourceDocument(file=file, text=text)
    if len(text.encode("utf-8")) > MAX_FILE_BYTES:
        doc.errors.append(DefinitionError(file, 1, "", f"file is larger than {MAX_FILE_BYTES // 1024} KiB"))
        return doc
    if file.lower().endswith(".json"):
        # json gives exact syntax errors; ruamel then gives the positions (JSON is YAML 1.2).
        try:
            plain = json.loads(text)
        except json.JSONDecodeError as exc:
            doc.errors.append(DefinitionError(file, exc.lineno, "", f"JSON syntax error: {exc.msg}"))
            return doc
        try:
            doc.tree = _yaml().load(text)
        except YAMLError:
            doc.tree = plain
        doc.data = plain
        return doc
    try:
        doc.tree = _yaml().load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = exc.problem or exc.context or "invalid YAML"
        if exc.context and exc.problem and "duplicate key" not in exc.problem:
            problem = f"{exc.context}, {exc.problem}"
        doc.errors.append(DefinitionError(file, line, "", f"YAML syntax error: {problem}"))
        return doc
    except YAMLError as exc:
        doc.errors.append(DefinitionError(file, 1, "", f"YAML syntax error: {exc}"))
        return doc
    doc.data = to_plain(doc.tree)
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
