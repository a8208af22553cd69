"""The scheme in force, compiled once: a frozen, typed object with the JSON Schema's defaults applied.

A scheme definition is checked against its schema when it is loaded; what the rest of the code reads is this
compiled form, made once per stored content (stored definitions never change) and shared by every request.
Nothing can change it (`FrozenDict`, `FrozenList`), and no reader repeats a default: `workday_start` is
09:00 because the schema says so, in one place.

Sections the engine reads have typed accessors (`scheme.tiers["road_chief"].reports_to`,
`scheme.calendar.timezone`); every section stays a read-only mapping too, so templates and JSON answers
read it as they read the definition (`tier.name`, `tier["name"]`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, NoReturn

from .schema import load_schema

# -- frozen containers ------------------------------------------------------------------------------------


def _refuse(self: Any, *_args: Any, **_kwargs: Any) -> NoReturn:
    raise TypeError(f"{type(self).__name__} is read-only: the scheme in force is shared by every request")


class FrozenDict(dict):
    """A dict that refuses every change; JSON, Jinja and `isinstance(x, dict)` see a dict.

    A copy (`dict(d)`, `copy.deepcopy(d)`, pickling) is an ordinary, changeable dict."""

    __slots__ = ()
    __setitem__ = __delitem__ = __ior__ = _refuse  # type: ignore[assignment]
    clear = pop = popitem = setdefault = update = _refuse  # type: ignore[assignment]

    def __reduce__(self) -> tuple[Any, ...]:
        return (dict, (dict(self),))

    def __deepcopy__(self, memo: dict) -> dict:
        import copy

        return {copy.deepcopy(k, memo): copy.deepcopy(v, memo) for k, v in self.items()}

    def __hash__(self) -> int:  # type: ignore[override]
        return id(self)  # usable as a cache key (by identity: the compiled scheme is made once)


class FrozenList(list):
    """A list that refuses every change (see `FrozenDict`)."""

    __slots__ = ()
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse  # type: ignore[assignment]
    append = extend = insert = pop = remove = reverse = sort = clear = _refuse  # type: ignore[assignment]

    def __reduce__(self) -> tuple[Any, ...]:
        return (list, (list(self),))

    def __deepcopy__(self, memo: dict) -> list:
        import copy

        return [copy.deepcopy(v, memo) for v in self]

    def __hash__(self) -> int:  # type: ignore[override]
        return id(self)


def freeze(value: Any) -> Any:
    """A deep, read-only copy of plain JSON-like data."""
    if isinstance(value, Mapping):
        return FrozenDict({k: freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return FrozenList(freeze(v) for v in value)
    return value


# -- the schema's defaults ----------------------------------------------------------------------------------


def with_defaults(kind: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a definition with every `default` its schema declares filled in where the key is missing.

    Follows `properties`, `items` and `$ref` (within a schema file and to `common.json`); a default under
    `oneOf`/`anyOf` is not applied, since which branch holds is the validator's business, not ours.
    """
    return _fill_defaults(load_schema(kind), kind, data)


def _resolve(node: Mapping[str, Any], file: str) -> tuple[Mapping[str, Any], str]:
    seen = 0
    while "$ref" in node and seen < 16:  # a reference chain, never a loop
        target, _, pointer = str(node["$ref"]).partition("#")
        file = target.removesuffix(".json") if target else file
        resolved: Any = load_schema(file)
        for part in pointer.strip("/").split("/") if pointer.strip("/") else ():
            resolved = resolved[part]
        node, seen = {**resolved, **{k: v for k, v in node.items() if k != "$ref"}}, seen + 1
    return node, file


def _fill_defaults(schema: Mapping[str, Any], file: str, value: Any) -> Any:
    schema, file = _resolve(schema, file)
    if isinstance(value, Mapping):
        properties = schema.get("properties") or {}
        out = {}
        for key, item in value.items():
            sub = properties.get(key)
            out[key] = _fill_defaults(sub, file, item) if isinstance(sub, Mapping) else item
        for key, sub in properties.items():
            if key not in out and isinstance(sub, Mapping):
                sub, _file = _resolve(sub, file)
                if "default" in sub:
                    out[key] = sub["default"]
        return out
    if isinstance(value, list):
        items = schema.get("items")
        return [_fill_defaults(items, file, v) if isinstance(items, Mapping) else v for v in value]
    return value


