"""Posts: who holds which tier over which area or unit, since when — with history kept."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from flask_babel import gettext as _

from ..audit.service import record_audit
from ..auth import permissions
from ..auth.models import User
from ..core.errors import NotFound, PermissionDenied
from ..definitions.clock import district_today
from ..definitions.service import scheme_in_force
from ..extensions import db
from .engine import PostState, PostValues, appointment_problems, post_problems, several_tiers, tier_problems
from .models import Area, Post, Unit

if TYPE_CHECKING:
    from ..auth.models import AnyUser


def appoint(scheme_key: str, tier_key: str, holder_name: str, *, area_key: str | None = None,
            unit_key: str | None = None, since: dt.date | None = None, title: str | None = None,
            phone: str | None = None, duties: list[str] | None = None, username: str | None = None,
            actor: AnyUser = None, key: str | None = None) -> Post:
    """Put someone in a tier over an area (or unit) from a date; the previous holder's post ends the day before.

    Nothing is overwritten: a past month's board and assessment still show who was in charge then. `key` names
    the post (patrol rules may bind named posts); a successor keeps the name of the post they take over.
    """
    scheme = scheme_in_force(scheme_key)
    if scheme is None or tier_key not in scheme.tiers:
        raise NotFound(_("The scheme %(key)s has no tier %(tier)s.", key=scheme_key, tier=tier_key))
    area = db.session.scalar(db.select(Area).filter_by(scheme_key=scheme_key, key=area_key)) if area_key else None
    unit = db.session.scalar(db.select(Unit).filter_by(scheme_key=scheme_key, key=unit_key)) if unit_key else None
    if (area_key and area is None) or (unit_key and unit is None):
        raise NotFound(_("No such area or unit."))
    from .service import OrgInvalid, org_index

    # The same rule as the page's: a tier is held only over the area and unit kinds it names.
    problems = tier_problems(PostValues(tier_key, holder_name, area_key, unit_key), scheme.data, org_index(scheme_key))
    if problems:
        raise OrgInvalid(problems)
    user = db.session.scalar(db.select(User).filter_by(username=username)) if username else None
    since = since or district_today(scheme_key)
    # Posts still running on `since` end the day before, also those already due to end later.
    query = db.select(Post).filter_by(scheme_key=scheme_key, tier_key=tier_key).where(
        Post.ended_on.is_(None) | (Post.ended_on >= since))
    if tier_key in scheme.several_tiers:  # the others holding the tier there stay
        query = query.filter_by(holder_name=holder_name.strip())
    # A post over a unit is not a post over one of the unit's areas: each has its own history.
    query = (query.filter_by(area_id=area.id) if area
             else query.filter_by(unit_id=unit.id if unit else None, area_id=None))
    for previous in db.session.scalars(query):
        if previous.started_on < since:
            key = key or previous.key
            previous.ended_on = since - dt.timedelta(days=1)
            record_audit("post.end", "post", previous.id, user=actor, scheme_key=scheme_key,
                         after={"ended_on": previous.ended_on.isoformat()})
    post = Post(scheme_key=scheme_key, key=key, tier_key=tier_key, holder_name=holder_name.strip(), title=title,
                phone=phone, duties=duties, area=area, unit=unit or (area.unit if area else None), user=user,
                started_on=since)
    db.session.add(post)
    db.session.flush()
    record_audit("post.appoint", "post", post.id, user=actor, scheme_key=scheme_key,
                 after={"tier": tier_key, "holder": post.holder_name, "since": since.isoformat()})
    return post


def latest_post(scheme_key: str, tier_key: str, area: Area | None, unit: Unit | None,
                holder_name: str | None = None) -> Post | None:
    """The most recent post of a tier over an area (or, with no area, over a unit), ended or not.

    For a tier several people hold at once, `holder_name` picks that person's.
    """
    query = db.select(Post).filter_by(scheme_key=scheme_key, tier_key=tier_key)
    if holder_name is not None:
        query = query.filter_by(holder_name=holder_name)
    query = query.filter_by(area_id=area.id) if area else query.filter_by(unit_id=unit.id if unit else None,
                                                                          area_id=None)
    return db.session.scalar(query.order_by(Post.started_on.desc(), Post.id.desc()).limit(1))


def get_managed_post(user: AnyUser, post_id: int) -> Post:
    """A post the user may change."""
    from .service import get_post

    post = get_post(user, post_id)
    if not permissions.can_manage_post(user, post):
        raise PermissionDenied(_("You may not change this post."))
    return post


def post_state(post: Post) -> PostState:
    return PostState(id=post.id, holder_name=post.holder_name, started_on=post.started_on, ended_on=post.ended_on,
                     username=post.user.username if post.user else None, title=post.title, phone=post.phone,
                     duties=tuple(post.duties or ()), unit=post.unit.key if post.unit else None)


def appoint_post(user: AnyUser, scheme_key: str, values: PostValues, today: dt.date | None = None) -> Post:
    """Appoint a holder over an area or unit the user manages; the previous holder's post ends, kept as history."""
    from .service import OrgInvalid, org_index, scheme_or_404

    if not permissions.can_manage_org_in(user, scheme_key):
        raise PermissionDenied(_("You may not appoint anyone there."))
    data = scheme_or_404(scheme_key).data
    area = db.session.scalar(db.select(Area).filter_by(scheme_key=scheme_key, key=values.area)) if values.area else None
    unit = db.session.scalar(db.select(Unit).filter_by(scheme_key=scheme_key, key=values.unit)) if values.unit else None
    if (area is not None or unit is not None) and not permissions.can_appoint_post(user, scheme_key, area, unit):
        raise PermissionDenied(_("You may not appoint anyone there."))
    if values.username and not permissions.can_link_account(user, scheme_key, values.tier):
        raise PermissionDenied(_("Only the district's organisation managers may link an account to this tier."))
    today = today or district_today(scheme_key)
    index = org_index(scheme_key)
    problems = post_problems(values, data, index, _usernames([values.username]))
    if not problems:
        problems = tier_problems(values, data, index)
    if not problems:
        latest = latest_post(scheme_key, values.tier, area, unit,
                             values.holder_name if values.tier in several_tiers(data) else None)
        problems = appointment_problems(values, post_state(latest) if latest else None, today)
    if problems:
        raise OrgInvalid(problems)
    post = appoint(scheme_key, values.tier, values.holder_name, area_key=values.area, unit_key=values.unit,
                   since=values.started_on or today, title=values.title or None, phone=values.phone or None,
                   duties=list(values.duties) or None, username=values.username or None, actor=user)
    if values.ended_on is not None:
        post.ended_on = values.ended_on
    return post


