"""Patrol-rule compliance counted in SQL, the leaders' view of who is short, and inbox reminders.

One query per rule: the rule's counting days become a `VALUES` table (each local day with its UTC bounds and
its period), the people or units it binds are joined to the days they were bound, and their records of the
rule's form are counted per period. Posts keep their history, so a past month is judged against the chiefs
in office then: a chief replaced mid-month owes a share of the month and the successor the rest.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask_babel import gettext as _
from sqlalchemy import (
    Date,
    Integer,
    and_,
    case,
    cast,
    column,
    distinct,
    func,
    inspect,
    literal,
    null,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy import values as sql_values
from sqlalchemy.orm import aliased, load_only
from sqlalchemy.orm.attributes import set_committed_value

from ..audit.service import change_stamp
from ..auth import permissions
from ..auth.models import RoleAssignment, User
from ..core.cache import memoize
from ..core.database import UtcDateTime
from ..core.errors import NotFound, PermissionDenied
from ..core.memory import collector_paused
from ..definitions.clock import district_today, district_zone
from ..definitions.service import compiled_scheme, current_version, scheme_in_force, scheme_or_404
from ..extensions import db
from ..forms.models import Submission
from ..forms.service import record_stored
from ..org.models import Area, Post, Unit
from . import engine
from .engine import CountingDay, Rule, Verdict

if TYPE_CHECKING:
    from ..auth.models import AnyUser


def rules_of(scheme_key: str) -> list[Rule]:
    """The patrol rules in force: the scheme's own and those of its patrol-rule files."""
    version = current_version(scheme_key)
    if version is None:
        return []
    files = [row.data.get("rules", []) for row in version.members if row.kind == "patrol_rules"]
    return engine.rules_from(compiled_scheme(version.scheme_definition).data, files)


def rule_of(scheme_key: str, rule_id: str) -> Rule:
    for rule in rules_of(scheme_key):
        if rule.id == rule_id:
            return rule
    raise NotFound(_("No such patrol rule."))


def _slices(zone: Any, days: list[CountingDay], periods: list[engine.Period]) -> Any:
    """The counting days as a VALUES table: period index, local day, and its bounds in UTC."""
    index = {p: i for i, p in enumerate(periods)}
    rows = []
    for d in days:
        starts = dt.datetime.combine(d.day, dt.time(), zone).astimezone(dt.UTC)
        ends = dt.datetime.combine(d.day + dt.timedelta(days=1), dt.time(), zone).astimezone(dt.UTC)
        rows.append((index[d.period], d.day, starts, ends))
    table = sql_values(column("period", Integer), column("day", Date), column("starts", UtcDateTime()),
                       column("ends", UtcDateTime()), name="slices").data(rows)
    return table.cte("slices")


def _hits(scheme_key: str, rule: Rule, slices: Any, days: list[CountingDay], zone: Any,
          user_ids: set[int] | None) -> Any:
    """The rule's records that fall on a counting day, with that day and the path of their area.

    `user_ids` keeps those of a few people (a rule for the general chiefs, one person's reminders). For
    many people one pass over the period is faster: PostgreSQL would walk the records person by person.
    """
    record_area = aliased(Area)
    first = dt.datetime.combine(days[0].day, dt.time(), zone).astimezone(dt.UTC)
    last = dt.datetime.combine(days[-1].day + dt.timedelta(days=1), dt.time(), zone).astimezone(dt.UTC)
    return (select(Submission.id.label("sid"), Submission.user_id.label("user_id"),
                   Submission.unit_id.label("unit_id"), slices.c.day, record_area.path.label("area_path"))
            .join(slices, and_(Submission.occurred_at >= slices.c.starts, Submission.occurred_at < slices.c.ends))
            .outerjoin(record_area, record_area.id == Submission.area_id)
            .where(Submission.scheme_key == scheme_key, Submission.form_key == rule.form,
                   Submission.occurred_at >= first, Submission.occurred_at < last,
                   true() if user_ids is None else Submission.user_id.in_(user_ids or [-1]))
            .subquery("hits"))


