"""Write changed definition data back into its file, keeping the administrator's comments, order and layout.

An editor hands over the whole definition as plain data; `rewrite_source` changes the file's text only where the
data changed, so a change of one value changes one line. ruamel.yaml's round trip keeps comments and order; what
it would write differently from the file even with nothing changed (a long flow list the author wrapped over two
lines, say) is kept as the author wrote it unless the change falls inside it: the text is patched line by line
with what changed between ruamel's writing of the old data and of the new. JSON files are patched the same way.
"""

from __future__ import annotations

import difflib
import io
import json
from collections.abc import Sequence
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from .loader import UTF8_BOM

MAX_PATCHED_LINES = 3_000  # past this, the writer's own text (the largest shipped file has 400 lines)


class RewriteFailed(ValueError):
    """The file cannot be read back as it is (it is not a definition file ruamel can round-trip)."""


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never wrap a long line the author wrote on one
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def _dump(tree: Any) -> str:
    out = io.StringIO()
    _yaml().dump(tree, out)
    return out.getvalue()


def rewrite_source(text: str, data: Any, *, json_file: bool = False) -> str:
    """`text` (a YAML or JSON definition file) rewritten to hold `data`, changed only where the data changed."""
    bom = UTF8_BOM if text.startswith(UTF8_BOM) else ""
    body = text.removeprefix(UTF8_BOM)
    newline = "\r\n" if "\r\n" in body else "\n"
    body = body.replace("\r\n", "\n")
    if json_file:
        try:
            old = json.loads(body)
        except ValueError as exc:
            raise RewriteFailed(str(exc)) from exc
        base, changed = _json_text(old), _json_text(data)
    else:
        try:
            tree = _yaml().load(body)
        except Exception as exc:  # ruamel raises many kinds; any of them means the text cannot be round-tripped
            raise RewriteFailed(str(exc)) from exc
        base = _dump(tree)
        tree = merge_into(tree, data)
        changed = _dump(tree)
    out = patch_lines(body, base, changed)
    if out != changed and not _holds(out, data, json_file):
        out = changed  # the patch went wrong somewhere: the writer's own text is right, if less like the author's
    if not _holds(out, data, json_file):
        raise RewriteFailed("the change cannot be written into this file: edit its source instead")
    return bom + out.replace("\n", newline)


def _holds(text: str, data: Any, json_file: bool) -> bool:
    try:
        read = json.loads(text) if json_file else _plain(_yaml().load(text))
    except Exception:  # noqa: BLE001 - any failure to read it back means the patched text is not to be used
        return False
    return _same(read, data)


