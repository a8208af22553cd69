"""JSON Schemas of every definition kind, and schema validation with friendly messages."""

from __future__ import annotations

import copy
import json
import re
from functools import cache, lru_cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource

from ..core.registry import registry, versions
from ..core.suggestions import close_matches
from ..expressions import ExpressionError, check_expression
from .errors import N_, DefinitionError, Said, expression_problem_zh, format_path, said, say
from .errors import hint as hint_of
from .loader import SourceDocument, key_line

KINDS = ("scheme", "form", "workflow", "patrol_rules", "score_sheet", "board", "category_list")
SCHEMA_FILES = (*KINDS, "common")
BASE_URI = "https://fangan.local/schemas/"

format_checker = FormatChecker()


@format_checker.checks("fangan-expression", raises=ExpressionError)
def _is_expression(value: object) -> bool:
    if not isinstance(value, str):
        return True
    problems = check_expression(value)
    if problems:
        raise ExpressionError("; ".join(problems))
    return True


@cache
def load_schema(name: str) -> dict[str, Any]:
    """The JSON Schema of one kind (or `common`), as shipped in the package."""
    text = resources.files(__package__).joinpath("schemas", f"{name}.json").read_text("utf-8")
    return json.loads(text)


def schema_of(name: str) -> dict[str, Any]:
    """The JSON Schema of one kind (or `common`) as definitions are checked against it: a property that says
    `"x-registry": "<kind of thing>"` (a field's `type`, `choices_from`, a metric's `source`) takes the names
    registered in that registry (server/core/registry.py) as its `enum`."""
    return _filled(name, versions())


@lru_cache(maxsize=64)
def _filled(name: str, _versions: tuple) -> dict[str, Any]:
    return _fill(copy.deepcopy(load_schema(name)))


@cache
def _language_pattern() -> str:
    """A language code as texts may use it: a language CLDR knows (`fr`, `bo`, `yue`), then region or script
    subtags (`pt-BR`) — so `jp` or `eng` is a typo named, not a language kept and never shown."""
    from babel import Locale

    codes = sorted((c for c in Locale("en").languages if re.fullmatch(r"[a-z]{2,3}", c)), key=len, reverse=True)
    return "^(" + "|".join(codes) + ")(-[A-Za-z0-9]{2,8})*$"


def _fill(node: Any) -> Any:
    if isinstance(node, dict):
        if "x-registry" in node:
            node["enum"] = registry(node["x-registry"]).require().names()
        if node.get("x-languages"):  # a text's language keys: the codes CLDR knows
            node["pattern"] = _language_pattern()
        for value in node.values():
            _fill(value)
    elif isinstance(node, list):
        for value in node:
            _fill(value)
    return node


@lru_cache(maxsize=8)
def _registry(_versions: tuple) -> Registry:
    return Registry().with_resources(
        (BASE_URI + f"{name}.json", Resource.from_contents(schema_of(name))) for name in SCHEMA_FILES
    )


def validator_for(kind: str) -> Draft202012Validator:
    """The validator of one kind, with the registered names (built again when something is registered)."""
    return _validator_for(kind, versions())


@lru_cache(maxsize=64)
def _validator_for(kind: str, _versions: tuple) -> Draft202012Validator:
    schema = schema_of(kind)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, registry=_registry(_versions), format_checker=format_checker)


def _quote(value: Any) -> str:
    return repr(value) if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


# The JSON types a schema asks for, in words (in the catalogue: said in either language).
_TYPE_NAMES = {"string": N_("text"), "integer": N_("a whole number"), "number": N_("a number"),
               "boolean": N_("true or false"), "object": N_("a mapping of fields"), "array": N_("a list"),
               "null": N_("nothing")}


def _describe_type(expected: Any) -> Said:
    listed = expected if isinstance(expected, list) else [expected]
    words = [say(_TYPE_NAMES[n]) if n in _TYPE_NAMES else n for n in listed]
    out = words[0]
    for more in words[1:]:
        out = say(N_("%(one)s or %(other)s"), one=out, other=more)
    return out


