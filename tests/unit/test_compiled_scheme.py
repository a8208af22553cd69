"""The compiled scheme: the schema's defaults applied once, nothing changeable, typed sections."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path

import pytest
import yaml

from server.definitions.compiled import (
    DEFAULT_CALENDAR,
    NO_PUBLIC,
    FrozenDict,
    FrozenList,
    compile_scheme,
    freeze,
    with_defaults,
)
from server.definitions.schema import load_schema

ROOT = Path(__file__).resolve().parents[2]

BARE = {"kind": "scheme", "id": "bare", "name": {"zh": "空", "en": "Bare"},
        "roles": [{"id": "office", "name": "Office", "scope": "district", "capabilities": ["case.view"]}],
        "tiers": [{"id": "chief", "name": "Chief", "role": "office"},
                  {"id": "deputy", "name": "Deputy", "role": "office", "reports_to": "chief", "several": True}],
        "area_kinds": [{"id": "road", "name": "Road", "board": "standard"}]}


def _schema_default(*path: str):
    node = load_schema("scheme")
    for part in path:
        node = node["properties"][part]
    return node["default"]


def test_the_schemas_defaults_are_applied_where_a_scheme_says_nothing():
    scheme = compile_scheme(BARE)
    assert scheme.calendar.timezone == _schema_default("calendar", "timezone") == "Asia/Shanghai"
    assert scheme.calendar.workday_start == dt.time.fromisoformat(_schema_default("calendar", "workday_start"))
    assert scheme.calendar.workday_end == dt.time(17, 30)
    assert scheme.patrol_distance_m == float(_schema_default("patrol_distance_m"))
    assert scheme.public.locate_within_m == 200 and scheme.public.followup_days == 15
    assert scheme.public.praise_days == 90 and not scheme.public.reporting
    assert scheme.data["locale"] == "zh_CN"
    # defaults inside list items, through the schema's own items
    assert scheme.tiers["chief"]["several"] is False and scheme.tiers["chief"]["public"] is True
    assert scheme.data["area_kinds"][0]["has_range"] is False and scheme.data["area_kinds"][0]["geometry"] == "none"
    # the districts that open nothing and have no calendar read the same defaults
    assert DEFAULT_CALENDAR == scheme.calendar and NO_PUBLIC == scheme.public


def test_what_a_scheme_says_wins_over_a_default():
    scheme = compile_scheme({**BARE, "patrol_distance_m": 80,
                             "calendar": {"timezone": "Asia/Urumqi", "workday_start": "10:00"},
                             "public": {"reporting": True, "report_form": "report", "followup_days": 7}})
    assert scheme.patrol_distance_m == 80
    assert scheme.calendar.timezone == "Asia/Urumqi" and scheme.calendar.workday_start == dt.time(10)
    assert scheme.calendar.workday_end == dt.time(17, 30)
    assert scheme.public.reporting and scheme.public.report_form == "report" and scheme.public.followup_days == 7
    assert scheme.public.locate_within_m == 200
    assert scheme.forms_in_force == {"report"}


def test_the_source_is_not_changed_by_compiling():
    source = copy.deepcopy(BARE)
    compile_scheme(source)
    assert source == BARE


def test_typed_sections():
    scheme = compile_scheme(BARE)
    assert scheme.key == "bare" and scheme.short_name == {"zh": "空", "en": "Bare"}
    assert scheme.roles["office"].scope == "district" and list(scheme.roles["office"].capabilities) == ["case.view"]
    assert scheme.tiers["deputy"].reports_to == "chief" and scheme.tiers["deputy"].role == "office"
    assert scheme.several_tiers == {"deputy"}
    assert scheme.area_kinds["road"].board == "standard" and scheme.unit_kinds == {}
    assert list(scheme.score_sheets) == [] and list(scheme.routing) == [] and scheme.default_workflow is None


@pytest.mark.parametrize("change", [
    lambda s: s.data.__setitem__("id", "other"),
    lambda s: s.data.update(id="other"),
    lambda s: s.data.pop("id"),
    lambda s: s.data["tiers"].append({"id": "x"}),
    lambda s: s.data["tiers"][0].__setitem__("role", "admin"),
    lambda s: s.tiers["chief"].__setitem__("role", "admin"),
    lambda s: s.roles["office"]["capabilities"].append("scheme.manage"),
    lambda s: s.data["tiers"].sort(key=str),
    lambda s: setattr(s, "data", {}),
    lambda s: delattr(s, "content_hash"),
])
def test_nothing_can_change_the_compiled_scheme(change):
    scheme = compile_scheme(BARE)
    with pytest.raises(TypeError, match="read-only"):
        change(scheme)
    assert scheme.tiers["chief"].role == "office" and scheme.data["id"] == "bare"


def test_frozen_data_reads_like_the_definition_and_copies_are_ordinary():
    scheme = compile_scheme(BARE)
    assert isinstance(scheme.data, dict) and isinstance(scheme.data["tiers"], list)
    assert json.loads(json.dumps(scheme.data))["tiers"][1]["reports_to"] == "chief"
    mine = copy.deepcopy(scheme.data)
    mine["tiers"].append({"id": "x"})  # a copy is the caller's own to change
    assert type(mine) is dict and type(mine["tiers"]) is list and len(scheme.data["tiers"]) == 2
    assert isinstance(freeze({"a": [{"b": 1}]})["a"], FrozenList)
    assert isinstance(freeze({"a": [{"b": 1}]})["a"][0], FrozenDict)


def test_defaults_follow_references_into_common_definitions():
    filled = with_defaults("scheme", {"units": [{"id": "u", "name": "U", "kind": "town"}],
                                      "categories": [{"id": "c", "name": "C"}]})
    assert filled["units"][0]["public"] is True and filled["categories"][0]["public"] is True


@pytest.mark.parametrize("name", ["lidu", "luzhang", "chengguan"])
def test_every_shipped_scheme_compiles(name):
    data = yaml.safe_load((ROOT / "schemes" / name / "scheme.yaml").read_text("utf-8"))
    scheme = compile_scheme(data, "hash")
    assert scheme.key == data["id"] and set(scheme.tiers) == {t["id"] for t in data.get("tiers", [])}
    assert scheme.calendar.timezone and scheme.patrol_distance_m > 0
    for key, tier in scheme.tiers.items():
        assert tier.role is None or tier.role in scheme.roles, key
