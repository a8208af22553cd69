"""JSON Schemas of every definition kind, and schema validation with friendly messages."""

from __future__ import annotations

import copy
import json
from functools import cache, lru_cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource

from ..core.registry import registry, versions
from ..core.suggestions import close_matches
from ..expressions import ExpressionError, check_expression
from .errors import DefinitionError, expression_problem_zh, format_path
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


def _fill(node: Any) -> Any:
    if isinstance(node, dict):
        if "x-registry" in node:
            node["enum"] = registry(node["x-registry"]).require().names()
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


_TYPE_NAMES = {"string": "text", "integer": "a whole number", "number": "a number", "boolean": "true or false",
               "object": "a mapping of fields", "array": "a list", "null": "nothing"}
_TYPE_NAMES_ZH = {"string": "文字", "integer": "整数", "number": "数字", "boolean": "true 或 false",
                  "object": "键值映射", "array": "列表", "null": "空值"}


def _describe_type(expected: Any, names: dict[str, str] = _TYPE_NAMES, joiner: str = " or ") -> str:
    listed = expected if isinstance(expected, list) else [expected]
    return joiner.join(names.get(n, n) for n in listed)


def _message(error: ValidationError) -> tuple[str, str]:
    """The problem in English and in Chinese (the administrators' pages speak it); the values quoted as given."""
    v, inst = error.validator, error.instance
    if v == "enum":
        allowed = ", ".join(_quote(x) for x in error.validator_value)
        return f"{_quote(inst)} is not one of {allowed}", f"{_quote(inst)} 不是可用的值，可用：{allowed}"
    if v == "const":
        wanted = _quote(error.validator_value)
        return f"{_quote(inst)} must be {wanted}", f"{_quote(inst)} 应为 {wanted}"
    if v == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return f"missing required field '{missing}'", f"缺少必填字段“{missing}”"
    if v == "type":
        return (f"expected {_describe_type(error.validator_value)}, got {_quote(inst)}",
                f"应为{_describe_type(error.validator_value, _TYPE_NAMES_ZH, '或')}，实际为 {_quote(inst)}")
    if v == "pattern" and error.validator_value == load_schema("common")["$defs"]["id"]["pattern"]:
        return (f"{_quote(inst)} is not a valid id (lower-case letters, digits and '_', starting with a letter)",
                f"{_quote(inst)} 不是有效的编号（小写字母、数字和“_”，以字母开头）")
    if v == "format" and error.validator_value == "fangan-expression":
        return (f"invalid expression {_quote(inst)}: {error.cause}",
                f"表达式 {_quote(inst)} 有误：{expression_problem_zh(str(error.cause))}")
    if v == "format":
        what = error.validator_value
        return f"{_quote(inst)} is not a valid {what}", f"{_quote(inst)} 不是有效的 {what}"
    if v in ("minProperties", "maxProperties") and error.validator_value == 1 and v == "maxProperties":
        keys = ", ".join(error.schema.get("properties", {}))
        return "give exactly one of: " + keys, "只能给出其中一项：" + keys
    if v == "minProperties" and isinstance(inst, dict) and not inst:
        keys = ", ".join(error.schema.get("properties", {}))
        return "must not be empty: give at least one of " + keys, "不能为空：至少给出其中一项：" + keys
    if v == "minItems" and not inst:
        return "must not be empty", "不能为空"
    if v == "uniqueItems":
        return f"{_quote(inst)} has repeated items", f"{_quote(inst)} 有重复的项"
    if v in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        words = {"minimum": "不能小于", "exclusiveMinimum": "应大于", "maximum": "不能大于",
                 "exclusiveMaximum": "应小于"}
        return error.message, f"{_quote(inst)} {words[v]} {error.validator_value}"
    if v in ("maxLength", "minLength", "maxItems", "minItems"):
        words = {"maxLength": "太长（最多 {n} 个字符）", "minLength": "太短（至少 {n} 个字符）",
                 "maxItems": "项数太多（最多 {n} 项）", "minItems": "项数太少（至少 {n} 项）"}
        return error.message, f"{_quote(inst)[:60]} " + words[v].format(n=error.validator_value)
    return error.message, ""


def _unknown_field_errors(doc: SourceDocument, error: ValidationError) -> list[DefinitionError]:
    known = list(error.schema.get("properties", {}))
    path = list(error.absolute_path)
    out = []
    for key in error.instance:
        if key in known:
            continue
        hint = close_matches(str(key), known, n=1)
        suggestion = f" (did you mean '{hint[0]}'?)" if hint else ""
        suggestion_zh = f"（是否应为“{hint[0]}”？）" if hint else ""
        out.append(DefinitionError(doc.file, key_line(doc.tree, path, key), format_path([*path, key]),
                                   f"unknown field '{key}'{suggestion}", f"未知字段“{key}”{suggestion_zh}"))
    return out


def _to_errors(doc: SourceDocument, error: ValidationError) -> list[DefinitionError]:
    if error.validator in ("anyOf", "oneOf") and error.context:
        error = best_match(error.context)
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
