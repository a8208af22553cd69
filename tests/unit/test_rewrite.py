"""Writing edited definition data back into its file: one value changed changes one line, comments kept."""

from __future__ import annotations

import copy
import difflib
import json

import pytest

from server.definitions.rewrite import merge_into, patch_lines, rewrite_source
from tests.support.factories import ROOT

SCHEME = (ROOT / "schemes/lidu/scheme.yaml").read_text("utf-8")


def _plain(text: str):
    from ruamel.yaml import YAML

    return json.loads(json.dumps(YAML(typ="safe").load(text)))


def _changes(old: str, new: str) -> list[str]:
    return [line for line in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0)
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]


@pytest.mark.parametrize("path", sorted([*ROOT.glob("schemes/*/*.yaml"), *ROOT.glob("*_definitions/*.yaml")]),
                         ids=lambda p: p.name)
def test_unchanged_data_gives_the_file_back_as_it_was(path):
    text = path.read_text("utf-8")
    assert rewrite_source(text, _plain(text)) == text


def test_one_value_changes_one_line():
    data = _plain(SCHEME)
    data["patrol_rules"][1]["at_least"] = 3
    assert _changes(SCHEME, rewrite_source(SCHEME, data)) == ["-    at_least: 2", "+    at_least: 3"]


def test_a_long_list_the_author_wrapped_stays_wrapped_unless_it_changes():
    data = _plain(SCHEME)
    wrapped = next(r for r in data["roles"] if len(r.get("capabilities", [])) > 10)
    data["patrol_rules"][0]["at_least"] = 2
    out = rewrite_source(SCHEME, data)
    assert len(_changes(SCHEME, out)) == 2  # the wrapped capability lists are untouched
    wrapped["capabilities"].append("case.report")
    out = rewrite_source(SCHEME, data)
    assert _plain(out) == data
    assert sum(1 for line in _changes(SCHEME, out) if line.startswith("-")) == 4  # that list (3 lines) and at_least


def test_items_moved_keep_their_comments_and_new_items_are_added_where_they_belong():
    text = "kind: form\nid: f\nfields:\n  - id: a  # first\n    type: text\n  - id: b\n    type: text\n"
    data = _plain(text)
    data["fields"].reverse()
    data["fields"].insert(1, {"id": "c", "type": "integer"})
    out = rewrite_source(text, data)
    assert _plain(out) == data
    assert "  - id: a  # first" in out


def test_byte_order_mark_and_windows_line_ends_are_kept():
    text = "\ufeffkind: form\r\nid: f  # the id\r\nname: 甲\r\n"
    out = rewrite_source(text, {"kind": "form", "id": "f", "name": "乙"})
    assert out == "\ufeffkind: form\r\nid: f  # the id\r\nname: 乙\r\n"


def test_json_files_are_patched_the_same_way():
    text = '{\n  "kind": "form",\n  "id": "f",\n  "name": "甲"\n}\n'
    assert rewrite_source(text, {"kind": "form", "id": "f", "name": "乙"}, json_file=True) == text.replace("甲", "乙")


def test_true_is_not_one():
    tree = {"a": 1}
    assert merge_into(copy.deepcopy(tree), {"a": True}) == {"a": True}


def test_patch_lines_falls_back_to_the_writer_when_nothing_aligns():
    assert patch_lines("x\n", "y\n", "z\n") == "z\n"


def test_a_list_emptied_loses_the_comments_among_its_items():
    text = "kind: scheme\nid: s\nunits:\n  - id: a\n    children:\n      # the squads\n      - id: b\n"
    data = {"kind": "scheme", "id": "s", "units": [{"id": "a", "children": []}]}
    out = rewrite_source(text, data)
    assert _plain(out) == data and "children: []" in out