def _bound(scheme_key: str, rule: Rule, user_id: int | None = None) -> Any:
    """Who a person rule binds: posts of its tiers, named posts or unit kinds (with their dates), and roles."""
    post_filters = []
    if rule.tiers:
        post_filters.append(Post.tier_key.in_(rule.tiers))
    if rule.posts:
        post_filters.append(Post.key.in_(rule.posts))
    if rule.unit_kinds:
        post_filters.append(Post.unit_id.in_(select(Unit.id).where(Unit.scheme_key == scheme_key,
                                                                   Unit.kind.in_(rule.unit_kinds))))
    parts = []
    if post_filters:
        parts.append(select(Post.id.label("post_id"), Post.user_id, Post.area_id, Post.unit_id, Post.started_on,
                            Post.ended_on).where(Post.scheme_key == scheme_key, or_(*post_filters),
                                                 true() if user_id is None else Post.user_id == user_id))
    if rule.roles:
        # Typed NULLs: PostgreSQL will not compare an untyped one with an integer column.
        parts.append(select(literal(None, Integer).label("post_id"), RoleAssignment.user_id,
                            literal(None, Integer).label("area_id"),
                            RoleAssignment.unit_id, literal(None, Date).label("started_on"),
                            literal(None, Date).label("ended_on"))
                     .where(RoleAssignment.scheme_key == scheme_key, RoleAssignment.role_key.in_(rule.roles),
                            true() if user_id is None else RoleAssignment.user_id == user_id))
    if not parts:
        return None
    return (parts[0] if len(parts) == 1 else union_all(*parts)).subquery("bound")


def _count_people(scheme_key: str, rule: Rule, slices: Any, hits: Any, bound: Any) -> list[tuple]:
    """(user_id, post_id, focus area id, period index, days bound, records) per person (or post) and period."""
    post_area = aliased(Area)
    held = and_(or_(bound.c.started_on.is_(None), bound.c.started_on <= slices.c.day),
                or_(bound.c.ended_on.is_(None), bound.c.ended_on >= slices.c.day))
    if rule.where == "each":
        keys = [bound.c.user_id.label("uid"), bound.c.post_id.label("pid")]
    else:  # one count per person; a post nobody has an account for stands alone
        keys = [bound.c.user_id.label("uid"),
                case((bound.c.user_id.is_(None), bound.c.post_id), else_=null()).label("pid")]
    query = select(*keys)
    if rule.where == "focus_points":
        focus = aliased(Area)
        query = query.add_columns(focus.id.label("fid")).join(
            focus, and_(focus.scheme_key == scheme_key, focus.key.in_(rule.focus_points)))
        place = hits.c.area_path.like(focus.path + "%")
    else:
        query = query.add_columns(null().label("fid"))
        # In their areas (a road's segments included); a post over a whole unit counts records anywhere.
        place = or_(bound.c.area_id.is_(None), hits.c.area_path.like(post_area.path + "%"))
    # A record can meet a person through two of their posts on one day (areas inside areas): count it once.
    # Each post on its own meets a record at most once a day, and a plain count lets the database hash.
    # (A person holding a role in two units is two rows a day with no post: counted once too.)
    plain = rule.where == "each" and not rule.roles
    records = func.count(hits.c.sid) if plain else func.count(distinct(hits.c.sid))
    per_day = (query.add_columns(slices.c.period, slices.c.day, records.label("n"))
               .select_from(bound).join(slices, held).outerjoin(post_area, post_area.id == bound.c.area_id)
               .outerjoin(hits, and_(hits.c.user_id == bound.c.user_id, hits.c.day == slices.c.day, place))
               .group_by(*keys, "fid", slices.c.period, slices.c.day)).subquery("per_day")
    c = per_day.c
    query = (select(c.uid, c.pid, c.fid, c.period, func.count(), cast(func.sum(c.n), Integer))
             .group_by(c.uid, c.pid, c.fid, c.period))
    return db.session.execute(query).all()