# -- the typed sections ------------------------------------------------------------------------------------


class Role(FrozenDict):
    """A role: what it may do (`capabilities`) and where (`scope`: district, unit, subtree, posted…)."""

    __slots__ = ()

    @property
    def id(self) -> str:
        return self["id"]

    @property
    def scope(self) -> str | None:
        return self.get("scope")

    @property
    def capabilities(self) -> FrozenList:
        return self.get("capabilities") or FrozenList()


class Tier(FrozenDict):
    """A rung of the chief ladder: the role its holders get, whom it reports to, whether several hold it."""

    __slots__ = ()

    @property
    def id(self) -> str:
        return self["id"]

    @property
    def role(self) -> str | None:
        return self.get("role")

    @property
    def reports_to(self) -> str | None:
        return self.get("reports_to")

    @property
    def several(self) -> bool:
        return bool(self.get("several"))


class Kind(FrozenDict):
    """A kind of unit or area (`road`, `segment`, `grid`…)."""

    __slots__ = ()

    @property
    def id(self) -> str:
        return self["id"]

    @property
    def board(self) -> str | None:
        """The notice board definition areas of this kind carry (area kinds only)."""
        return self.get("board")


class PublicSettings(FrozenDict):
    """What the district opens to the public (`public:` in the scheme)."""

    __slots__ = ()

    @property
    def reporting(self) -> bool:
        return bool(self.get("reporting"))

    @property
    def report_form(self) -> str | None:
        return self.get("report_form")

    @property
    def locate_within_m(self) -> float:
        return float(self["locate_within_m"])

    @property
    def followup_days(self) -> float:
        return float(self["followup_days"])

    @property
    def keep_contacts_days(self) -> int | None:
        """Days after a case closes that its reporter's contacts are kept (None: until erased on request)."""
        return self.get("keep_contacts_days")

    @property
    def praise_days(self) -> int:
        return int(self["praise_days"])

    @property
    def exposed_list(self) -> bool:
        return bool(self.get("exposed_list"))

    @property
    def praise_list(self) -> bool:
        return bool(self.get("praise_list"))

    @property
    def flags_list(self) -> bool:
        return bool(self.get("flags_list"))

    @property
    def scores_list(self) -> bool:
        return bool(self.get("scores_list"))

    @property
    def satisfaction(self) -> FrozenList:
        """The answers offered to a reporter who confirms a reply (`value`, `label`, `satisfied`)."""
        return self.get("satisfaction") or FrozenList()


class MapSettings(FrozenDict):
    """Where the district's maps open, their tiles, and the public map (`map:` in the scheme)."""

    __slots__ = ()

    @property
    def center(self) -> tuple[float, float] | None:
        """[latitude, longitude] in WGS-84, or None (a map then fits what it shows)."""
        center = self.get("center")
        return (float(center[0]), float(center[1])) if center else None

    @property
    def zoom(self) -> int:
        return int(self["zoom"])

    @property
    def tiles(self) -> FrozenDict | None:
        """The scheme's own tile source, or None (the site's then applies)."""
        return self.get("tiles")

    @property
    def public_map(self) -> bool:
        return bool(self.get("public_map"))

    @property
    def public_map_days(self) -> int:
        return int(self["public_map_days"])

    @property
    def public_map_precision_m(self) -> float:
        return float(self["public_map_precision_m"])


@dataclass(frozen=True)
class CalendarSettings:
    timezone: str
    workday_start: dt.time
    workday_end: dt.time


def _calendar(settings: Mapping[str, Any]) -> CalendarSettings:
    settings = with_defaults("scheme", {"calendar": settings})["calendar"]
    return CalendarSettings(settings["timezone"], dt.time.fromisoformat(settings["workday_start"]),
                            dt.time.fromisoformat(settings["workday_end"]))


DEFAULT_CALENDAR = _calendar({})
"""The schema's working day and time zone, for a district with no `calendar` (or no such district)."""

