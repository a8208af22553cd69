"""Moving open cases to a newer version of their workflow."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask_babel import gettext as _

from ..audit.service import record_audit
from ..auth import permissions
from ..core.database import utcnow
from ..core.errors import Conflict, PermissionDenied
from ..definitions.models import DefinitionVersion
from ..extensions import db
from . import engine
from .models import Case, CaseEvent
from .service import workflow_version

if TYPE_CHECKING:
    from ..auth.models import AnyUser


def migration_preview(scheme_key: str, workflow_key: str, mapping: dict[str, str] | None = None
                      ) -> tuple[DefinitionVersion, list[dict[str, Any]]]:
    """Open cases of a workflow kept on older versions, each with the state it would take in the version in force.

    States with the same id map to themselves; `mapping` names the others (old id → new id).
    """
    target = workflow_version(scheme_key, workflow_key)
    spec = engine.workflow_spec_of(target)
    mapping = mapping or {}
    cases = db.session.scalars(db.select(Case).where(
        Case.scheme_key == scheme_key, Case.workflow_key == workflow_key, Case.state_kind != "final",
        Case.definition_version_id != target.id).order_by(Case.id))
    rows = []
    for case in cases:
        new_state = mapping.get(case.state) or (case.state if case.state in spec.states else None)
        rows.append({"case": case, "old": case.state, "new": new_state if new_state in spec.states else None})
    return target, rows


def migrate_cases(user: AnyUser, scheme_key: str, workflow_key: str, mapping: dict[str, str] | None = None) -> int:
    """Move every open case of a workflow to the version in force; refuses if any state has no mapping."""
    if not permissions.can_manage_scheme(user, scheme_key) and not getattr(user, "is_admin", False):
        raise PermissionDenied(_("You may not migrate cases of this district."))
    target, rows = migration_preview(scheme_key, workflow_key, mapping)
    unmapped = sorted({r["old"] for r in rows if r["new"] is None})
    if unmapped:
        raise Conflict(_("Say which state these become first: %(states)s", states=", ".join(unmapped)))
    spec = engine.workflow_spec_of(target)
    now = utcnow()
    for row in rows:
        case = row["case"]
        before = {"version": case.definition_version_id, "state": case.state}
        case.definition_version_id, case.state = target.id, row["new"]
        case.state_kind = spec.kind_of(row["new"])
        for deadline in case.deadlines:  # the new version's escalations: the next tick looks at each anew
            if deadline.stopped_at is None:
                deadline.check_at = deadline.started_at
        case.events.append(CaseEvent(kind="migrated", user_id=getattr(user, "id", None), from_state=row["old"],
                                     to_state=row["new"], at=now, changes=before))
        record_audit("case.migrate", "case", case.id, user=user, scheme_key=scheme_key, before=before,
                     after={"version": target.id, "state": row["new"]})
    db.session.flush()
    return len(rows)
