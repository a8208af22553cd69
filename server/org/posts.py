"""Posts: who holds which tier over which area or unit, since when — with history kept."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask_babel import gettext as _

from ..audit.service import record_audit
from ..auth.models import User
from ..core.errors import NotFound
from ..definitions.service import current_scheme_data
from ..extensions import db
from .models import Area, Post, Unit


def appoint(scheme_key: str, tier_key: str, holder_name: str, *, area_key: str | None = None,
            unit_key: str | None = None, since: dt.date | None = None, title: str | None = None,
            phone: str | None = None, duties: list[str] | None = None, username: str | None = None,
            actor: Any = None) -> Post:
    """Put someone in a tier over an area (or unit) from a date; the previous holder's post ends the day before.

    Nothing is overwritten: a past month's board and assessment still show who was in charge then.
    """
    data = current_scheme_data(scheme_key) or {}
    if tier_key not in {t["id"] for t in data.get("tiers", [])}:
        raise NotFound(_("The scheme %(key)s has no tier %(tier)s.", key=scheme_key, tier=tier_key))
    area = db.session.scalar(db.select(Area).filter_by(scheme_key=scheme_key, key=area_key)) if area_key else None
    unit = db.session.scalar(db.select(Unit).filter_by(scheme_key=scheme_key, key=unit_key)) if unit_key else None
    if (area_key and area is None) or (unit_key and unit is None):
        raise NotFound(_("No such area or unit."))
    user = db.session.scalar(db.select(User).filter_by(username=username)) if username else None
    since = since or dt.date.today()
    query = db.select(Post).filter_by(scheme_key=scheme_key, tier_key=tier_key, ended_on=None)
    query = query.filter_by(area_id=area.id) if area else query.filter_by(unit_id=unit.id if unit else None)
    for previous in db.session.scalars(query):
        if previous.started_on < since:
            previous.ended_on = since - dt.timedelta(days=1)
            record_audit("post.end", "post", previous.id, user=actor, scheme_key=scheme_key,
                         after={"ended_on": previous.ended_on.isoformat()})
    post = Post(scheme_key=scheme_key, tier_key=tier_key, holder_name=holder_name.strip(), title=title,
                phone=phone, duties=duties, area=area, unit=unit or (area.unit if area else None), user=user,
                started_on=since)
    db.session.add(post)
    db.session.flush()
    record_audit("post.appoint", "post", post.id, user=actor, scheme_key=scheme_key,
                 after={"tier": tier_key, "holder": post.holder_name, "since": since.isoformat()})
    return post