NO_PUBLIC = PublicSettings(freeze(with_defaults("scheme", {"public": {}})["public"]))
"""A district that opens nothing to the public (or no such district): the schema's defaults."""

NO_MAP = MapSettings(freeze(with_defaults("scheme", {"map": {}})["map"]))
"""A district that says nothing of its map: the schema's defaults (the site's tiles, no public map)."""


def _by_id(items: Iterable[Mapping[str, Any]], kind: type[FrozenDict]) -> FrozenDict:
    return FrozenDict({item["id"]: kind(item) for item in items})


class Scheme:
    """A scheme definition, compiled: read-only, defaults applied, sections by id."""

    data: FrozenDict
    content_hash: str

    def __init__(self, data: Mapping[str, Any], content_hash: str = "") -> None:
        object.__setattr__(self, "data", freeze(with_defaults("scheme", data)))
        object.__setattr__(self, "content_hash", content_hash)

    __setattr__ = __delattr__ = _refuse  # (cached_property writes the instance's __dict__ directly)

    def __repr__(self) -> str:
        return f"<Scheme {self.key} {self.content_hash[:10]}>"

    @property
    def key(self) -> str:
        return self.data["id"]

    @property
    def name(self) -> Any:
        return self.data.get("name")

    @property
    def short_name(self) -> Any:
        return self.data.get("short_name") or self.data.get("name")

    @property
    def theme(self) -> str | None:
        return self.data.get("theme")

    @cached_property
    def roles(self) -> Mapping[str, Role]:
        return _by_id(self.data.get("roles", ()), Role)

    @cached_property
    def tiers(self) -> Mapping[str, Tier]:
        return _by_id(self.data.get("tiers", ()), Tier)

    @cached_property
    def several_tiers(self) -> frozenset[str]:
        """Tiers several people hold over the same area or unit at once (`several: true`)."""
        return frozenset(t.id for t in self.tiers.values() if t.several)

    @cached_property
    def unit_kinds(self) -> Mapping[str, Kind]:
        return _by_id(self.data.get("unit_kinds", ()), Kind)

    @cached_property
    def area_kinds(self) -> Mapping[str, Kind]:
        return _by_id(self.data.get("area_kinds", ()), Kind)

    @cached_property
    def unit_groups(self) -> Mapping[str, FrozenDict]:
        return _by_id(self.data.get("unit_groups", ()), FrozenDict)

    @property
    def forms(self) -> FrozenList:
        """The forms people fill (`forms:`), in order."""
        return self.data.get("forms") or FrozenList()

    @cached_property
    def forms_in_force(self) -> frozenset[str]:
        """Every form the scheme puts in force: those listed, the patrol form and the public report form."""
        return frozenset([*self.forms, *(f for f in (self.patrol_form, self.public.report_form) if f)])

    @property
    def patrol_form(self) -> str | None:
        return self.data.get("patrol_form")

    @property
    def default_workflow(self) -> str | None:
        return self.data.get("default_workflow")

    @property
    def boards(self) -> FrozenList:
        return self.data.get("boards") or FrozenList()

    @property
    def score_sheets(self) -> FrozenList:
        return self.data.get("score_sheets") or FrozenList()

    @property
    def category_lists(self) -> FrozenList:
        return self.data.get("category_lists") or FrozenList()

    @property
    def routing(self) -> FrozenList:
        return self.data.get("routing") or FrozenList()

    @property
    def patrol_distance_m(self) -> float:
        return float(self.data["patrol_distance_m"])

    @cached_property
    def calendar(self) -> CalendarSettings:
        return _calendar(self.data.get("calendar") or {})

    @cached_property
    def map(self) -> MapSettings:
        return MapSettings(self.data.get("map") or NO_MAP)

    @cached_property
    def public(self) -> PublicSettings:
        return PublicSettings(self.data.get("public") or NO_PUBLIC)


def compile_scheme(data: Mapping[str, Any], content_hash: str = "") -> Scheme:
    """Compile a checked scheme definition (`definitions.service.scheme_in_force` keeps one per content)."""
    return Scheme(data, content_hash)