def _count_units(scheme_key: str, rule: Rule, slices: Any, hits: Any, unit_ids: set[int] | None) -> list[tuple]:
    """(unit id, period index, counting days, records, key, name, kind, path) per unit the rule binds and
    period."""
    wanted = select(Unit.id).where(Unit.scheme_key == scheme_key, Unit.active.is_(True))
    if unit_ids is not None:
        wanted = wanted.where(Unit.id.in_(unit_ids or [-1]))
    chosen = []
    if rule.unit_kinds:
        chosen.append(Unit.kind.in_(rule.unit_kinds))
    if rule.tiers or rule.posts:
        chosen.append(Unit.id.in_(select(Post.unit_id).where(
            Post.scheme_key == scheme_key, or_(Post.tier_key.in_(rule.tiers), Post.key.in_(rule.posts)))))
    if rule.roles:
        chosen.append(Unit.id.in_(select(RoleAssignment.unit_id).where(
            RoleAssignment.scheme_key == scheme_key, RoleAssignment.role_key.in_(rule.roles))))
    if not chosen:
        return []
    bound = wanted.where(or_(*chosen))
    units = db.session.execute(select(Unit.id, Unit.key, Unit.name, Unit.kind, Unit.path).where(Unit.id.in_(bound)))
    # Every unit counts every day of a period (units have no dates): the days are counted once, and the records
    # per unit that has some, instead of joining every unit to every day.
    days = list(db.session.execute(select(slices.c.period, func.count(distinct(slices.c.day)))
                                   .group_by(slices.c.period)))
    records = {(unit_id, period): n for unit_id, period, n in db.session.execute(
        select(hits.c.unit_id, slices.c.period, func.count(distinct(hits.c.sid)))
        .select_from(hits).join(slices, slices.c.day == hits.c.day)
        .where(hits.c.unit_id.in_(bound)).group_by(hits.c.unit_id, slices.c.period))}
    return [(unit_id, period, held, records.get((unit_id, period), 0), key, name, kind, path)
            for unit_id, key, name, kind, path in units for period, held in days]


def compliance(scheme_key: str, rule: Rule, first: dt.date, last: dt.date, today: dt.date | None = None, *,
               user_id: int | None = None, unit_ids: set[int] | None = None) -> list[Verdict]:
    """Every subject's count, share owed and standing for each of the rule's periods overlapping [first, last].

    `user_id` narrows a person rule to one person, `unit_ids` a unit rule to some units.
    """
    working = _calendar(scheme_key).is_working_day
    days = engine.counting_days(rule, first, last, working)
    periods = engine.periods_between(rule.per, first, last)
    today = today or district_today(scheme_key)
    if not days:
        return []
    with collector_paused():  # a city's month is tens of thousands of verdicts
        return _compliance(scheme_key, rule, days, periods, today, user_id, unit_ids)