def _usernames(names: list[str | None]) -> set[str]:
    wanted = [n for n in names if n]
    if not wanted:
        return set()
    return set(db.session.scalars(db.select(User.username).where(User.username.in_(wanted))))


def edit_post(user: AnyUser, post: Post, *, title: str | None, phone: str | None, duties: list[str],
              username: str | None) -> Post:
    """Correct the contact, title, duties or account of a post that has not ended."""
    from .service import OrgInvalid

    if not permissions.can_manage_post(user, post):
        raise PermissionDenied(_("You may not change this post."))
    if post.ended_on is not None and post.ended_on < district_today(post.scheme_key):
        raise OrgInvalid({"title": _("This post has ended: it stays as it was.")})
    account = None
    if username:
        account = db.session.scalar(db.select(User).filter_by(username=username))
        if account is None:
            raise OrgInvalid({"username": _("There is no user %(name)s.", name=username)})
        if account != post.user and not permissions.can_link_account(user, post.scheme_key, post.tier_key):
            raise PermissionDenied(_("Only the district's organisation managers may link an account to this tier."))
    before, after = _apply_post(post, title=title or None, phone=phone or None, duties=list(duties) or None,
                                user=account)
    if after:
        db.session.flush()
        record_audit("post.edit", "post", post.id, user=user, scheme_key=post.scheme_key, before=before,
                     after=after)
    return post


def _apply_post(post: Post, **wanted: Any) -> tuple[dict, dict]:
    before, after = {}, {}
    for name, value in wanted.items():
        old = getattr(post, name)
        if name == "duties":
            old, value = old or None, value or None
        if old != value:
            before[name], after[name] = _shown(old), _shown(value)
            setattr(post, name, value)
    return before, after


def _shown(value: Any) -> Any:
    """A value as the audit log stores it (JSON)."""
    if isinstance(value, User):
        return value.username
    return value.isoformat() if isinstance(value, dt.date) else value


def end_post(user: AnyUser, post: Post, on: dt.date) -> Post:
    """End a post on a day (its last day); the post stays in the history."""
    from .service import OrgInvalid

    if not permissions.can_manage_post(user, post):
        raise PermissionDenied(_("You may not change this post."))
    if on < post.started_on:
        raise OrgInvalid({"ended_on": _("The post cannot end before it starts.")})
    if post.ended_on is not None and post.ended_on < district_today(post.scheme_key):
        raise OrgInvalid({"ended_on": _("This post has ended: it stays as it was.")})
    later_query = db.select(Post).where(
        Post.scheme_key == post.scheme_key, Post.tier_key == post.tier_key, Post.id != post.id,
        Post.area_id == post.area_id if post.area_id else (Post.unit_id == post.unit_id) & Post.area_id.is_(None),
        Post.started_on > post.started_on)
    scheme = scheme_in_force(post.scheme_key)
    if scheme is not None and post.tier_key in scheme.several_tiers:
        later_query = later_query.where(Post.holder_name == post.holder_name)  # the others hold it alongside
    later = db.session.scalar(later_query.order_by(Post.started_on).limit(1))
    if later is not None and on >= later.started_on:
        raise OrgInvalid({"ended_on": _("%(name)s takes over on %(day)s: end this post before then.",
                                        name=later.holder_name, day=later.started_on.isoformat())})
    before, after = _apply_post(post, ended_on=on)
    if after:
        db.session.flush()
        record_audit("post.end", "post", post.id, user=user, scheme_key=post.scheme_key, before=before, after=after)
    return post
