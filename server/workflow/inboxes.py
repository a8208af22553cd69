"""A person's work: the inbox's boxes within their reach, and their notifications."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from ..auth import permissions
from ..core.database import utcnow
from ..extensions import db
from .models import Case, CaseDeadline, Notification

if TYPE_CHECKING:
    from ..auth.models import AnyUser


def inbox(user: AnyUser, scheme_key: str, box: str, limit: int = 200) -> list[Case]:
    """mine | unit | due_soon | overdue — open cases within the user's scope."""
    query = db.select(Case).where(Case.scheme_key == scheme_key, Case.state_kind != "final")
    if box == "mine":
        query = query.where((Case.assignee_id == user.id) | (Case.reporter_id == user.id))
    else:
        wide = permissions.case_list_reach(user, scheme_key)
        if not wide.district_wide:
            query = query.where(within_reach(wide))
        if box == "due_soon":
            soon = utcnow() + dt.timedelta(days=1)
            query = query.where(Case.id.in_(db.select(CaseDeadline.case_id).where(
                CaseDeadline.stopped_at.is_(None), CaseDeadline.due_at <= soon, CaseDeadline.due_at >= utcnow())))
        elif box == "overdue":
            query = query.where(Case.overdue.is_(True) | Case.id.in_(db.select(CaseDeadline.case_id).where(
                CaseDeadline.stopped_at.is_(None), CaseDeadline.due_at < utcnow())))
    return list(db.session.scalars(query.order_by(Case.id.desc()).limit(limit)))


def within_reach(scope: permissions.Scope):  # noqa: ANN202
    """SQL condition: cases of the units or the areas a (non-district) scope reaches."""
    units, areas = list(scope.unit_ids or []) or [-1], list(scope.area_ids or []) or [-1]
    return Case.unit_id.in_(units) | Case.area_id.in_(areas)


def notifications_for(user: AnyUser, limit: int = 50) -> list[Notification]:
    unit_ids = [a.unit_id for a in user.roles if a.unit_id] + [p.unit_id for p in user.posts if p.unit_id]
    mine = (Notification.user_id == user.id) | Notification.unit_id.in_(unit_ids or [-1])
    query = db.select(Notification).where(mine)
    return list(db.session.scalars(query.order_by(Notification.id.desc()).limit(limit)))