def _compliance(scheme_key: str, rule: Rule, days: list[CountingDay], periods: list[engine.Period],
                today: dt.date, user_id: int | None, unit_ids: set[int] | None) -> list[Verdict]:
    zone = district_zone(scheme_key)
    slices = _slices(zone, days, periods)
    bound = None if rule.per_unit else _bound(scheme_key, rule, user_id)
    if bound is None and not rule.per_unit:
        return []
    subjects = None if rule.per_unit else _people(scheme_key, rule, user_id)
    few = subjects is not None and len(subjects["users"]) <= FEW_PEOPLE
    hits = _hits(scheme_key, rule, slices, days, zone, set(subjects["users"]) if few else None)
    # Per period index: counting days in all, and those left from `today` on (for reminders).
    index_of = {p: i for i, p in enumerate(periods)}
    period_days, remaining = [0] * len(periods), [0] * len(periods)
    for d in days:
        period_days[index_of[d.period]] += 1
        remaining[index_of[d.period]] += d.day >= today

    def verdict(index: int, subject: dict, count: int, held: int) -> Verdict:
        total = period_days[index]
        owed = rule.at_least if held >= total else engine.owed(rule.at_least, held, total)
        return Verdict(rule, periods[index], subject, count, owed, held, total, remaining[index])

    verdicts = []
    if rule.per_unit:
        units: dict[int, UnitRef] = {}
        for unit_id, index, held, count, *columns in _count_units(scheme_key, rule, slices, hits, unit_ids):
            unit = units.get(unit_id) or units.setdefault(unit_id, UnitRef(unit_id, scheme_key, *columns))
            verdicts.append(verdict(index, {"kind": "unit", "unit": unit, "unit_id": unit_id, "sort": unit.path},
                                    count, held))
    else:
        focus = ({a.id: a for a in db.session.scalars(db.select(Area).where(
            Area.scheme_key == scheme_key, Area.key.in_(rule.focus_points)))} if rule.focus_points else {})
        described: dict[tuple, dict] = {}  # a post is the same subject in every period: describe it once
        for person, post_id, focus_id, index, held, count in _count_people(scheme_key, rule, slices, hits, bound):
            key = (person, post_id, focus_id) if post_id else (person, None, focus_id, index)
            subject = described.get(key)
            if subject is None:
                subject = _person(subjects, person, post_id, periods[index])
                if focus_id is not None:
                    subject["focus"] = focus.get(focus_id)
                described[key] = subject
            verdicts.append(verdict(index, subject, count, held))
    verdicts.sort(key=lambda v: (v.period.start, v.subject["sort"]))
    return verdicts


@dataclass(frozen=True)
class UnitRef:
    """A unit a rule binds, as its verdicts name it: read with its counts, not as a row of its own (a city's
    unit rules bind ten thousand units)."""

    id: int
    scheme_key: str
    key: str
    name: Any
    kind: str
    path: str


FEW_PEOPLE = 300  # up to this many people bound, their records are looked up by person


def _people(scheme_key: str, rule: Rule, user_id: int | None = None) -> dict[str, Any]:
    """Posts and accounts a person rule may name, to describe its subjects (only the columns that do)."""
    named = and_(Post.scheme_key == scheme_key, or_(
        Post.tier_key.in_(rule.tiers), Post.key.in_(rule.posts),
        Post.unit_id.in_(select(Unit.id).where(Unit.scheme_key == scheme_key, Unit.kind.in_(rule.unit_kinds)))),
        true() if user_id is None else Post.user_id == user_id)
    posts = list(db.session.scalars(select(Post).where(named).options(load_only(
        Post.id, Post.scheme_key, Post.user_id, Post.holder_name, Post.tier_key, Post.unit_id, Post.area_id,
        Post.started_on, Post.ended_on))))
    in_role = and_(RoleAssignment.scheme_key == scheme_key, RoleAssignment.role_key.in_(rule.roles),
                   true() if user_id is None else RoleAssignment.user_id == user_id)
    accounts = or_(User.id.in_(select(Post.user_id).where(named)),
                   User.id.in_(select(RoleAssignment.user_id).where(in_role)))
    users = {u.id: u for u in db.session.scalars(
        select(User).options(load_only(User.id, User.display_name)).where(accounts))}
    roles = defaultdict(list)
    if rule.roles:
        for ra in db.session.scalars(select(RoleAssignment).where(in_role)):
            roles[ra.user_id].append(ra)
    return {"posts": {p.id: p for p in posts}, "users": users, "roles": roles,
            "by_user": _group(posts)}


def _group(posts: list[Post]) -> dict[int, list[Post]]:
    out: dict[int, list[Post]] = defaultdict(list)
    for post in posts:
        if post.user_id:
            out[post.user_id].append(post)
    return out