def _json_text(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def _same(a: Any, b: Any) -> bool:
    """Equal as definition data: `True` is not `1`, and a string is not a number."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) or (isinstance(a, str) and isinstance(b, str)) if a == b else False


def merge_into(node: Any, data: Any) -> Any:
    """`data` with the nodes of `node` kept wherever they already hold the same value (and so their comments,
    quoting and flow style)."""
    if isinstance(data, (dict, list)) and not data:
        return data  # emptied: written `[]`/`{}`, without the comments that sat among the items
    if isinstance(node, dict) and isinstance(data, dict):
        for key in [k for k in node if k not in data]:
            del node[key]
        for position, (key, value) in enumerate(data.items()):
            if key in node:
                was_block = isinstance(node[key], (dict, list)) and len(node[key]) > 0
                node[key] = merge_into(node[key], value)
                if was_block and not (isinstance(value, (dict, list)) and value) and isinstance(node, CommentedMap):
                    # A comment that sat above the items now gone would be written between the key and its
                    # new value (`[]`, a text), which is no longer YAML.
                    node.ca.items.pop(key, None)
            elif isinstance(node, CommentedMap):
                node.insert(min(position, len(node)), key, value)
            else:
                node[key] = value
        return node
    if isinstance(node, list) and isinstance(data, list):
        return _merge_list(node, data)
    return node if _same(_plain(node), data) else data


def _merge_list(node: list, data: list) -> list:
    if len(node) == len(data) and not _reordered(node, data):
        for i, value in enumerate(data):
            node[i] = merge_into(node[i], value)
        return node
    # Items moved, came or went: keep each old item that the new list still has (matched by its id when items
    # have ids, else by equal content), with the comment that followed it.
    olds = list(node)
    comments = dict(node.ca.items) if isinstance(node, CommentedSeq) else {}
    used: set[int] = set()
    new_items, new_comments = [], {}
    for i, value in enumerate(data):
        match = _find_match(olds, value, used)
        if match is None:
            new_items.append(value)
            continue
        used.add(match)
        new_items.append(merge_into(olds[match], value))
        if match in comments:
            new_comments[i] = comments[match]
    node[:] = new_items
    if isinstance(node, CommentedSeq):
        node.ca.items.clear()
        node.ca.items.update(new_comments)
    return node


def _item_id(value: Any) -> Any:
    return value.get("id") if isinstance(value, dict) else None


def _reordered(node: list, data: list) -> bool:
    ids = [_item_id(v) for v in node]
    return None not in ids and ids != [_item_id(v) for v in data]


def _find_match(olds: Sequence, value: Any, used: set[int]) -> int | None:
    wanted = _item_id(value)
    for i, old in enumerate(olds):
        if i not in used and wanted is not None and _item_id(old) == wanted:
            return i
    for i, old in enumerate(olds):
        if i not in used and _same(_plain(old), value):
            return i
    return None


def _plain(node: Any) -> Any:
    """A ruamel node as plain Python data (its scalars as str, int, float, bool)."""
    if isinstance(node, dict):
        return {k: _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, bool) or node is None:
        return node
    for plain in (int, float, str):
        if isinstance(node, plain):
            return plain(node)
    return node


def patch_lines(original: str, base: str, changed: str) -> str:
    """`original` with the line changes that turn `base` into `changed`.

    `base` is how the writer puts `original`'s data (mostly the very same lines); where it differs, the
    original's lines are kept unless a change falls among them.
    """
    if base == changed:
        return original
    if base == original:
        return changed
    o, b, c = original.splitlines(keepends=True), base.splitlines(keepends=True), changed.splitlines(keepends=True)
    if max(len(o), len(b), len(c)) > MAX_PATCHED_LINES:
        return changed  # aligning is quadratic at worst: a file this long gets the writer's text (comments kept)
    # Cut points: places in `base` that are a boundary both of its alignment with the original and of the change.
    to_original: dict[int, int] = {}
    inside: set[int] = set()
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, o, b, autojunk=False).get_opcodes():
        if tag == "equal":
            for k in range(j2 - j1 + 1):
                to_original[j1 + k] = i1 + k
        else:
            to_original.setdefault(j1, i1)
            if j2:  # lines only the original has, at the very start, belong to what follows them
                to_original[j2] = i2
            inside.update(range(j1 + 1, j2))
    to_changed: dict[int, int] = {}
    for tag, j1, j2, k1, k2 in difflib.SequenceMatcher(None, b, c, autojunk=False).get_opcodes():
        if tag == "equal":
            for k in range(j2 - j1 + 1):
                to_changed.setdefault(j1 + k, k1 + k)
        else:
            inside.update(range(j1 + 1, j2))
            to_changed.setdefault(j1, k1)
            if j2:  # lines added at the very start belong to what follows them
                to_changed[j2] = k2
    cuts = sorted(p for p in to_original.keys() & to_changed.keys() if p not in inside)
    if not cuts or cuts[0] != 0 or cuts[-1] != len(b):
        return changed
    out: list[str] = []
    for start, end in zip(cuts, cuts[1:], strict=False):
        base_part = b[start:end]
        changed_part = c[to_changed[start]:to_changed[end]]
        out += o[to_original[start]:to_original[end]] if changed_part == base_part else changed_part
    return "".join(out)