def _message(error: ValidationError) -> tuple[str, str]:
    """The problem in English and in Chinese (the administrators' pages speak it); the values quoted as given."""
    v, inst = error.validator, error.instance
    if v == "enum":
        return said(N_("%(value)s is not one of %(allowed)s"), value=_quote(inst),
                    allowed=", ".join(_quote(x) for x in error.validator_value))
    if v == "const":
        return said(N_("%(value)s must be %(wanted)s"), value=_quote(inst), wanted=_quote(error.validator_value))
    if v == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return said(N_("missing required field '%(name)s'"), name=missing)
    if v == "type":
        return said(N_("expected %(wanted)s, got %(value)s"), wanted=_describe_type(error.validator_value),
                    value=_quote(inst))
    if v == "pattern" and error.validator_value == load_schema("common")["$defs"]["id"]["pattern"]:
        return said(N_("%(value)s is not a valid id (lower-case letters, digits and '_', starting with a letter)"),
                    value=_quote(inst))
    if v == "format" and error.validator_value == "fangan-expression":
        template, problem = N_("invalid expression %(value)s: %(problem)s"), str(error.cause)
        return (say(template, value=_quote(inst), problem=problem).in_language("en"),
                say(template, value=_quote(inst), problem=expression_problem_zh(problem)).in_language("zh"))
    if v == "format":
        return said(N_("%(value)s is not a valid %(what)s"), value=_quote(inst), what=error.validator_value)
    if v in ("minProperties", "maxProperties") and error.validator_value == 1 and v == "maxProperties":
        return said(N_("give exactly one of: %(keys)s"), keys=", ".join(error.schema.get("properties", {})))
    if v == "minProperties" and isinstance(inst, dict) and not inst:
        return said(N_("must not be empty: give at least one of %(keys)s"),
                    keys=", ".join(error.schema.get("properties", {})))
    if v == "minItems" and not inst:
        return said(N_("must not be empty"))
    if v == "not" and isinstance(error.validator_value, dict) and "enum" in error.validator_value:
        return said(N_("%(value)s may not be used here"), value=_quote(inst))
    if v == "uniqueItems":
        return said(N_("%(value)s has repeated items"), value=_quote(inst))
    bounds = {"minimum": N_("%(value)s is less than the minimum of %(limit)s"),
              "exclusiveMinimum": N_("%(value)s is less than or equal to the minimum of %(limit)s"),
              "maximum": N_("%(value)s is greater than the maximum of %(limit)s"),
              "exclusiveMaximum": N_("%(value)s is greater than or equal to the maximum of %(limit)s"),
              "maxLength": N_("%(value)s is too long (at most %(limit)s characters)"),
              "minLength": N_("%(value)s is too short (at least %(limit)s characters)"),
              "maxItems": N_("%(value)s has too many items (at most %(limit)s)"),
              "minItems": N_("%(value)s has too few items (at least %(limit)s)")}
    if v in bounds:  # jsonschema's own English, kept as it is; the Chinese from the catalogue
        return error.message, say(bounds[v], value=_quote(inst)[:60], limit=error.validator_value).in_language("zh")
    return error.message, ""


def _unknown_field_errors(doc: SourceDocument, error: ValidationError) -> list[DefinitionError]:
    known = list(error.schema.get("properties", {}))
    patterns = [re.compile(p) for p in error.schema.get("patternProperties", {})]
    path = list(error.absolute_path)
    out = []
    for key in error.instance:
        if key in known or any(p.search(str(key)) for p in patterns):  # (a text's other languages: `fr`)
            continue
        hint = close_matches(str(key), known, n=1)
        out.append(DefinitionError(doc.file, key_line(doc.tree, path, key), format_path([*path, key]),
                                   *said(N_("unknown field '%(name)s'%(hint)s"), name=key,
                                         hint=hint_of(hint[0] if hint else None))))
    return out


_LANGUAGE_SHAPE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


def _language_errors(doc: SourceDocument, error: ValidationError) -> list[DefinitionError]:
    """A text's key shaped like a language code that is none (`jp`, `eng`): named at the key. Keys of another
    shape (`ZH`) are unknown fields, and `cn` has its own word: both are said once, elsewhere."""
    key = str(error.instance)
    if not _LANGUAGE_SHAPE.match(key) or key == "cn":
        return []
    return [doc.error([*error.absolute_path, key], *said(N_(
        "'%(value)s' is not a language code: texts use codes such as zh, en, fr, bo or pt-BR"), value=key))]


def _to_errors(doc: SourceDocument, error: ValidationError) -> list[DefinitionError]:
    if error.validator in ("anyOf", "oneOf") and error.context:
        error = best_match(error.context)
    if error.validator == "pattern" and error.schema.get("x-languages"):
        return _language_errors(doc, error)
    if error.validator == "additionalProperties" and error.validator_value is False and isinstance(
        error.instance, dict
    ):
        return _unknown_field_errors(doc, error)
    return [doc.error(list(error.absolute_path), *_message(error))]


def validate_schema(doc: SourceDocument) -> list[DefinitionError]:
    """Check one parsed document against the schema of its `kind`; return every error."""
    data = doc.data
    if not isinstance(data, dict):
        return [doc.error([], "a definition file must be a mapping with 'kind' and 'id'")]
    kind = data.get("kind")
    if kind not in KINDS:
        if kind is None:
            return [doc.error([], "missing required field 'kind' (one of " + ", ".join(map(repr, KINDS)) + ")")]
        return [doc.error(["kind"], f"{_quote(kind)} is not one of " + ", ".join(map(repr, KINDS)))]
    errors: list[DefinitionError] = []
    for error in validator_for(kind).iter_errors(data):
        errors.extend(_to_errors(doc, error))
    return errors
