"""The registries (server/core/registry.py) and the built-in field types, choice sources and metric sources in them:
each entry is whole (its snippets exist, its API schema is a schema, its docs row is written) and the definition
language lists exactly what is registered."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from server.assessment.sources import METRIC_SOURCES
from server.core.registry import Registry, RegistryError, registry
from server.definitions.schema import schema_of
from server.forms.choices import CHOICE_SOURCES
from server.forms.engine import FILE_TYPES, FieldSpec
from server.forms.fields import FIELD_TYPES
from server.public.engine import OPEN311_DATATYPES

TEMPLATES = Path(__file__).resolve().parents[2] / "server" / "forms" / "templates" / "forms"
GEOREPORT_DATATYPES = {"string", "number", "datetime", "text", "singlevaluelist", "multivaluelist"}


def test_a_registry_registers_looks_up_and_takes_out():
    things: Registry[str] = Registry("thing")
    with pytest.raises(RegistryError, match="no thing is registered"):
        things.require()
    things.add("a", "A")
    with pytest.raises(RegistryError, match="registered already"):
        things.add("a", "again")
    before = things.version
    with things.registered("b", "B"):
        assert things.names() == ["a", "b"] and things["b"] == "B" and things.version > before
    assert "b" not in things and things.get("b") is None and things.get(None) is None
    with pytest.raises(RegistryError, match="unknown thing 'b'"):
        things["b"]


def test_one_registry_per_kind_of_thing():
    assert registry("field type") is FIELD_TYPES
    assert registry("choice source") is CHOICE_SOURCES
    assert registry("metric source") is METRIC_SOURCES


@pytest.mark.parametrize("name", FIELD_TYPES.names())
def test_every_field_type_is_whole(name):
    kind = FIELD_TYPES[name]
    assert kind.name == name
    assert kind.phone and kind.stored, "its row of the docs table"
    if kind.template:
        assert (TEMPLATES / "fields" / f"{kind.template}.html").is_file()
    if kind.has_value and not kind.holds_rows:
        assert (TEMPLATES / "values" / f"{kind.display}.html").is_file()
    schema = kind.api_schema()
    assert (schema is None) == (not kind.has_value or kind.transparent)
    if schema is not None:
        Draft202012Validator.check_schema(schema)
    assert kind.open311_datatype in GEOREPORT_DATATYPES | {None}
    assert kind.live_choices in CHOICE_SOURCES.names() + [None]
    spec = FieldSpec("f", name)
    assert spec.kind is kind and spec.has_value == kind.has_value
    assert kind.empty() == ([] if kind.multiple else None)


def test_the_definition_language_lists_what_is_registered():
    field = schema_of("form")["$defs"]["field"]["properties"]
    assert field["type"]["enum"] == FIELD_TYPES.names()
    assert field["choices_from"]["enum"] == CHOICE_SOURCES.names()
    metric = schema_of("score_sheet")["properties"]["metrics"]["items"]["properties"]
    assert metric["source"]["enum"] == METRIC_SOURCES.names()


def test_live_views_by_name_follow_the_registry():
    assert set(FILE_TYPES) == {"photo", "file"} and "photo" in FILE_TYPES and "text" not in FILE_TYPES
    assert OPEN311_DATATYPES["textarea"] == "text" and "photo" not in OPEN311_DATATYPES


def test_every_choice_source_is_whole():
    field = schema_of("form")["$defs"]["field"]["properties"]
    spec_fields = {f.name for f in dataclasses.fields(FieldSpec)}
    for name, source in CHOICE_SOURCES.items():
        assert source.name == name and source.doc and {"value", "label"} <= set(source.reads)
        if source.kinds_from:
            assert source.kinds_from in field and source.kinds_from in spec_fields


def test_every_metric_source_is_whole():
    options = set(schema_of("score_sheet")["properties"]["metrics"]["items"]["properties"])
    for name, source in METRIC_SOURCES.items():
        assert source.name == name and source.doc
        assert source.reads <= options, "a source reads only options a score sheet may give"
        assert set(source.needs) <= source.reads
    assert METRIC_SOURCES["manual"].entered and not METRIC_SOURCES["case_rate"].entered
