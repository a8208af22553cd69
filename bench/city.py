"""A district of a city's size, seeded for the benches and the load test: `seed_city()`.

On an app context whose database has the scheme loaded and active (Lidu by default), `seed_city` adds, in bulk:

- units in a tree under the scheme's top unit: streets, each with its offices and departments and its
  communities (`UNITS_PER_STREET` units a street); every `path` set as the app sets it ("/1/12/345/");
- areas: a town centre a street (owned by its first community), roads in them (each owned by a community),
  most roads cut into segments, and a responsibility zone (grid) for every community; kinds read from the
  scheme's `area_kinds` (the kind with a board is the road, the kinds inside it its segments);
- staff accounts (one password hash for all, made once) and their posts on the scheme's chief ladder: a main
  leader and deputies for every street, a head for every office and department, community heads (one person
  may head several communities) and segment keepers over the roads, segments and zones; a few district-wide
  office administrators and assessors by role;
- a year of cases (`cases_per_day` on working days, fewer at weekends), each from its report record, walked
  through the workflow in force as the app would write it: the timeline (opened, assign, rectify, close, with
  rejections, rework, extensions and reopened public reports), the step records, the rectification deadlines
  in working time from the district's calendar, the escalations `fangan tick` would have applied (due soon,
  overdue: the case marked, the deadline missed) and, for public reports, the tracking row. Cases whose next
  step would fall after today stay where they are: the recent ones open, a few old ones stuck and overdue;
- patrol logs for every post the scheme's patrol rules bind (at their rate, a few people seldom) and for the
  segment keepers (a few a week), and the monthly records rules count per unit (themed campaigns, hot spots).

Dates come from `today` (the district's today, from `server.definitions.clock`, unless given) and `start`;
nothing after the start of `today` is written. Random choices come from one seeded generator: the same
arguments give the same district. Rows get their ids here and go in with COPY on PostgreSQL and executemany
on SQLite, the tables in the order their foreign keys need; PostgreSQL's sequences are moved past them and its
tables analysed (as autovacuum would), SQLite's left as the app leaves them. Not written: audit entries,
notifications and photos (record fields for photos are empty lists).

Run: .venv/bin/python bench/city.py [--database URL | --postgres] [--roads 2000] [--units 10000] [--staff 5000]
                                    [--days 365] [--cases-per-day 500] [--scale 0.1] [--runs 7] [--seed 1]
Seeds a temporary SQLite file (default), a throwaway PostgreSQL cluster (--postgres) or the database at URL
(migrated and given the scheme if it has none), prints the rows it added per table and how long it took, then
logs in as its staff through the app's test client and times the pages a district uses most (case queues, a
road's board, patrol compliance, the assessment period): every answer must be 200; p50 and p95, warm.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import random
import secrets
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import p50_p95, timings  # noqa: E402
from sqlalchemy import JSON, func, select, text  # noqa: E402

from server.extensions import db  # noqa: E402

CASES_PER_DAY = 500  # on a working day; weekends see WEEKEND_SHARE of it
WEEKEND_SHARE = 0.6
UNITS_PER_STREET = 100  # a street: OFFICES_PER_STREET offices and departments, the rest communities
OFFICES_PER_STREET = 4
DEPUTIES_PER_STREET = 2
ADMINS_PER_STAFF = 1 / 1000  # district-wide office administrators (they dispatch) and as many assessors
SEGMENTS = (0, 0, 2, 2, 3)  # segments a road is cut into, one of these at random
KEEPER_PATROLS_A_WEEK = 3.0  # segment keepers, whom no patrol rule binds in Lidu, patrol about this often
# Whom a patrol rule binds files what it asks in a period, now and then more (EXTRA on average), now and then
# one short (MISSED of periods); a few people and units (SLACK_SHARE) miss most periods: the ones the
# compliance pages are for.
MISSED, EXTRA = 0.05, 0.3
SLACK_SHARE, SLACK_MISSED = 0.06, 0.6
# A case's life: shares and delays (hours of working time unless said otherwise).
SOURCES = (("staff", 0.55), ("patrol", 0.30), ("public", 0.15))
DISPATCH_HOURS = 1.5
REJECTED = 0.04
EXTENDED = 0.03
ON_TIME = (0.78, 0.99)  # share of a unit's cases rectified in time, per unit (between these)
STUCK = 0.2  # of the others: rectified weeks late, if at all by today; the rest a day or so late
LATE_HOURS = 20.0  # wall-clock hours past the deadline, on average, for those late
CHECK_HOURS = 4.0
REWORKED = 0.06
REOPENED = 0.03  # of closed public reports, the reporter says it is not solved
BATCH = 20_000

SURNAMES = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
            "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤")
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍建国红梅文辉波宁鑫斌晨宇浩凯琳雪婷佳欣志海东"
PLACES = ("东西南北中新和平安宁康乐兴华龙凤桥河湖山林泉溪松柏桃李梅竹荷兰金银玉石云霞春秋明光长青碧翠丰裕富源"
          "福寿吉祥永嘉")
ROAD_ENDS = ("路", "街", "大道", "巷", "一路", "二路", "支路", "东路", "西路", "南街", "北街")
OFFICE_NAMES = ("城镇管理办公室", "平安建设办公室", "经济发展办公室", "社会事务办公室", "党政办公室", "规划建设办公室")
PROBLEMS = ("乱堆乱放", "垃圾堆积", "占道经营", "乱停乱放", "井盖破损", "路面坑洼", "乱贴小广告", "绿化带损毁",
            "建筑垃圾", "店外经营", "违规搭建", "积水")


@dataclass(frozen=True)
class Size:
    """How big a district to seed."""

    roads: int = 2_000
    units: int = 10_000
    staff: int = 5_000
    days: int = 365
    cases_per_day: float = CASES_PER_DAY

    def scaled(self, scale: float) -> Size:
        """Every count times `scale` (the days stay: a year is a year)."""
        return Size(round(self.roads * scale), round(self.units * scale), round(self.staff * scale), self.days,
                    self.cases_per_day * scale)


@dataclass
class City:
    """What `seed_city` made: rows added per table, and who and what a bench can use."""

    scheme_key: str
    start: dt.date
    today: dt.date
    password: str
    counts: Counter = field(default_factory=Counter)
    seconds: dict[str, float] = field(default_factory=dict)  # by step
    admins: list[str] = field(default_factory=list)  # usernames: district-wide, they dispatch
    community_heads: list[str] = field(default_factory=list)
    keepers: list[str] = field(default_factory=list)
    roads: list[str] = field(default_factory=list)  # area keys, those with a keeper first

    def volume(self) -> str:
        """The rows added, as a line for a bench's report."""
        return ", ".join(f"{n:,} {table}" for table, n in self.counts.items() if n)


# -- the district's shape, read from its scheme ----------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """The kinds of unit, area and tier the generator fills, as the scheme names them."""

    street: str  # the top unit's kind
    offices: tuple[str, ...]  # kinds of the units heads hold that own no places (offices, departments)
    community: str  # the kind of unit that owns the roads
    road: str
    segment: str | None
    town: str | None
    zone: str | None
    leaders: tuple[str, ...]  # tiers over a street: the first held once, the others (`several`) by deputies
    office_head: str | None
    community_head: str | None
    keeper: str | None