def _person(subjects: dict, user_id: int | None, post_id: int | None, period: engine.Period) -> dict[str, Any]:
    """Name, tier, unit and areas of a person (or of an unlinked post) for a period."""
    post = subjects["posts"].get(post_id) if post_id else None
    user = subjects["users"].get(user_id) if user_id else None
    if post is not None:
        held = [post]
    else:
        held = sorted((p for p in subjects["by_user"].get(user_id, [])
                       if p.started_on <= period.end and (p.ended_on is None or p.ended_on >= period.start)),
                      key=lambda p: (p.tier_key, p.id))
    role_units = [ra.unit_id for ra in subjects["roles"].get(user_id, [])]
    unit_ids = [p.unit_id for p in held] + role_units
    name = user.display_name if user else (held[0].holder_name if held else "?")
    # `unit_id` is the first unit (for per-unit lookups); `unit_ids` every unit the person is bound through.
    return {"kind": "person", "user": user, "user_id": user_id, "posts": held, "name": name,
            "unit_id": unit_ids[0] if unit_ids else None, "unit_ids": unit_ids,
            "sort": f"{held[0].tier_key if held else '~'}/{name}"}


# -- what people see ------------------------------------------------------------------------------------



@dataclass
class RuleReport:
    """One rule's period for the leaders' page: the subjects shown, and how many were bound and short."""

    rule: Rule
    period: engine.Period
    rows: list[Verdict]
    bound: int
    short: int


def compliance_report(user: AnyUser, scheme_key: str, on: dt.date, *, only_short: bool = False,
                      tier: str | None = None, unit_id: int | None = None) -> list[RuleReport]:
    """Each rule's period containing `on`, with the subjects in the user's reach (only those short, if asked).

    `tier` keeps the people holding that tier; `unit_id` the subjects of that unit and the units below it.
    """
    scope = _compliance_scope(user, scheme_key)
    within = _subtree(scheme_key, unit_id) if unit_id else None
    today = district_today(scheme_key)
    out = []
    for rule in rules_of(scheme_key):
        if tier and tier not in rule.tiers:
            continue
        period = engine.period_of(rule.per, on)
        if rule.working_days_only and rule.per == "day" and not engine.counting_days(
                rule, on, on, _calendar(scheme_key).is_working_day):
            continue  # a rest day is no period of a working-days rule
        rows = _in_reach(compliance(scheme_key, rule, period.start, period.end, today), scope, within, tier)
        short = sum(1 for v in rows if not v.met)
        out.append(RuleReport(rule, period, [v for v in rows if not (only_short and v.met)], len(rows), short))
    return out


def compliance_between(user: AnyUser, scheme_key: str, first: dt.date, last: dt.date,
                       rule_id: str | None = None) -> list[tuple[Rule, list[Verdict]]]:
    """Each rule (or the one named) with its verdicts for every period overlapping [first, last], for the
    subjects in the user's reach — what the compliance page shows, over any span (the JSON API)."""
    scope = _compliance_scope(user, scheme_key)
    rules = [rule_of(scheme_key, rule_id)] if rule_id else rules_of(scheme_key)
    today = district_today(scheme_key)
    return [(rule, _in_reach(compliance(scheme_key, rule, first, last, today), scope)) for rule in rules]


def _compliance_scope(user: AnyUser, scheme_key: str) -> permissions.Scope:
    if not permissions.can_view_compliance(user, scheme_key):
        raise PermissionDenied(_("You may not view patrol compliance in this district."))
    return permissions.compliance_reach(user, scheme_key)


