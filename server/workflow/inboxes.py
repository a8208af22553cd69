"""A person's work: the inbox's boxes within their reach, and their notifications."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, false, func, null, or_, select

from ..auth import permissions
from ..core.database import utcnow
from ..extensions import db
from ..forms.models import Submission
from ..org.models import Area, Unit
from .models import Case, CaseDeadline, Notification

if TYPE_CHECKING:
    from ..auth.models import AnyUser


# The queue's tabs: where new cases wait for the dispatcher, one's own, the unit's (within reach), due within a
# day, overdue, and every case within reach (closed ones too, to find a case by its number).
BOXES = ("to_dispatch", "mine", "unit", "due_soon", "overdue", "all")
SORTS = ("time_left", "newest", "oldest")
PAGE_SIZE = 50
SOURCES = ("staff", "patrol", "public")


@dataclass(frozen=True)
class QueueQuery:
    """What the queue shows: a tab, a search, filters, an order and a page (each checked by `queue_query`)."""

    box: str = "mine"
    q: str = ""
    state: str = ""
    category: str = ""
    unit: int | None = None
    source: str = ""
    sort: str = "time_left"
    page: int = 1

    def args(self, **change: Any) -> dict[str, Any]:
        """The query string of this query with some values changed, without the empty ones."""
        values = {**asdict(self), **change}
        return {k: v for k, v in values.items() if v not in ("", None) and not (k == "page" and v == 1)}


@dataclass
class QueueRow:
    """What a queue row shows of a case (read as plain columns: a page of rows loads no case objects)."""

    id: int
    workflow_key: str
    data: dict[str, Any]
    category: str | None
    state: str
    overdue: bool
    area: Any                   # the place's name (translatable), or None
    unit: Any                   # the unit's name, or None
    due_at: dt.datetime | None  # the nearest running deadline
    line: str = ""              # a line of its text (the workflow's `queue.line`)
    flags: tuple[Any, ...] = ()  # the labels of its flagged choices (`queue.flags`: 紧急)
    category_name: Any = ""     # the category's and the state's names (translatable), as the district says
    state_name: Any = ""


@dataclass
class QueuePage:
    query: QueueQuery
    rows: list[QueueRow]
    total: int
    counts: dict[str, int]  # open cases per tab (all: every case within reach)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // PAGE_SIZE))


def queue_query(args: Mapping[str, str], default_box: str = "mine") -> QueueQuery:
    """A queue query from request arguments: anything unknown or malformed falls back to its default."""
    from ..web.params import parse_id

    def choice(name: str, allowed: tuple[str, ...], default: str) -> str:
        value = args.get(name, default)
        return value if value in allowed else default

    def text(name: str, limit: int) -> str:  # no control characters (PostgreSQL refuses a NUL in a string)
        return "".join(c for c in (args.get(name) or "") if c.isprintable()).strip()[:limit]

    page = parse_id(args.get("page")) or 1
    return QueueQuery(box=choice("box", BOXES, default_box), q=text("q", 100),
                      state=text("state", 64), category=text("category", 64),
                      unit=parse_id(args.get("unit")), source=choice("source", ("", *SOURCES), ""),
                      sort=choice("sort", SORTS, "time_left"), page=min(page, 100_000))


def due_at() -> Any:
    """SQL: a case's earliest running deadline (None when nothing runs)."""
    return (select(func.min(CaseDeadline.due_at)).where(CaseDeadline.case_id == Case.id, *_running())
            .correlate(Case).scalar_subquery())


def _running() -> list[Any]:
    """A deadline that runs: not stopped, and not paused (a case waiting on its reporter, or on hold)."""
    return [CaseDeadline.stopped_at.is_(None), CaseDeadline.paused_at.is_(None)]