def layout_of(scheme: Any, street_kind: str) -> Layout:
    """Which of the scheme's kinds and tiers play which part (by their shape, not their names)."""
    areas = scheme.area_kinds.values()
    road = next((k.id for k in areas if k.board), None) or next((k.id for k in areas if k.get("has_range")), None)
    if road is None:
        raise ValueError(f"scheme {scheme.key}: no area kind with a board or a range (a road)")
    inside = {k.id: tuple(k.get("parent_kinds") or ()) for k in areas}
    segment = next((kind for kind, parents in inside.items() if road in parents), None)
    town = next(iter(inside[road]), None)
    zone = next((kind for kind, parents in inside.items() if kind not in (road, segment, town)
                 and (town in parents or not parents)), None)
    tiers = list(scheme.tiers.values())
    scope = {t.id: scheme.roles[t.role].scope if t.role in scheme.roles else None for t in tiers}
    placed = [t for t in tiers if t.get("area_kinds")]
    keeper = next((t.id for t in placed if scope[t.id] == "posted"), None)
    head = next((t for t in placed if t.id != keeper and road in t["area_kinds"]), None)
    leaders = tuple(t.id for t in sorted((t for t in tiers if street_kind in (t.get("unit_kinds") or ())
                                          and not t.get("area_kinds")), key=lambda t: t.several))
    offices = next((t for t in tiers if t.get("unit_kinds") and not t.get("area_kinds") and t.id not in leaders),
                   None)
    community = (head or next((t for t in placed if t.get("unit_kinds")), None) or {}).get("unit_kinds", [None])[0]
    if community is None:
        raise ValueError(f"scheme {scheme.key}: no tier over roads names the kind of unit that owns them")
    return Layout(street=street_kind, offices=tuple(offices["unit_kinds"]) if offices else (), community=community,
                  road=road, segment=segment, town=town, zone=zone, leaders=leaders,
                  office_head=offices.id if offices else None, community_head=head.id if head else None,
                  keeper=keeper)


# -- names -------------------------------------------------------------------------------------------------------


def place_name(n: int, offset: int = 0) -> str:
    """The n-th two-character place name (unique for n < len(PLACES)²)."""
    size = len(PLACES)
    n += offset
    first, turn = n % size, n // size
    return PLACES[first] + PLACES[(turn + 1 + 7 * first) % size] + (str(n // size ** 2) if n >= size ** 2 else "")


def road_name(n: int) -> str:
    base, end = divmod(n, len(ROAD_ENDS))
    return place_name(base, 7) + ROAD_ENDS[end]


def person_name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2, 2))))


def zh(name: str, en: str) -> dict[str, str]:
    return {"zh": name, "en": en}


# -- bulk writing --------------------------------------------------------------------------------------------------


class Writer:
    """Rows added in bulk with their ids given here: COPY on PostgreSQL, executemany on SQLite. Buffers are
    written in the order the foreign keys need, so a row may be added once its parents have been."""

    ORDER = ("units", "areas", "users", "role_assignments", "posts", "submissions", "cases", "case_events",
             "case_deadlines", "escalations_applied", "public_reports")

    def __init__(self, batch: int = BATCH) -> None:
        self.connection = db.session.connection()
        self.dialect = self.connection.dialect
        self.batch = batch
        self.columns: dict[str, tuple[str, ...]] = {}
        self.rows: dict[str, list[tuple]] = defaultdict(list)
        self.counts: Counter = Counter()
        self.ids: dict[str, int] = {}
        self.pending = 0

    def next_id(self, table: str) -> int:
        if table not in self.ids:
            model = db.metadata.tables[table]
            self.ids[table] = self.connection.scalar(select(func.max(model.c.id))) or 0
        self.ids[table] += 1
        return self.ids[table]

    def add(self, table: str, **row: Any) -> int:
        """Buffer a row (its id given, or the next one); its id."""
        if "id" not in row:
            row = {"id": self.next_id(table), **row}
        columns = self.columns.setdefault(table, tuple(row))
        self.rows[table].append(tuple(row[c] for c in columns))
        self.pending += 1
        return row["id"]

    def maybe_flush(self) -> None:
        if self.pending >= self.batch:
            self.flush()

    def flush(self) -> None:
        for table in self.ORDER:
            rows = self.rows.pop(table, None)
            if rows:
                self._write(table, rows)
                self.counts[table] += len(rows)
        self.pending = 0

    def _write(self, table: str, rows: list[tuple]) -> None:
        model = db.metadata.tables[table]
        columns = self.columns[table]
        if self.dialect.name == "postgresql":
            as_json = [isinstance(model.c[c].type, JSON) for c in columns]
            raw = self.connection.connection.driver_connection
            statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"  # our own table and column names
            with raw.cursor() as cursor, cursor.copy(statement) as copy:
                for row in rows:
                    copy.write_row([json.dumps(v) if j else v for v, j in zip(row, as_json, strict=True)])
            return
        processors = [model.c[c].type.dialect_impl(self.dialect).bind_processor(self.dialect) for c in columns]
        used = [(i, p) for i, p in enumerate(processors) if p is not None]
        if used:
            rows = [list(row) for row in rows]
            for row in rows:
                for i, process in used:
                    row[i] = process(row[i])
        marks = ", ".join("?" for _ in columns)
        statement = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608 - our own names
        self.connection.exec_driver_sql(statement, [tuple(r) for r in rows])

    def finish(self) -> None:
        """Write what is left; on PostgreSQL move each sequence past the ids given and analyse the tables."""
        self.flush()
        if self.dialect.name != "postgresql":
            return
        for table in self.counts:
            self.connection.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                                         f"(SELECT max(id) FROM {table}))"))
        self.connection.execute(text("ANALYZE"))


# -- the generator -------------------------------------------------------------------------------------------------


@dataclass
class Place:
    id: int
    key: str
    kind: str
    name: str
    unit_id: int | None


@dataclass
class Holder:
    """A person and the posts they hold."""

    user_id: int
    username: str
    name: str
    tier: str
    posts: list[tuple[int, int | None, Place | None]] = field(default_factory=list)  # (post id, unit id, area)
    since: dt.date = dt.date.min


def seed_city(scheme_key: str = "lidu", roads: int = 2_000, units: int = 10_000, staff: int = 5_000,
              cases_per_day: float = CASES_PER_DAY, start: dt.date | None = None, days: int = 365,
              today: dt.date | None = None, seed: int = 1, password: str | None = None) -> City:
    """Add a district of this size to the scheme in force (see the module's docstring) and commit it.

    The history covers `days` days up to `today` (the district's today unless given; with only `start`, the
    `days` from it). `password` is every staff account's (a random one unless given: see `City.password`).
    """
    from werkzeug.security import generate_password_hash

    from server.definitions.clock import district_today
    from server.definitions.service import scheme_in_force

    scheme = scheme_in_force(scheme_key)
    if scheme is None:
        raise ValueError(f"no scheme {scheme_key} in force: load and activate it first")
    if today is None:
        today = start + dt.timedelta(days=days) if start else district_today(scheme_key)
    start = start or today - dt.timedelta(days=days)
    password = password or secrets.token_urlsafe(12)
    city = City(scheme_key, start, today, password)
    generator = Generator(scheme, random.Random(seed), city)  # noqa: S311 - a bench's data, not a secret
    steps: list[tuple[str, Callable[[], None]]] = [
        ("units and areas", lambda: generator.org(units, roads)),
        ("staff and posts", lambda: generator.staff(staff, generate_password_hash(password))),
        ("cases", lambda: generator.cases(cases_per_day)),
        ("patrol logs and records", generator.records),
        ("indexes, statistics", generator.writer.finish),
    ]
    for name, step in steps:
        begun = time.perf_counter()
        step()
        generator.writer.flush()
        city.seconds[name] = time.perf_counter() - begun
    begun = time.perf_counter()
    db.session.commit()
    city.seconds["commit"] = time.perf_counter() - begun
    city.counts.update(generator.writer.counts)
    return city