def _in_reach(verdicts: list[Verdict], scope: permissions.Scope, within: set[int] | None = None,
              tier: str | None = None) -> list[Verdict]:
    """The verdicts owed by subjects bound through a unit in reach (and in `within`, holding `tier` when given),
    each with only the posts held in those units (in `extra["posts"]`)."""
    rows = []
    reach = scope.unit_ids if scope.reach else frozenset()  # None: every unit (worked out once, not per subject)
    for v in verdicts:
        units = v.subject.get("unit_ids") or [v.subject.get("unit_id")]
        seen = [u for u in units if u is not None and (reach is None or u in reach)
                and (within is None or u in within)]
        if not v.due or not seen or (tier and not any(p.tier_key == tier for p in v.subject.get("posts", []))):
            continue
        v.extra = {**(v.extra or {}), "posts": [p for p in v.subject.get("posts", []) if p.unit_id in seen]}
        rows.append(v)
    return rows


def load_places(verdicts: Iterable[Verdict]) -> None:
    """The units and areas of the posts these rows name, read in two queries: a page of a city's rows would
    otherwise read them one post at a time as it draws them."""
    posts = [p for v in verdicts for p in ((v.extra or {}).get("posts") or v.subject.get("posts") or [])]
    for attribute, model, key in (("unit", Unit, "unit_id"), ("area", Area, "area_id")):
        wanted = {getattr(p, key) for p in posts if getattr(p, key) and attribute not in inspect(p).dict}
        found = {row.id: row for row in db.session.scalars(select(model).where(model.id.in_(wanted)))} if wanted else {}
        for post in posts:
            if attribute not in inspect(post).dict:
                set_committed_value(post, attribute, found.get(getattr(post, key)))


def units_in_reach(user: AnyUser, scheme_key: str, chosen: int | None = None) -> tuple[list[Unit], bool]:
    """Units the compliance page's filter lists (past UNITS_OFFERED, the upper levels and the one chosen), and
    whether some are left out."""
    from ..org.service import units_offered, user_units

    return units_offered(user_units(permissions.compliance_reach(user, scheme_key), scheme_key), chosen)


def _subtree(scheme_key: str, unit_id: int) -> set[int]:
    unit = db.session.get(Unit, unit_id)
    if unit is None or unit.scheme_key != scheme_key:
        return set()
    return set(db.session.scalars(db.select(Unit.id).where(Unit.scheme_key == scheme_key,
                                                           Unit.path.startswith(unit.path))))


def _calendar(scheme_key: str) -> Any:
    from ..calendar.service import calendar_for

    return calendar_for(scheme_key)


@dataclass(frozen=True)
class Reminder:
    """A rule a person (or their unit) is still short on as its period nears its end, as plain values: kept
    between requests."""

    rule: Rule
    period: engine.Period
    count: int
    required: int
    remaining_days: int
    unit_key: str | None   # a unit's rule: the unit that owes it
    unit_name: Any
    place: Any             # where: the rule's focus, or the person's one post's area (a name), or None


# Changes that can move what a person owes or has done, besides records: their posts and roles, the units and
# areas, the calendar, the scheme. (Logins, case steps and the like write audit entries too, and move nothing.)
OWING_CHANGES = ("post.appoint", "post.edit", "post.end", "user.grant_role", "user.revoke_role", "unit.create",
                 "unit.edit", "area.create", "area.edit", "org.import", "calendar.set", "calendar.year",
                 "calendar.import", "calendar.delete", "scheme.load", "scheme.activate")


def reminders_for(user: AnyUser, scheme_key: str, today: dt.date | None = None) -> list[Reminder]:
    """The rules a person (or their unit) is still short on as a period nears its end.

    Worked out once a day per person and kept (the queue's page shows them on every view) until something that
    can move a count comes in: a record of a form the district's rules count, or a change of posts, roles, units,
    areas, the calendar or the scheme (`OWING_CHANGES`, each written with its audit entry). The newest of each
    (two index reads) stands for the data as committed. PostgreSQL hands ids out in the order rows are written,
    not committed, so a record committed after a later one could leave the newest id unchanged: no answer is
    kept longer than ten minutes."""
    if getattr(user, "id", None) is None:
        return []
    today = today or district_today(scheme_key)
    forms = sorted({rule.form for rule in rules_of(scheme_key) if rule.remind_before_end is not None})
    if not forms:
        return []
    newest_record = (select(func.max(Submission.id))
                     .where(Submission.scheme_key == scheme_key, Submission.form_key.in_(forms)).scalar_subquery())
    stamp = change_stamp(OWING_CHANGES, newest_record)
    return _kept_reminders((user.id, scheme_key, today, *stamp), lambda: [
        _reminder(v) for v in my_patrols(user, scheme_key, today, reminded_only=True) if v.needs_reminder(today)])


