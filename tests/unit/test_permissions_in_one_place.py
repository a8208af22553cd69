"""Every permission in one place: no capability string in the code or templates outside `auth/permissions.py`.

Services and views call the named `can_<verb>_<noun>` functions (and the `*_reach` functions for lists);
only `server/auth/permissions.py` says which capability a check needs. The capability names are read from
the scheme schema, so a capability added there is guarded too. Workflow definitions naming capabilities in
`who:` are data, and the schema and docs may name them.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from server.auth import permissions

ROOT = Path(__file__).resolve().parents[2]
SERVER = ROOT / "server"
PERMISSIONS = SERVER / "auth" / "permissions.py"
# Audit actions name events, not capabilities; a few share a capability's name ("form.submit").
AUDIT_CALL = "record_audit"
AUDIT_TABLE = "AUDIT_LABELS"


def schema_capabilities() -> frozenset[str]:
    schema = json.loads((SERVER / "definitions" / "schemas" / "scheme.json").read_text(encoding="utf-8"))
    return frozenset(schema["$defs"]["capability"]["enum"])


def _audit_names(tree: ast.AST) -> set[int]:
    """ids of the string nodes that name an audit action: `record_audit`'s first argument, the label table's keys."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
            if name == AUDIT_CALL:
                out.add(id(node.args[0]))
        elif isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(node.value, ast.Dict):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == AUDIT_TABLE for t in targets):
                out |= {id(k) for k in node.value.keys if k is not None}
    return out


def python_offences(source: str, capabilities: frozenset[str]) -> list[tuple[int, str]]:
    """(line, capability) for each string literal in the source that is a capability's name."""
    tree = ast.parse(source)
    audit = _audit_names(tree)
    return sorted((node.lineno, node.value) for node in ast.walk(tree)
                  if isinstance(node, ast.Constant) and isinstance(node.value, str)
                  and node.value in capabilities and id(node) not in audit)


def template_offences(source: str, capabilities: frozenset[str]) -> list[tuple[int, str]]:
    """(line, capability) for each quoted capability name in a template."""
    names = "|".join(re.escape(c) for c in sorted(capabilities))
    pattern = re.compile(rf"""(["'])({names})\1""")
    return [(number, m.group(2)) for number, line in enumerate(source.splitlines(), 1)
            for m in pattern.finditer(line)]


def test_no_capability_string_outside_permissions():
    capabilities = schema_capabilities()
    found = []
    for path in sorted(SERVER.rglob("*.py")):
        if path != PERMISSIONS:
            text = path.read_text(encoding="utf-8")
            found += [(path, line, cap) for line, cap in python_offences(text, capabilities)]
    for folder in (SERVER, ROOT / "themes"):
        for path in sorted(folder.rglob("*.html")):
            text = path.read_text(encoding="utf-8")
            found += [(path, line, cap) for line, cap in template_offences(text, capabilities)]
    listed = "\n".join(f"{path.relative_to(ROOT)}:{line}: {cap}" for path, line, cap in found)
    assert not found, f"capability strings outside server/auth/permissions.py (add a can_… function there):\n{listed}"


def test_the_scan_finds_a_check_and_passes_an_audit_action():
    capabilities = schema_capabilities()
    source = '''
if scope.has("case.report") or scope.only('form.view_all').district_wide:
    record_audit("form.submit", "submission", 1)
AUDIT_LABELS = {"assessment.publish": "published"}
WHO = {"assessment.publish"}
"""A docstring naming `case.handle` in prose is fine."""
'''
    assert python_offences(source, capabilities) == [(2, "case.report"), (2, "form.view_all"),
                                                      (5, "assessment.publish")]
    template = """{% if scope.has('dashboard.view') %}<a href="{{ url_for('org.units') }}">{% endif %}
"board.manage" """
    assert template_offences(template, capabilities) == [(1, "dashboard.view"), (2, "board.manage")]


def test_permissions_know_every_capability_of_the_schema():
    assert set(permissions.CAPABILITIES) == schema_capabilities()