def _box(user: AnyUser, scheme_key: str, box: str, initial: list[tuple[str, str]]) -> list[Any]:
    """The conditions of a tab."""
    where: list[Any] = [Case.scheme_key == scheme_key]
    if box != "all":
        where.append(Case.state_kind != "final")
    if box == "mine":
        return [*where, (Case.assignee_id == user.id) | (Case.reporter_id == user.id)]
    wide = permissions.case_list_reach(user, scheme_key)
    if not wide.district_wide:
        where.append(within_reach(wide))
    now = utcnow()
    if box == "to_dispatch":  # where cases wait for the dispatcher: the (workflow, state) pairs of `initial`
        where.append(or_(false(), *(and_(Case.workflow_key == key, Case.state == state) for key, state in initial)))
    elif box == "due_soon":
        where.append(Case.id.in_(select(CaseDeadline.case_id).where(
            *_running(), CaseDeadline.due_at <= now + dt.timedelta(days=1), CaseDeadline.due_at >= now)))
    elif box == "overdue":
        where.append(overdue_now(now))
    return where


def overdue_now(now: dt.datetime) -> Any:
    """SQL condition: a case marked overdue, or one with a running deadline past due (before the tick marks it)."""
    return Case.overdue.is_(True) | Case.id.in_(select(CaseDeadline.case_id).where(*_running(),
                                                                                   CaseDeadline.due_at < now))


def _search(q: str, labels: Mapping[str, str], text_fields: tuple[str, ...], areas: list[int],
            units: list[int]) -> Any:
    """A case number (#12 or 12), or words in the case's text fields (its description…: the values, never the
    field names), its category's name, or its place's or unit's (`areas`, `units`: those whose names hold the
    words), whatever the case of the letters."""
    number = q.removeprefix("#")
    if number.isascii() and number.isdigit() and len(number) <= 10:
        return Case.id == int(number)
    needle = q.casefold()
    return or_(false(), *(Case.data[name].as_string().icontains(q, autoescape=True) for name in text_fields),
               Case.category.in_([k for k, label in labels.items() if needle in label.casefold() or needle == k]),
               Case.area_id.in_(areas), Case.unit_id.in_(units))


def tab_counts(user: AnyUser, scheme_key: str, initial: list[tuple[str, str]],
               filters: list[Any] | None = None) -> dict[str, int]:
    """The cases of every tab of the queue within the user's reach (and the search and filters shown)."""
    # One statement, one count per tab: one round trip instead of six.
    counts = select(*(select(func.count(Case.id)).where(*_box(user, scheme_key, box, initial), *(filters or []))
                      .scalar_subquery().label(box) for box in BOXES))
    return {box: n or 0 for box, n in db.session.execute(counts).one()._mapping.items()}


