"""Write audit entries; services call this inside their own transaction so both commit together."""

from __future__ import annotations

from typing import Any

from ..extensions import db
from .models import AuditEntry


def record_audit(action: str, obj_type: str, obj_id: Any, *, user: Any = None, scheme_key: str | None = None,
                 before: dict | None = None, after: dict | None = None) -> AuditEntry:
    """Add an audit entry to the current transaction."""
    entry = AuditEntry(action=action, object_type=obj_type, object_id=None if obj_id is None else str(obj_id),
                       user_id=getattr(user, "id", None), scheme_key=scheme_key, before=before, after=after)
    db.session.add(entry)
    return entry


def list_audit(*, scheme_keys: set[str] | None, limit: int = 200) -> list[AuditEntry]:
    """Latest entries; `scheme_keys=None` means all schemes."""
    query = db.select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if scheme_keys is not None:
        query = query.where(AuditEntry.scheme_key.in_(scheme_keys))
    return list(db.session.scalars(query))
