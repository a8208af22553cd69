"""Ten different mistakes planted in a copy of the demo scheme: all reported in one run, nothing stored."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from server.definitions.models import DefinitionVersion, SchemeVersion
from server.extensions import db
from tests.support.factories import DEMO, ROOT


def plant(path: Path, old: str, new: str, at: str | None = None):
    """Replace the first `old` with `new`; return a function giving the line of `at` (default: `new`) then."""
    text = path.read_text("utf-8")
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1), "utf-8")
    marker = at or new

    def line() -> int:
        final = path.read_text("utf-8")
        assert final.count(marker) == 1, marker
        return final[: final.index(marker)].count("\n") + 1

    return line


@pytest.fixture
def broken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    folder = tmp_path / "schemes" / "lidu"
    shutil.copytree(DEMO, folder)
    # The district's own copy of the built-in workflow, to plant workflow mistakes in.
    shutil.copy(ROOT / "workflow_definitions" / "discover_assign_rectify_close.yaml", folder / "workflow.yaml")
    monkeypatch.chdir(tmp_path)
    s, w = folder / "scheme.yaml", folder / "workflow.yaml"
    sheet, board = folder / "score_sheet.yaml", folder / "board.yaml"
    expected = [
        # (file, line, path or None, message fragment)
        # the parser notices the unclosed list on the next line, and says so there
        ("board.yaml", plant(board, "tiers: [main_leader, deputy_leader, community_head, segment_keeper]",
                             "tiers: [main_leader, deputy_leader\nshow_more: yes", at="show_more: yes"),
         None, "YAML syntax error"),
        ("scheme.yaml", plant(s, "at_least: 2", "at_least: twice"), "patrol_rules[1].at_least",
         "expected a whole number, got 'twice'"),
        ("scheme.yaml", plant(s, "    held_by: {zh: 办事处主任", "    hold_by: {zh: 办事处主任"), "tiers[0].hold_by",
         "unknown field 'hold_by' (did you mean 'held_by'?)"),
        ("scheme.yaml", plant(s, "      - id: zhiyuan\n        kind: community\n        name: {zh: 致远社区, ",
                              "      - id: zhiyuan\n        kind: community\n        title: {zh: 致远社区, ",
                              at="      - id: zhiyuan\n"),
         "units[0].children[4]", "missing required field 'name'"),
        ("scheme.yaml", plant(s, "per: week", "per: fortnight"), "patrol_rules[0].per",
         "'fortnight' is not one of 'day', 'week', 'half_month', 'month', 'quarter', 'year'"),
        ("scheme.yaml", plant(s, "reports_to: main_leader", "reports_to: main_leadr"), "tiers[1].reports_to",
         "unknown tier 'main_leadr' (did you mean 'main_leader'?)"),
        ("scheme.yaml", plant(s, "      - id: longqiao\n        kind: community\n        name: {zh: 龙桥社区",
                              "      - id: duanqiao\n        kind: community\n        name: {zh: 龙桥社区"),
         "units[0].children[7].id", "duplicate unit id 'duanqiao'"),
        ("workflow.yaml", plant(w, "  - id: rejected\n", "  - id: archived\n    name: 归档\n    kind: final\n"
                                "  - id: rejected\n", at="  - id: archived\n"),
         re.compile(r"states\[\d+\]\.id"), "state 'archived' cannot be reached"),
        ("score_sheet.yaml", plant(sheet, "count: max(1 - hotspots, 0)", "count: max(1 - hotspot, 0)"),
         re.compile(r"sections\[1\]\.items\[2\]\.rules\[0\]\.count"),
         "unknown name 'hotspot' (did you mean 'hotspots'?)"),
        ("workflow.yaml", plant(w, "working_days: 1 if coalesce(size_m3, 0) < 3 else 3", "working_days: 2 ** 10"),
         "deadlines[0].working_days", "the power operator '**' is not allowed"),
    ]
    return folder, [(file, line(), path, fragment) for file, line, path, fragment in expected]


def test_all_ten_mistakes_in_one_run_and_nothing_stored(ctx, broken):
    folder, expected = broken
    result = ctx.test_cli_runner().invoke(args=["scheme", "load", str(folder)])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    for file, line, path, fragment in expected:
        prefix = f"schemes/lidu/{file} line {line}: "
        matching = [x for x in lines if x.startswith(prefix) and fragment in x]
        if isinstance(path, re.Pattern):
            matching = [x for x in matching if path.search(x)]
        elif path is not None:
            matching = [x for x in matching if x.startswith(f"{prefix}{path}: ")]
        assert matching, f"not reported: {prefix}{path}: …{fragment}…\n" + result.output
    assert "nothing was stored" in result.output
    assert db.session.scalar(db.select(db.func.count(DefinitionVersion.id))) == 0
    assert db.session.scalar(db.select(db.func.count(SchemeVersion.id))) == 0


def test_the_same_copy_without_mistakes_loads(ctx, tmp_path, monkeypatch):
    folder = tmp_path / "schemes" / "lidu"
    shutil.copytree(DEMO, folder)
    monkeypatch.chdir(tmp_path)
    result = ctx.test_cli_runner().invoke(args=["scheme", "load", str(folder)])
    assert result.exit_code == 0, result.output
    assert db.session.scalar(db.select(db.func.count(SchemeVersion.id))) == 1
