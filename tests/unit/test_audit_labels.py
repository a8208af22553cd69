"""The audit log speaks words, not codes: every action and object the code records has a label."""

from __future__ import annotations

import re
from pathlib import Path

from server.web.i18n import AUDIT_LABELS, OBJECT_LABELS

SERVER = Path(__file__).resolve().parents[2] / "server"
CALL = re.compile(r'record_audit\(\s*"([a-z_.]+)",\s*"([a-z_]+)"')


def test_every_recorded_action_and_object_has_a_label():
    found = {m.groups() for path in SERVER.rglob("*.py") for m in CALL.finditer(path.read_text("utf-8"))}
    assert len(found) > 30  # the scan sees the calls
    assert sorted(a for a, _o in found if a not in AUDIT_LABELS) == []
    assert sorted(o for _a, o in found if o not in OBJECT_LABELS) == []