@memoize(16384, key=lambda key, make: key)
def _kept_reminders(key: tuple, make: Any) -> list[Reminder]:
    return make()


def forget_reminders() -> None:
    """Drop every kept reminder (tests roll their data back, and SQLite then hands out the same ids again)."""
    _kept_reminders.cache_clear()


def _reminder(v: Verdict) -> Reminder:
    unit = v.subject.get("unit") if v.subject.get("kind") == "unit" else None
    posts = v.subject.get("posts") or []
    place = v.subject.get("focus").name if v.subject.get("focus") is not None else (
        posts[0].area.name if v.subject.get("kind") == "person" and len(posts) == 1 and posts[0].area
        and v.rule.where == "each" else None)
    return Reminder(v.rule, v.period, v.count, v.required, v.remaining_days, unit.key if unit else None,
                    unit.name if unit else None, place)


def my_patrols(user: AnyUser, scheme_key: str, today: dt.date | None = None, *,
               reminded_only: bool = False) -> list[Verdict]:
    """What a person owes in each rule's period running today, for themselves and for their units: done so far,
    owed, and the days left (a chief's patrols of the day and the week on their home page)."""
    if getattr(user, "id", None) is None:
        return []
    today = today or district_today(scheme_key)
    unit_ids = {ra.unit_id for ra in user.roles if ra.scheme_key == scheme_key}
    unit_ids |= {p.unit_id for p in user.posts if p.scheme_key == scheme_key and p.holds_on(today)}
    out = []
    for rule in rules_of(scheme_key):
        if reminded_only and rule.remind_before_end is None:
            continue
        period = engine.period_of(rule.per, today)
        out += [v for v in compliance(scheme_key, rule, period.start, period.end, today, user_id=user.id,
                                      unit_ids=unit_ids) if v.due]
    return out


# -- routes walked -------------------------------------------------------------------------------------------

WALKED_M = 30.0  # a route this close to a road runs along it…
WALKED_ALONG_M = 50.0  # …and a road is walked when a route runs along this much of it (or half a shorter one)
ROUTES_SHOWN = 2000  # records with a route a week's page reads at most (the newest)


@dataclass
class RoadWalked:
    """A road (or any place drawn as a line) in the reader's reach, and the week's routes that passed it."""

    area: Area
    walkers: list[str]
    times: int


@dataclass
class WeekOfRoutes:
    """A week's routes in a reader's reach, and the roads in reach with who walked them."""

    period: engine.Period
    roads: list[RoadWalked]          # walked first, then the others, each by name
    routes: list[tuple[Submission, dict[str, Any]]]  # (record, its route)