def queue(user: AnyUser, scheme_key: str, query: QueueQuery, initial: list[tuple[str, str]],
          labels: Mapping[str, str], text_fields: tuple[str, ...] = (), areas: list[int] | None = None,
          units: list[int] | None = None) -> QueuePage:
    """One page of the case queue: the tab's cases within the user's reach, searched, filtered and ordered, with
    the total and the count of every tab. `initial` is each workflow's (key, initial state); `labels` names
    categories (in every language shown); `areas` and `units` are those whose names hold the words searched."""
    filters = _filters(query, labels, text_fields, areas, units)
    counts = tab_counts(user, scheme_key, initial, filters)  # the badges count what the tabs would list
    where = [*_box(user, scheme_key, query.box, initial), *filters]
    total = counts[query.box]  # the same conditions: the tab's count is the list's total
    due = due_at().label("due_at")
    order = {"time_left": (due.asc().nulls_last(), Case.created_at.desc(), Case.id.desc()),
             "newest": (Case.created_at.desc(), Case.id.desc()),
             "oldest": (Case.created_at.asc(), Case.id.asc())}[query.sort]
    page = min(query.page, max(1, -(-total // PAGE_SIZE)))
    columns = (Case.id, Case.workflow_key, Case.data, Case.category, Case.state, Case.overdue, Area.name, Unit.name,
               due)
    rows = db.session.execute(select(*columns).outerjoin(Area, Area.id == Case.area_id)
                              .outerjoin(Unit, Unit.id == Case.unit_id).where(*where).order_by(*order)
                              .offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE)).all()
    return QueuePage(replace(query, page=page), [QueueRow(*row) for row in rows], total, counts)


def _filters(query: QueueQuery, labels: Mapping[str, str], text_fields: tuple[str, ...], areas: list[int] | None,
             units: list[int] | None) -> list[Any]:
    """The search and filters of a query, as SQL conditions (the tab's are `_box`'s)."""
    filters: list[Any] = []
    if query.q:
        filters.append(_search(query.q, labels, text_fields, areas or [], units or []))
    if query.state:
        filters.append(Case.state == query.state)
    if query.category:
        filters.append(Case.category == query.category)
    if query.unit:
        filters.append(Case.unit_id == query.unit)
    if query.source:
        filters.append(Case.source == query.source)
    return filters


MAP_POINTS = 2000  # cases a queue's map shows at most (the most urgent first)


@dataclass
class QueuePoint:
    """A case on the queue's map: where it was reported (or its place's shape, where it has no position)."""

    id: int
    category: str | None
    state: str
    state_kind: str
    overdue: bool
    due_at: dt.datetime | None
    lat: float | None
    lng: float | None
    area_id: int | None
    title: str = ""
    tone: str = ""


def queue_points(user: AnyUser, scheme_key: str, query: QueueQuery, initial: list[tuple[str, str]],
                 labels: Mapping[str, str], text_fields: tuple[str, ...] = (), areas: list[int] | None = None,
                 units: list[int] | None = None) -> list[QueuePoint]:
    """The cases of a queue's tab, searched and filtered as its list is (every page of it, the most urgent
    first, `MAP_POINTS` at most), with their reported positions."""
    where = [*_box(user, scheme_key, query.box, initial), *_filters(query, labels, text_fields, areas, units)]
    lat, lng = Submission.location["lat"].as_float().label("lat"), Submission.location["lng"].as_float().label("lng")
    due = due_at().label("due_at")
    rows = db.session.execute(
        select(Case.id, Case.category, Case.state, Case.state_kind, Case.overdue, due, lat, lng, Case.area_id)
        .outerjoin(Submission, Submission.id == Case.submission_id).where(*where)
        .order_by(due.asc().nulls_last(), Case.id.desc()).limit(MAP_POINTS)).all()
    return [QueuePoint(*row) for row in rows]


HEAT_POINTS = 10_000  # cases a heat map weighs at most (the newest)


def opened_points(user: AnyUser, scheme_key: str, since: dt.datetime, until: dt.datetime) -> list[QueuePoint]:
    """Every case within the user's reach opened in [since, until) — open or closed — with its reported
    position: where problems come from (the newest `HEAT_POINTS`)."""
    lat, lng = Submission.location["lat"].as_float().label("lat"), Submission.location["lng"].as_float().label("lng")
    rows = db.session.execute(
        select(Case.id, Case.category, Case.state, Case.state_kind, Case.overdue, null(), lat, lng, Case.area_id)
        .outerjoin(Submission, Submission.id == Case.submission_id)
        .where(*_box(user, scheme_key, "all", []), Case.created_at >= since, Case.created_at < until)
        .order_by(Case.id.desc()).limit(HEAT_POINTS)).all()
    return [QueuePoint(*row) for row in rows]


def within_reach(scope: permissions.Scope):  # noqa: ANN202
    """SQL condition: cases of the units or the areas a (non-district) scope reaches."""
    units, areas = list(scope.unit_ids or []) or [-1], list(scope.area_ids or []) or [-1]
    return Case.unit_id.in_(units) | Case.area_id.in_(areas)


def notifications_for(user: AnyUser, limit: int = 50) -> list[Notification]:
    unit_ids = [a.unit_id for a in user.roles if a.unit_id] + [p.unit_id for p in user.posts if p.unit_id]
    mine = (Notification.user_id == user.id) | Notification.unit_id.in_(unit_ids or [-1])
    query = db.select(Notification).where(mine)
    return list(db.session.scalars(query.order_by(Notification.id.desc()).limit(limit)))