class Generator:
    """The district's rows, step by step (org, staff, cases, records), into one Writer."""

    def __init__(self, scheme: Any, rng: random.Random, city: City) -> None:
        from server.calendar.service import calendar_for
        from server.definitions.clock import district_zone
        from server.org.models import Area, Unit
        from server.workflow import engine
        from server.workflow.service import workflow_version

        self.scheme, self.rng, self.city, self.key = scheme, rng, city, scheme.key
        self.writer = Writer()
        self.zone: ZoneInfo = district_zone(self.key)
        self.calendar = calendar_for(self.key)
        self.cut = dt.datetime.combine(city.today, dt.time(), self.zone).astimezone(dt.UTC)  # nothing from here on
        self.created = dt.datetime.combine(city.start, dt.time(), self.zone).astimezone(dt.UTC)
        self.units = list(db.session.execute(select(Unit.id, Unit.key, Unit.kind, Unit.parent_id, Unit.path)
                                             .where(Unit.scheme_key == self.key).order_by(Unit.id)))
        self.areas = list(db.session.execute(select(Area.id, Area.key, Area.kind, Area.unit_id, Area.parent_id,
                                                    Area.path, Area.name).where(Area.scheme_key == self.key)
                                             .order_by(Area.id)))
        top = next((u for u in self.units if u.parent_id is None), None)
        if top is None:
            raise ValueError(f"scheme {self.key} has no units")
        self.top = top
        self.layout = layout_of(scheme, top.kind)
        self.row = workflow_version(self.key)
        self.flow = engine.workflow_spec(self.row.data)
        self.unit_keys = {u.id: u.key for u in self.units}
        self.kind_of = {u.id: u.kind for u in self.units}
        self.parent_of = {u.id: u.parent_id for u in self.units}
        self.leaf_categories = leaves(scheme.data.get("categories") or []) or ["other"]
        # Filled as the steps go.
        self.communities: list[tuple[int, str, int | None]] = []  # (unit id, name, its street's town area)
        self.offices: list[int] = []
        self.streets: list[int] = []
        self.places: list[Place] = []  # where problems are found: roads, segments, zones
        self.patrolled: list[Place] = []  # what keepers patrol: segments, roads without, then zones
        self.admins: list[int] = []
        self.holders: list[Holder] = []
        self.by_unit: dict[int, list[tuple[int, int]]] = defaultdict(list)  # unit -> (user, post)
        self.by_area: dict[int, list[tuple[int, int]]] = defaultdict(list)
        self.post_unit: dict[int, int | None] = {}
        self.road_parts: dict[str, list[int]] = {}  # a road's key -> its id and its segments'

    # -- org ---------------------------------------------------------------------------------------------------

    def org(self, units: int, roads: int) -> None:
        layout, w, rng = self.layout, self.writer, self.rng
        top = self.top
        if any(u.key.startswith("city_") for u in self.units) or any(a.key.startswith("city_") for a in self.areas):
            raise ValueError(f"scheme {self.key} has bench/city.py's units or areas already: seed a fresh database")
        existing_towns = {a.unit_id: a for a in self.areas if a.kind == layout.town}
        for u in self.units:  # the scheme's own units take part (heads, roads) beside the new ones
            if u.kind == layout.community:
                town = existing_towns.get(u.id)
                self.communities.append((u.id, u.key, town.id if town else None))
            elif u.kind in layout.offices:
                self.offices.append(u.id)
            elif u.kind == layout.street:
                self.streets.append(u.id)
        area_path = {a.id: a.path for a in self.areas}
        streets = min(units, max(1, round(units / UNITS_PER_STREET))) if units else 0
        towns: list[int | None] = []
        street_rows = []
        for s in range(streets):
            unit_id = w.next_id("units")
            name = place_name(s, 3)
            w.add("units", id=unit_id, scheme_key=self.key, key=f"city_street_{s:03d}", kind=layout.street,
                  name=zh(f"{name}街道", f"{name} Street"), parent_id=top.id, path=f"{top.path}{unit_id}/",
                  position=100 + s, difficulty=None, public=True, active=True, source="import")
            street_rows.append((unit_id, f"{top.path}{unit_id}/", name))
            self.streets.append(unit_id)
            self.unit_keys[unit_id] = f"city_street_{s:03d}"
            self.kind_of[unit_id] = layout.street
        first_community: dict[int, int] = {}
        new_communities = []
        office_slots = OFFICES_PER_STREET if layout.offices else 0
        for i in range(units - streets):
            s, j = i % streets, i // streets
            street_id, path, street_name = street_rows[s]
            unit_id = w.next_id("units")
            if j < office_slots:
                kind = layout.offices[j % len(layout.offices)]
                label = f"{street_name}{OFFICE_NAMES[j % len(OFFICE_NAMES)]}"
                self.offices.append(unit_id)
                difficulty = None
            else:
                kind, label = layout.community, f"{place_name(i, 11)}社区"
                first_community.setdefault(s, unit_id)
                new_communities.append((unit_id, label, s))
                difficulty = 2 if rng.random() < 0.05 else None
            key = f"city_unit_{i:05d}"
            w.add("units", id=unit_id, scheme_key=self.key, key=key, kind=kind, name=zh(label, f"Unit {i}"),
                  parent_id=street_id, path=f"{path}{unit_id}/", position=j, difficulty=difficulty, public=True,
                  active=True, source="import")
            self.unit_keys[unit_id] = key
            self.kind_of[unit_id], self.parent_of[unit_id] = kind, street_id
        for s, (_street_id, _path, street_name) in enumerate(street_rows):
            if layout.town is None or s not in first_community:
                towns.append(None)
                continue
            area_id = w.next_id("areas")
            w.add("areas", id=area_id, scheme_key=self.key, key=f"city_town_{s:03d}", kind=layout.town,
                  name=zh(f"{street_name}场镇", f"{street_name} town"), parent_id=None, path=f"/{area_id}/",
                  unit_id=first_community[s], range_from=None, range_to=None, length_m=None, description=None,
                  geometry=None, position=100 + s, source="import", active=True)
            area_path[area_id] = f"/{area_id}/"
            towns.append(area_id)
        self.communities += [(unit_id, label, towns[s]) for unit_id, label, s in new_communities]
        if roads and not self.communities:
            raise ValueError(f"scheme {self.key}: no unit of kind {layout.community} to own the roads")

        keeperless_roads = []
        for r in range(roads):
            unit_id, _label, town = self.communities[r % len(self.communities)]
            name = road_name(r)
            area_id = w.next_id("areas")
            path = f"{area_path[town] if town else '/'}{area_id}/"
            key = f"city_road_{r:04d}"
            w.add("areas", id=area_id, scheme_key=self.key, key=key, kind=layout.road, name=zh(name, f"Road {r}"),
                  parent_id=town, path=path, unit_id=unit_id, range_from=zh(f"{name}东口", "East end"),
                  range_to=zh(f"{name}西口", "West end"), length_m=float(rng.randrange(200, 3000, 10)),
                  description=None, geometry=None, position=r, source="import", active=True)
            road = Place(area_id, key, layout.road, name, unit_id)
            self.places.append(road)
            self.road_parts[key] = [area_id]
            self.city.roads.append(key)
            cuts = rng.choice(SEGMENTS) if layout.segment else 0
            if not cuts:
                keeperless_roads.append(road)
            for n in range(cuts):
                part = ("东段", "中段", "西段")[n] if cuts == 3 else ("东段", "西段")[n]
                segment_id = w.next_id("areas")
                segment = Place(segment_id, f"{key}_{n}", layout.segment, f"{name}{part}", unit_id)
                w.add("areas", id=segment_id, scheme_key=self.key, key=segment.key, kind=layout.segment,
                      name=zh(segment.name, f"Road {r} part {n + 1}"), parent_id=area_id,
                      path=f"{path}{segment_id}/", unit_id=unit_id, range_from=None, range_to=None, length_m=None,
                      description=None, geometry=None, position=n, source="import", active=True)
                self.places.append(segment)
                self.patrolled.append(segment)
                self.road_parts[key].append(segment_id)
        self.patrolled += keeperless_roads
        zones = []
        if layout.zone:
            for n, (unit_id, label, s) in enumerate(new_communities):
                town = towns[s]
                area_id = w.next_id("areas")
                zone = Place(area_id, f"city_zone_{n:05d}", layout.zone, f"{label}网格", unit_id)
                w.add("areas", id=area_id, scheme_key=self.key, key=zone.key, kind=layout.zone,
                      name=zh(zone.name, f"Grid {n}"), parent_id=town,
                      path=f"{area_path[town] if town else '/'}{area_id}/", unit_id=unit_id, range_from=None,
                      range_to=None, length_m=None, description=None, geometry=None, position=n, source="import",
                      active=True)
                zones.append(zone)
        self.places += zones
        self.patrolled += zones
        if not self.places:  # no roads added: the scheme's own places
            self.places = [Place(a.id, a.key, a.kind, _zh(a.name), a.unit_id) for a in self.areas
                           if a.kind in (layout.road, layout.segment, layout.zone)]
            self.patrolled = list(self.places)

    # -- staff -------------------------------------------------------------------------------------------------

    def staff(self, staff: int, password_hash: str) -> None:
        layout, w, rng, key = self.layout, self.writer, self.rng, self.key
        roles = self.scheme.roles.values()
        admin_role = next((r.id for r in roles if r.scope == "district" and "case.dispatch" in r.capabilities
                           and "assessment.publish" in r.capabilities), None)
        assessor_role = next((r.id for r in roles if r.scope == "district" and "assessment.enter" in r.capabilities
                              and "case.dispatch" not in r.capabilities), None)
        left = [staff]

        def person(phone: bool = False) -> tuple[int, str, str] | None:
            if left[0] <= 0:
                return None
            left[0] -= 1
            user_id = w.next_id("users")
            username, name = f"city{user_id:05d}", person_name(rng)
            w.add("users", id=user_id, username=username, display_name=name, password_hash=password_hash,
                  is_admin=False, active=True, locale=None, phone=f"139{user_id:08d}" if phone else None,
                  session_token=secrets.token_hex(8), created_at=self.created - dt.timedelta(days=30))
            return user_id, username, name

        def since() -> dt.date:
            # Most have held their post since before the year; a few took it up during it.
            if rng.random() < 0.03 and self.city.today > self.city.start + dt.timedelta(days=2):
                return self.city.start + dt.timedelta(days=rng.randrange(1, (self.city.today - self.city.start).days))
            return self.city.start - dt.timedelta(days=rng.randrange(30, 1500))

        def post(holder: Holder, tier: str, unit_id: int | None, area: Place | None, name: str, phone: bool) -> None:
            post_id = w.add("posts", scheme_key=key, key=None, tier_key=tier, user_id=holder.user_id,
                            holder_name=name, title=None, phone=f"139{holder.user_id:08d}" if phone else None,
                            duties=None, unit_id=unit_id, area_id=area.id if area else None, started_on=holder.since,
                            ended_on=None, created_at=self.created - dt.timedelta(days=30))
            holder.posts.append((post_id, unit_id, area))
            self.post_unit[post_id] = unit_id
            if unit_id is not None:
                self.by_unit[unit_id].append((holder.user_id, post_id))
            if area is not None:
                self.by_area[area.id].append((holder.user_id, post_id))

        def appoint(tier: str | None, over: list[tuple[int | None, Place | None]], holders: int,
                    phone: bool = False) -> list[Holder]:
            """`holders` people (as many as are left) over these units or areas, each over a run of them."""
            if tier is None or not over:
                return []
            made: list[Holder] = []
            for _ in range(min(holders, len(over))):
                found = person(phone)
                if found is None:
                    break
                user_id, username, name = found
                made.append(Holder(user_id, username, name, tier, since=since()))
            for i, (unit_id, area) in enumerate(over):
                if not made:
                    break
                holder = made[i * len(made) // len(over)]
                post(holder, tier, unit_id, area, holder.name, phone)
            self.holders += made
            return made

        admins = max(1, round(staff * ADMINS_PER_STAFF)) if staff else 0
        for role, n in ((admin_role, admins), (assessor_role, admins)):
            for _ in range(n if role else 0):
                found = person()
                if found is None:
                    break
                w.add("role_assignments", user_id=found[0], scheme_key=key, role_key=role, unit_id=None)
                if role == admin_role:
                    self.admins.append(found[0])
                    self.city.admins.append(found[1])
        for street in self.streets:
            for tier in layout.leaders[:1] + layout.leaders[1:] * DEPUTIES_PER_STREET:
                appoint(tier, [(street, None)], 1)
        appoint(layout.office_head, [(u, None) for u in self.offices], len(self.offices))
        rest = left[0]
        keepers = min(len(self.patrolled), rest // 2) if self.communities and layout.community_head else rest
        heads = min(rest - keepers, len(self.communities))
        keepers = rest - heads
        made = appoint(layout.community_head, [(c, None) for c, _n, _t in self.communities], heads)
        self.city.community_heads += [h.username for h in made]
        made = appoint(layout.keeper, [(p.unit_id, p) for p in self.patrolled], keepers, phone=True)
        self.city.keepers += [h.username for h in made]
        # Roads with a keeper of their own first (their boards name every tier), then those kept by segment.
        self.city.roads.sort(key=lambda road: (not self.by_area.get(self.road_parts[road][0]),
                                               not any(self.by_area.get(a) for a in self.road_parts[road])))

    # -- cases -------------------------------------------------------------------------------------------------

    def cases(self, cases_per_day: float) -> None:
        if not cases_per_day or not self.places:
            return
        Cases(self).run(cases_per_day)

    # -- patrol logs and records ------------------------------------------------------------------------------

    def records(self) -> None:
        from server.forms.service import form_version

        rules = self.scheme.data.get("patrol_rules") or []
        patrol_form = self.scheme.patrol_form
        per_week = {"day": 7.0, "week": 1.0, "half_month": 0.5, "month": 12 / 52, "quarter": 4 / 52,
                    "half_year": 2 / 52, "year": 1 / 52}
        needs: dict[str, int] = {}  # patrol logs a week each tier's rules ask of a person
        for rule in rules:
            if rule.get("form", patrol_form) == patrol_form and rule.get("who", {}).get("tiers"):
                for tier in rule["who"]["tiers"]:
                    need = math.ceil(rule["at_least"] * per_week.get(rule.get("per", "week"), 1.0))
                    needs[tier] = max(needs.get(tier, 0), need)
        if patrol_form:
            version = form_version(self.key, patrol_form).id
            for holder in self.holders:
                if holder.posts and (holder.tier in needs or holder.tier == self.layout.keeper):
                    self._patrols(holder, needs.get(holder.tier), patrol_form, version)
                    self.writer.maybe_flush()
        for rule in rules:
            form = rule.get("form")
            kinds = rule.get("who", {}).get("unit_kinds")
            if form and form != patrol_form and kinds and rule.get("counted_per") == "unit":
                self._unit_records(rule, form_version(self.key, form).id, set(kinds))

    def _patrols(self, holder: Holder, need: int | None, form: str, version: int) -> None:
        """A person's patrol logs, week by week: what their rules ask (`need` a week), else a keeper's few."""
        rng = self.rng
        slack = rng.random() < SLACK_SHARE
        places = [area for _post, _unit, area in holder.posts if area is not None]
        units = [unit for _post, unit, _area in holder.posts if unit is not None]
        if not places:  # a head over units: the places of those units (a street's: of its communities)
            places = [p for unit in units for p in self.places_of(unit)][:40] or self.places
        day = max(self.city.start, holder.since)
        day -= dt.timedelta(days=day.weekday())
        while day < self.city.today:
            days = [day + dt.timedelta(days=n) for n in range(7)
                    if self.city.start <= day + dt.timedelta(days=n) < self.city.today
                    and day + dt.timedelta(days=n) >= holder.since]
            share = len(days) / 7
            count = (filed(rng, half_up(need * share), slack) if need is not None
                     else poisson(rng, KEEPER_PATROLS_A_WEEK * share * (0.2 if slack else 1.0)))
            for _ in range(count if days else 0):
                when = rng.choices(days, [1.0 if d.weekday() < 5 else 0.3 for d in days])[0]
                place = rng.choice(places)
                post_id = next((p for p, _u, a in holder.posts if a is place), holder.posts[0][0])
                begun = dt.datetime.combine(when, dt.time(rng.randrange(7, 18), rng.randrange(60)), self.zone)
                ended = begun + dt.timedelta(minutes=rng.randrange(30, 180))
                found = rng.random() < 0.15
                data = {"area": place.key, "started_at": begun.strftime("%Y-%m-%dT%H:%M"),
                        "ended_at": ended.strftime("%Y-%m-%dT%H:%M"), "participants": rng.choice((1, 1, 2, 3)),
                        "photos": [], "findings": f"巡查{place.name}，{'发现问题，已现场处理' if found else '无问题'}",
                        "has_problems": "yes" if found else "no", "found_problems": 1 if found else 0}
                if found:
                    data["problems"] = [{"problem_category": self._category(), "problem_description":
                                         rng.choice(PROBLEMS), "problem_photos": [], "problem_fixed_on_spot": "yes"}]
                self._record(form, version, holder.user_id, post_id, place.unit_id or self.post_unit.get(post_id),
                             place.id, data, begun.astimezone(dt.UTC), ended.astimezone(dt.UTC)
                             + dt.timedelta(minutes=rng.randrange(1, 90)))
            day += dt.timedelta(days=7)

    def _unit_records(self, rule: dict, version: int, kinds: set[str]) -> None:
        """Each unit's monthly records of a form a rule counts per unit, filed by one of its post holders."""
        rng = self.rng
        month = self.city.start.replace(day=1)
        while month < self.city.today:
            following = (month + dt.timedelta(days=32)).replace(day=1)
            first, last = max(month, self.city.start), min(following, self.city.today) - dt.timedelta(days=1)
            if last >= first:
                for unit_id, holders in self.by_unit.items():
                    if self.kind_of.get(unit_id) not in kinds:
                        continue
                    share = ((last - first).days + 1) / ((following - month).days)
                    for _ in range(filed(rng, half_up(rule["at_least"] * share), rng.random() < SLACK_SHARE)):
                        when = first + dt.timedelta(days=rng.randrange((last - first).days + 1))
                        user_id, post_id = rng.choice(holders)
                        places = self.places_of(unit_id)
                        place = rng.choice(places) if places else None
                        begun = dt.datetime.combine(when, dt.time(rng.randrange(8, 17)), self.zone)
                        self._record(rule["form"], version, user_id, post_id, unit_id, place.id if place else None,
                                     self._unit_record_data(rule["form"], when, place), begun.astimezone(dt.UTC),
                                     begun.astimezone(dt.UTC) + dt.timedelta(hours=rng.randrange(1, 30)))
                    self.writer.maybe_flush()
            month = following

    def _unit_record_data(self, form: str, when: dt.date, place: Place | None) -> dict[str, Any]:
        problem = self.rng.choice(PROBLEMS)
        where = place.name if place else ""
        return {"theme": f"{where}{problem}专项整治", "started_on": when.isoformat(), "ended_on": when.isoformat(),
                "title": f"{where}{problem}", "area": place.key if place else None, "problem": f"{where}{problem}",
                "measures": "清理整治，落实专人巡查", "result": "已解决", "solved_on": when.isoformat(),
                "participants": self.rng.randrange(3, 30), "problems_found": 3, "problems_fixed": 3,
                "description": f"{problem}专项整治", "photos_before": [], "photos_after": []}

    def _record(self, form: str, version: int, user_id: int | None, post_id: int | None, unit_id: int | None,
                area_id: int | None, data: dict, occurred: dt.datetime, submitted: dt.datetime) -> int:
        submission_id = self.writer.next_id("submissions")
        self.writer.add("submissions", id=submission_id, scheme_key=self.key, form_key=form,
                        definition_version_id=version, token=f"city-{submission_id}", user_id=user_id,
                        post_id=post_id, unit_id=unit_id, area_id=area_id, data=data, location=None,
                        submitted_at=submitted, occurred_at=occurred)
        return submission_id

    def _category(self) -> str:
        return self.rng.choice(self.leaf_categories)

    def places_of(self, unit_id: int | None) -> list[Place]:
        """The places a unit owns, or those of the units under it (a street's)."""
        if not hasattr(self, "_places_of"):
            self._places_of: dict[int | None, list[Place]] = defaultdict(list)
            for place in self.places:
                self._places_of[place.unit_id].append(place)
                self._places_of[self.parent_of.get(place.unit_id)].append(place)
        return self._places_of.get(unit_id) or []


def leaves(categories: list[dict]) -> list[str]:
    """The ids of the categories a case can take (those without children)."""
    return [c for item in categories for c in (leaves(item["children"]) if item.get("children") else [item["id"]])]


def _zh(name: Any) -> str:
    return (name.get("zh") or "") if isinstance(name, dict) else (name or "")


def filed(rng: random.Random, need: int, slack: bool) -> int:
    """How many records someone files in a period that asks `need` of them."""
    if rng.random() < (SLACK_MISSED if slack else MISSED):
        return max(0, need - 1)
    return need + poisson(rng, EXTRA)


def half_up(value: float) -> int:
    return math.floor(value + 0.5)


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth's method: the means here are small)."""
    if mean <= 0:
        return 0
    limit, n, p = math.exp(-mean), 0, rng.random()
    while p > limit:
        n += 1
        p *= rng.random()
    return n


# -- cases ---------------------------------------------------------------------------------------------------------


@dataclass
class Step:
    at: dt.datetime
    user_id: int | None
    kind: str  # opened | transition | escalation
    transition: str | None
    from_state: str | None
    to_state: str
    submission_id: int | None = None
    changes: dict | None = None
    note: str | None = None


@dataclass
class Deadline:
    key: str
    started: dt.datetime
    due: dt.datetime
    stopped: dt.datetime | None = None
    met: bool | None = None


class Cases:
    """A year of cases, each walked through the workflow up to the cut, written as the app writes them."""

    STEPS = ("assign", "reject", "rectify", "close", "rework", "request_extension", "approve_extension", "reopen")

    def __init__(self, generator: Generator) -> None:
        from flask_babel import force_locale, gettext

        from server.definitions.service import current_scheme
        from server.web.i18n import tr

        g = self.g = generator
        self.rng, self.w, self.flow, self.calendar, self.zone = g.rng, g.writer, g.flow, g.calendar, g.zone
        missing = [t for t in self.STEPS if self.flow.transition(t) is None]
        if missing:
            raise ValueError(f"workflow {self.flow.id}: the generator walks {', '.join(missing)}, which it lacks")
        self.deadline_key = next(iter(self.flow.deadlines), None)
        forms = {t.form for t in self.flow.transitions if t.form} | {self.flow.report_form}
        public_form = g.scheme.public.report_form if g.scheme.public.reporting else None
        if public_form:
            forms.add(public_form)
        self.public_form = public_form
        current = current_scheme(g.key)  # step forms too, which are the workflow's, not forms people fill
        self.versions = {form: current.member("form", form).id for form in forms if form}
        with force_locale("zh_CN"):
            name = tr(self.flow.deadlines[self.deadline_key].name) if self.deadline_key else ""
            self.notes = {e.id: gettext("Case #%(id)s is overdue: %(deadline)s" if e.when == "overdue" else
                                        "Case #%(id)s is due soon: %(deadline)s", id="{id}", deadline=name)
                          for e in self.flow.escalations}
        self.escalations = [e for e in self.flow.escalations if e.deadline == self.deadline_key]
        self.amounts: dict[tuple, tuple[str, float] | None] = {}
        self.dispatchers = g.admins or [h.user_id for h in g.holders if h.tier in g.layout.leaders] or [None]
        self.satisfaction = [s["value"] for s in g.scheme.public.satisfaction] or [None]
        self.quality: dict[int | None, float] = {}  # each unit's share of cases rectified in time

    def run(self, cases_per_day: float) -> None:
        rng, g = self.rng, self.g
        day = g.city.start
        while day < g.city.today:
            mean = cases_per_day * (1.0 if self.calendar.is_working_day(day) else WEEKEND_SHARE)
            for _ in range(max(0, round(rng.gauss(mean, mean ** 0.5)))):
                hour = rng.choices(range(6, 22), (1, 3, 6, 8, 8, 7, 4, 3, 6, 7, 7, 6, 4, 3, 2, 1))[0]
                local = dt.datetime.combine(day, dt.time(hour, rng.randrange(60), rng.randrange(60)), self.zone)
                self.case(local.astimezone(dt.UTC), rng.choice(g.places))
            self.w.maybe_flush()
            day += dt.timedelta(days=1)

    # time in the district's working hours
    def _local(self, moment: dt.datetime) -> dt.datetime:
        return moment.astimezone(self.zone).replace(tzinfo=None)

    def _utc(self, local: dt.datetime) -> dt.datetime:
        return local.replace(tzinfo=self.zone).astimezone(dt.UTC)

    def _work(self, moment: dt.datetime, hours: float) -> dt.datetime:
        return self._utc(self.calendar.add_working_hours(self._local(moment), hours))

    def _due(self, started: dt.datetime, data: dict) -> dt.datetime | None:
        from server.workflow import engine

        wanted = (data.get("size_m3"), data.get("urgency"), data.get("category"))
        if wanted not in self.amounts:
            spec = self.flow.deadlines.get(self.deadline_key)
            # The report form's fields a formula may read, unanswered unless the report gave them.
            names = {"size_m3": None, "urgency": None, **data}
            self.amounts[wanted] = engine.deadline_amount(spec, names) if spec else None
        amount = self.amounts[wanted]
        if amount is None:
            return None
        unit, value = amount
        local = self._local(started)
        due = (self.calendar.add_working_days(local, value) if unit == "days"
               else self.calendar.add_working_hours(local, value))
        return self._utc(due)

    def _handler(self, unit_id: int | None, place: Place) -> tuple[int | None, int | None]:
        """Who acts for the case's unit: the keeper of its place, else someone posted to the unit."""
        found = self.g.by_area.get(place.id) or self.g.by_unit.get(unit_id) or [(None, None)]
        return found[0]

    def case(self, created: dt.datetime, place: Place) -> None:
        rng, g, w, flow = self.rng, self.g, self.w, self.flow
        cut = g.cut
        case_id = w.next_id("cases")
        unit_id = place.unit_id
        source = rng.choices([s for s, _p in SOURCES], [p for _s, p in SOURCES])[0]
        if source == "public" and not self.public_form:
            source = "staff"
        category = g._category()
        problem = rng.choice(PROBLEMS)
        description = f"{place.name}{problem}" + ("，影响通行" if rng.random() < 0.3 else "")
        urgency = "urgent" if rng.random() < 0.05 else "normal"
        reporter, reporter_post = (None, None) if source == "public" else self._handler(unit_id, place)
        if source != "public" and reporter is None and self.dispatchers[0] is not None:
            reporter = rng.choice(self.dispatchers)
        if source == "public":
            form, data = self.public_form, {"category": category, "location": {"area": place.key}, "address": None,
                                            "description": description, "photos_before": []}
        else:
            form, data = flow.report_form, {"category": category, "area": place.key, "description": description,
                                            "photos_before": [], "urgency": urgency}
            if rng.random() < 0.5:
                data["size_m3"] = round(rng.choice((0.5, 1.0, 1.5, 2.0, 4.0, 6.0)) * rng.uniform(0.5, 1.5), 1)
            if urgency == "urgent":
                data["urgency_reason"] = "影响通行"
        report_id = w.next_id("submissions")
        w.add("submissions", id=report_id, scheme_key=g.key, form_key=form, definition_version_id=self.versions[form],
              token=f"city-{report_id}", user_id=reporter, post_id=reporter_post, unit_id=unit_id,
              area_id=place.id, data=data, location=data.get("location"), submitted_at=created, occurred_at=created)
        case_data = dict(data)
        steps = [Step(created, reporter, "opened", None, None, flow.initial, report_id)]
        records: list[dict] = []
        deadlines: list[Deadline] = []
        state = [flow.initial]
        handler, handler_post = self._handler(unit_id, place)
        unit_key = g.unit_keys.get(unit_id, "")

        def step(at: dt.datetime, transition: str, user: int | None, post: int | None = None,
                 form_data: dict | None = None, changes: dict | None = None) -> bool:
            if at >= cut:
                return False
            spec = flow.transition(transition)
            assert state[0] in spec.sources, (transition, state[0])
            submission_id = None
            if spec.form:
                submission_id = w.next_id("submissions")
                records.append({"id": submission_id, "scheme_key": g.key, "form_key": spec.form,
                                "definition_version_id": self.versions[spec.form],
                                "token": f"city-{submission_id}", "user_id": user, "post_id": post,
                                "unit_id": g.post_unit.get(post) if post else None, "area_id": None,
                                "data": form_data or {}, "location": None, "submitted_at": at, "occurred_at": at})
                case_data.update({f"{transition}__{k}": v for k, v in (form_data or {}).items()})
            case_data.update(changes or {})
            steps.append(Step(at, user, "transition", transition, state[0], spec.target, submission_id, changes))
            state[0] = spec.target
            return True

        def start_deadline(at: dt.datetime) -> Deadline | None:
            due = self._due(at, case_data)
            if due is None:
                return None
            deadlines.append(Deadline(self.deadline_key, at, due))
            return deadlines[-1]

        def local_text(moment: dt.datetime) -> str:
            return moment.astimezone(self.zone).strftime("%Y-%m-%dT%H:%M")

        dispatcher = rng.choice(self.dispatchers)
        at = self._work(created, rng.expovariate(1 / DISPATCH_HOURS))
        rounds = 0
        if rng.random() < REJECTED:
            step(at, "reject", dispatcher, form_data={"reason": "不属于受理范围"})
        elif step(at, "assign", dispatcher, form_data={"target_unit": unit_key, "instructions": "请按时限整改"},
                  changes={"handling_unit": unit_key, "dispatch_instructions": "请按时限整改"}):
            deadline = start_deadline(at)
            while deadline is not None and rounds < 3:
                rounds += 1
                if rng.random() < EXTENDED:
                    asked = self._work(at, rng.uniform(1, 4))
                    if not step(asked, "request_extension", handler, handler_post,
                                form_data={"extra_days": 2, "reason": "工程量较大", "progress_photos": []},
                                changes={"extension_days": 2, "extension_reason": "工程量较大"}):
                        break
                    granted = self._work(asked, rng.uniform(0.5, 3))
                    if not step(granted, "approve_extension", dispatcher):
                        break
                    deadline.stopped = granted  # superseded by one due later (met stays unknown unless missed)
                    due = self._utc(self.calendar.add_working_days(self._local(deadline.due), 2))
                    deadlines.append(Deadline(deadline.key, deadline.started, due))
                    deadline = deadlines[-1]
                roll = rng.random()
                on_time = self.quality.setdefault(place.unit_id, rng.uniform(*ON_TIME))
                if roll < on_time:
                    span = self.calendar.working_hours_between(self._local(at), self._local(deadline.due))
                    fixed = self._work(at, max(0.1, span * rng.uniform(0.1, 0.97)))
                    fixed = min(fixed, deadline.due)
                elif roll < 1 - (1 - on_time) * STUCK:
                    fixed = deadline.due + dt.timedelta(hours=rng.expovariate(1 / LATE_HOURS))
                else:
                    fixed = deadline.due + dt.timedelta(days=rng.uniform(5, 150))
                if not step(fixed, "rectify", handler, handler_post,
                            form_data={"action_taken": f"已整改：{problem}", "photos_after": [],
                                       "finished_at": local_text(fixed)}):
                    break
                deadline.stopped, deadline.met = fixed, fixed <= deadline.due
                at = self._work(fixed, rng.expovariate(1 / CHECK_HOURS))
                if rng.random() < REWORKED and rounds < 3:
                    if not step(at, "rework", dispatcher, form_data={"verdict": "failed", "comment": "整改不到位"},
                                changes={"rework_count": sum(s.transition == "rework" for s in steps) + 1}):
                        break
                    deadline = start_deadline(at)
                    continue
                if not step(at, "close", dispatcher, form_data={"verdict": "passed"},
                            changes={"closed_on": local_text(at)}):
                    break
                if source == "public" and rng.random() < REOPENED and not any(s.transition == "reopen" for s in steps):
                    at = at + dt.timedelta(days=rng.uniform(2, 12))
                    if step(at, "reopen", None):
                        deadline = start_deadline(at)
                        continue
                break
        self._finish(case_id, created, place, source, reporter, reporter_post, report_id, case_data, steps,
                     records, deadlines)

    def _finish(self, case_id: int, created: dt.datetime, place: Place, source: str, reporter: int | None,
                reporter_post: int | None, report_id: int, data: dict, steps: list[Step], records: list[dict],
                deadlines: list[Deadline]) -> None:
        """The escalations `fangan tick` would have applied, then every row of the case."""
        g, w, flow, rng = self.g, self.w, self.flow, self.rng
        cut = g.cut
        applied: list[tuple[int, str, dt.datetime]] = []  # (deadline index, escalation, at)
        for n, deadline in enumerate(deadlines):
            end = deadline.stopped or cut
            for escalation in self.escalations:
                falls = self._falls_due(escalation, deadline)
                if escalation.when == "overdue" and end > deadline.due:
                    at = min(deadline.due + dt.timedelta(seconds=rng.randrange(5, 300)), end)
                elif escalation.when != "overdue" and falls < end and falls <= deadline.due:
                    at = min(falls + dt.timedelta(seconds=rng.randrange(5, 300)), deadline.due, end)
                else:
                    continue
                applied.append((n, escalation.id, at))
                steps.append(Step(at, None, "escalation", escalation.id, None, "", None, None,
                                  self.notes[escalation.id].format(id=case_id)))
                if "count_missed" in escalation.actions:
                    deadline.met = False
        steps.sort(key=lambda s: s.at)
        # States of escalation steps: the state the case was in then; the overdue flag as the steps leave it.
        state, overdue, version, marks = flow.initial, False, 1, 0
        by_id = {e.id: e for e in self.escalations}
        for s in steps:
            if s.kind == "transition":
                state = s.to_state
                version += 1
                if s.transition == "approve_extension":
                    overdue = False
            elif s.kind == "escalation":
                s.from_state = s.to_state = state
                if "mark_overdue" in by_id[s.transition].actions and not overdue:
                    overdue, marks = True, marks + 1
        transitions = [s for s in steps if s.kind == "transition"]
        last = transitions[-1] if transitions else steps[0]
        spec_state = flow.states[state]
        final = spec_state.kind == "final"
        counted = Counter(c for s in transitions for c in flow.transition(s.transition).counts_as)
        reporter_unit = g.post_unit.get(reporter_post) if reporter_post else None
        for record in records:
            w.add("submissions", **record)
        w.add("cases", id=case_id, scheme_key=g.key, workflow_key=flow.id, definition_version_id=g.row.id,
              state=state, state_kind=spec_state.kind, outcome=spec_state.outcome if final else None, data=data,
              category=data.get("category"), area_id=place.id, unit_id=place.unit_id, assignee_id=None,
              reporter_id=reporter, reporter_unit_id=reporter_unit, submission_id=report_id, source=source,
              overdue=overdue, rework_count=counted["rework"], extension_count=counted["extension"],
              reopen_count=counted["reopen"], created_at=created, updated_at=last.at,
              updated_by_id=last.user_id, closed_at=last.at if final else None, version=version + marks)
        for s in steps:
            w.add("case_events", case_id=case_id, at=s.at, user_id=s.user_id, kind=s.kind, transition=s.transition,
                  from_state=s.from_state, to_state=s.to_state, submission_id=s.submission_id, changes=s.changes,
                  note=s.note, from_unit_id=None, to_unit_id=None)
        deadline_ids = []
        for deadline in deadlines:
            check_at = None
            if deadline.stopped is None:
                done = {name for n, name, _at in applied if deadlines[n] is deadline}
                left = [self._falls_due(e, deadline) for e in self.escalations if e.id not in done
                        and (e.when == "overdue" or cut <= deadline.due)]
                check_at = min(left) if left else None
            # As the app: whether a year between its start and its due day is one the calendar does not know.
            fallback = bool(self.calendar.unknown_years(self._local(deadline.started).date(),
                                                        self._local(deadline.due).date()))
            deadline_ids.append(w.add("case_deadlines", case_id=case_id, key=deadline.key, started_at=deadline.started,
                                      due_at=deadline.due, stopped_at=deadline.stopped, met=deadline.met,
                                      calendar_fallback=fallback, paused_at=None, check_at=check_at))
        for n, name, at in applied:
            w.add("escalations_applied", deadline_id=deadline_ids[n], escalation=name, applied_at=at, host="city")
        if source == "public":
            self._public_report(case_id, created, last.at if final else None, state, steps)

    def _falls_due(self, escalation: Any, deadline: Deadline) -> dt.datetime:
        if escalation.when == "overdue":
            return deadline.due
        start = self.calendar.earliest_start(self._local(deadline.due), escalation.working_hours_before)
        return self._utc(start)

    def _public_report(self, case_id: int, created: dt.datetime, closed: dt.datetime | None, state: str,
                       steps: list[Step]) -> None:
        rng, g = self.rng, self.g
        age = g.cut - created
        roll = rng.random()
        moderation = "pending" if age < dt.timedelta(days=3) or roll < 0.05 else (
            "rejected" if roll < 0.1 else "approved")
        moderated = moderation != "pending" and g.admins
        reopened = any(s.transition == "reopen" for s in steps)
        followup = None
        if closed is not None and rng.random() < 0.4:
            followup = closed + dt.timedelta(days=rng.uniform(0.5, 10))
            followup = followup if followup < g.cut else None
        self.w.add("public_reports", scheme_key=g.key, code=_code(case_id), case_id=case_id, channel="web",
                   client=None, address_hash=secrets.token_hex(16), device_hash=secrets.token_hex(16),
                   name_sealed=None, phone_sealed=None, phone_masked=None, moderation=moderation,
                   moderated_by_id=rng.choice(g.admins) if moderated else None,
                   moderated_at=created + dt.timedelta(hours=rng.uniform(0.2, 24)) if moderated else None,
                   moderation_note=None, exposed=moderation == "approved" and rng.random() < 0.1,
                   confirmed="reopened" if reopened else ("solved" if followup else None),
                   satisfaction=rng.choices(self.satisfaction, (6, 3, 1)[:len(self.satisfaction)])[0]
                   if followup else None, followup_at=followup, followup_note=None, created_at=created)


CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"


def _code(n: int) -> str:
    """A tracking code unique to the case (its id, spread over the alphabet) — ten characters, as the app's."""
    n = (n * 2_654_435_761) % (32 ** 10)
    return "".join(CODE_ALPHABET[(n >> (5 * i)) & 31] for i in range(10))


# -- the command ---------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--database", metavar="URL", help="seed this database (migrated and given the scheme first)")
    where.add_argument("--postgres", action="store_true", help="on a throwaway PostgreSQL cluster")
    parser.add_argument("--scheme", default="lidu", help="a scheme under schemes/ (default lidu)")
    size = Size()
    parser.add_argument("--roads", type=int, default=size.roads)
    parser.add_argument("--units", type=int, default=size.units)
    parser.add_argument("--staff", type=int, default=size.staff)
    parser.add_argument("--days", type=int, default=size.days)
    parser.add_argument("--cases-per-day", type=float, default=size.cases_per_day)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply roads, units, staff and cases a day")
    parser.add_argument("--runs", type=int, default=7, help="timed requests a page (after one warm-up)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    size = Size(args.roads, args.units, args.staff, args.days, args.cases_per_day).scaled(args.scale)
    with database(args) as (url, label):
        run(url, label, args.scheme, size, args.runs, args.seed)


@contextmanager
def database(args: argparse.Namespace) -> Iterator[tuple[str, str]]:
    if args.database:
        yield args.database, args.database.split("://", 1)[0]
    elif args.postgres:
        from tests.support.postgres import create_database, temporary_cluster

        with temporary_cluster(durable=True) as admin_url:
            yield create_database(admin_url, "fangan_city"), "PostgreSQL (throwaway cluster)"
    else:
        with tempfile.TemporaryDirectory(prefix="fangan-city-") as folder:
            yield f"sqlite:///{folder}/city.sqlite", "SQLite (temporary file)"


def bench_app(url: str, folder: str | None = None) -> Any:
    """The app on this database, as the benches run it: a test client logs in without CSRF tokens."""
    from server import create_app

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": secrets.token_hex(16), "TESTING": True,
                      "WTF_CSRF_ENABLED": False, "SESSION_COOKIE_SECURE": False, "REMEMBER_COOKIE_SECURE": False,
                      "RATELIMIT_ENABLED": False})
    if folder:
        app.instance_path = folder
    return app


def prepare(scheme_key: str = "lidu") -> None:
    """Migrate the database and load and activate the shipped scheme unless it is in force already."""
    from flask_migrate import upgrade

    from server.definitions.bundle import read_source
    from server.definitions.service import activate_scheme_version, load_scheme, scheme_in_force

    upgrade()
    if scheme_in_force(scheme_key) is None:
        version, _ = load_scheme(read_source(ROOT / "schemes" / scheme_key))
        activate_scheme_version(version.id)
        db.session.commit()


def run(url: str, label: str, scheme_key: str, size: Size, runs: int, seed: int) -> None:
    with tempfile.TemporaryDirectory(prefix="fangan-city-") as folder:
        app = bench_app(url, folder)
        with app.app_context():
            prepare(scheme_key)
            before = time.perf_counter()
            city = seed_city(scheme_key, roads=size.roads, units=size.units, staff=size.staff,
                             cases_per_day=size.cases_per_day, days=size.days, seed=seed)
            seconds = time.perf_counter() - before
            print(f"seeded on {label}: {size.roads:,} roads, {size.units:,} units, {size.staff:,} staff, "
                  f"{size.cases_per_day:g} cases a working day over {size.days} days "
                  f"({city.start} to {city.today - dt.timedelta(days=1)}) in {seconds:.1f} s")
            print("  " + "; ".join(f"{step} {s:.1f} s" for step, s in city.seconds.items()))
            print(describe(city))
            db.session.remove()
        check(app, city, runs)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def describe(city: City) -> str:
    """Rows added per table, how the cases stand and what the records are."""
    from server.forms.models import Submission
    from server.workflow.models import Case

    lines = [f"  {table:<20} {n:>10,}" for table, n in city.counts.items()]
    by_state = db.session.execute(select(Case.state, Case.state_kind, func.count()).where(
        Case.scheme_key == city.scheme_key).group_by(Case.state, Case.state_kind).order_by(func.count().desc())).all()
    overdue = db.session.scalar(select(func.count()).where(Case.scheme_key == city.scheme_key,
                                                           Case.overdue.is_(True), Case.state_kind != "final"))
    states = ", ".join(f"{state} ({kind}) {n:,}" for state, kind, n in by_state)
    forms = db.session.execute(select(Submission.form_key, func.count()).where(
        Submission.scheme_key == city.scheme_key).group_by(Submission.form_key).order_by(func.count().desc())).all()
    return ("rows added:\n" + "\n".join(lines) + f"\n  cases by state: {states}; open and overdue {overdue:,}"
            + "\n  records by form: " + ", ".join(f"{form} {n:,}" for form, n in forms))


def check(app: Any, city: City, runs: int) -> None:
    """Log in as the district's staff and time the pages they use most: each must answer 200."""
    from server.assessment import service as assessment
    from server.assessment.models import AssessmentPeriod
    from server.auth.models import User
    from server.definitions.service import scheme_in_force
    from server.jobs.queue import run_queued

    key = city.scheme_key
    with app.app_context():
        admin = db.session.scalar(select(User).filter_by(username=city.admins[0])) if city.admins else None
        period_id = None
        sheets = list(scheme_in_force(key).data.get("score_sheets") or [])
        if admin is not None and sheets:
            last_month = (city.today.replace(day=1) - dt.timedelta(days=1)).replace(day=1)
            period_id = db.session.scalar(select(AssessmentPeriod.id).filter_by(
                scheme_key=key, sheet_key=sheets[0], starts_on=last_month))
            if period_id is None:
                with app.test_request_context():
                    period_id = assessment.open_period(admin, key, sheets[0], last_month).id
                    db.session.commit()
        db.session.remove()
    clients: dict[str | None, Any] = {None: app.test_client()}
    for username in {*city.admins[:1], *city.community_heads[:1], *city.keepers[:1]}:
        client = app.test_client()
        answer = client.post("/login", data={"username": username, "password": city.password})
        assert answer.status_code == 302 and "/login" not in answer.headers["Location"], (username, answer.status_code)
        clients[username] = client
    admin, head, keeper = (next(iter(names), None) for names in (city.admins, city.community_heads, city.keepers))
    pages = [(head, f"/cases/{key}/?box=unit", "case queue, a community head's unit"),
             (keeper, f"/cases/{key}/?box=unit", "case queue, a segment keeper's places"),
             (admin, f"/cases/{key}/?box=to_dispatch", "case queue, the office: to dispatch"),
             (admin, f"/cases/{key}/?box=overdue", "case queue, the office: overdue"),
             (None, f"/b/{key}/{city.roads[0]}" if city.roads else None, "a road's board (public)"),
             (admin, f"/patrols/{key}/", "patrol compliance, this week, the office"),
             (admin, f"/assess/period/{period_id}" if period_id else None, "assessment period page (last month)")]
    print(f"pages through the app's test client, warm (one untimed request first), {runs} timed each:")
    for username, url, label in pages:
        if url is None or username not in clients:
            print(f"  {label:<46} skipped (nobody or nothing to show it for)")
            continue
        client = clients[username]
        first = client.get(url)
        assert first.status_code == 200, (url, first.status_code)
        began = time.perf_counter()
        ran = run_queued(app)  # what the page started (a large period's draft): run, then the page it shows
        if ran:
            print(f"  {label:<46} its first view started {ran} job(s), run in {time.perf_counter() - began:.1f} s")
            first = client.get(url)

        def get(client: Any = client, url: str = url) -> None:
            answer = client.get(url)
            assert answer.status_code == 200, (url, answer.status_code)

        p50, p95 = p50_p95(timings(get, runs, warm_up=False))
        print(f"  {label:<46} 200  p50 {p50 * 1000:8.1f} ms  p95 {p95 * 1000:8.1f} ms  {len(first.data) / 1024:6.0f} KB"
              f"  {url}")


if __name__ == "__main__":
    main()