def routes_of_week(user: AnyUser, scheme_key: str, on: dt.date) -> WeekOfRoutes:
    """The routes recorded on patrol records in the week containing `on`, within the reader's patrol reach,
    and which of the roads in reach they walked: a route walked a road when it runs within `WALKED_M` metres
    of it for `WALKED_ALONG_M` metres (or half the road, if shorter) — a route that only crosses a road, or
    ends where the next one starts, did not walk it."""
    import shapely

    from ..definitions.clock import day_bounds
    from ..forms.engine import form_spec_of
    from ..forms.service import form_definition

    scope = _compliance_scope(user, scheme_key)
    period = engine.period_of("week", on)
    specs = [form_spec_of(form_definition(scheme_key, key)) for key in sorted(scheme_or_404(scheme_key).forms_in_force)]
    fields = {spec.id: [f.id for f in spec.top_level() if f.kind.gives_route] for spec in specs}
    fields = {form: ids for form, ids in fields.items() if ids}
    units, areas = scope.unit_ids, scope.area_ids
    reach = true() if units is None else or_(Submission.unit_id.in_(units or [-1]),
                                              Submission.area_id.in_(areas or [-1]))
    since, until = day_bounds(period.start, period.end, scheme_key)
    records = list(db.session.scalars(
        select(Submission).where(Submission.scheme_key == scheme_key, Submission.form_key.in_(list(fields) or [""]),
                                 Submission.occurred_at >= since, Submission.occurred_at < until, reach)
        .order_by(Submission.id.desc()).limit(ROUTES_SHOWN)))
    routes = [(record, (record.data or {}).get(field)) for record in records for field in fields[record.form_key]]
    roads = [(a, line) for a in db.session.scalars(select(Area).where(  # every place drawn as a line
        Area.scheme_key == scheme_key, Area.active.is_(True)).order_by(Area.path))
        if scope.covers_area(a.id, a.unit_id) and (line := _line(a.geometry)) is not None]
    walked = [shape for _record, route in routes if (shape := _line(route)) is not None]
    routes = [(record, route) for record, route in routes if _line(route) is not None]
    if not roads:
        return WeekOfRoutes(period, [], routes)
    # Metres on a plane centred on the district: near enough over a few kilometres.
    scale = math.cos(math.radians(roads[0][1].centroid.y))

    def plane(shape: Any) -> Any:
        return shapely.transform(shape, lambda xy: xy * (111_320 * scale, 110_574))

    tree = shapely.STRtree([plane(shape) for shape in walked])
    routes_planed = list(tree.geometries)
    out = []
    for area, line in roads:
        road = plane(line)
        hits = tree.query(road, predicate="dwithin", distance=WALKED_M) if walked else []
        along = road.buffer(WALKED_M)
        enough = min(WALKED_ALONG_M, road.length / 2)
        passed = [routes[int(i)][0] for i in hits if routes_planed[int(i)].intersection(along).length >= enough]
        names = sorted({(r.user.display_name if r.user else "?") for r in passed})
        out.append(RoadWalked(area, names, len(passed)))
    out.sort(key=lambda r: (r.times == 0, r.area.path))
    return WeekOfRoutes(period, out, routes)


def _line(geometry: Any) -> Any:
    """A stored line (a road's, a route's) as a flat shapely line; None for anything else (no shape, a
    polygon, coordinates that do not make a line)."""
    import shapely
    from shapely.errors import ShapelyError

    if not isinstance(geometry, Mapping) or geometry.get("type") not in ("LineString", "MultiLineString"):
        return None
    try:
        shape = shapely.force_2d(shapely.geometry.shape(geometry))
    except (ShapelyError, ValueError, TypeError, IndexError, KeyError, AttributeError):
        return None
    return shape if not shape.is_empty and shape.is_valid else None


# -- records ---------------------------------------------------------------------------------------------


@record_stored.connect
def _flag_stored(submission: Submission, user: AnyUser = None, spec: Any = None) -> None:
    flag_location(user, spec, submission)


def flag_location(user: AnyUser, spec: Any, submission: Submission) -> None:
    """Flag (never refuse) a record made far from the area it was filed against, when the area has a shape."""
    area = submission.area or (db.session.get(Area, submission.area_id) if submission.area_id else None)
    if area is None or not area.geometry:
        return
    scheme = scheme_in_force(submission.scheme_key)
    if scheme is None:
        return
    limit = scheme.patrol_distance_m
    flag = engine.far_from_area(area.geometry, submission.location, limit)
    if flag is not None:
        submission.flags = {**(submission.flags or {}), "far_from_area": flag}
