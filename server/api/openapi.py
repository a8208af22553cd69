"""The OpenAPI 3.1 document served at `/api/v1/openapi.json`, built from plain dicts.

Other parts of the app contribute their own operations with `add_paths` (Open311, say) when their module is
imported; `document()` assembles everything registered. Every parameter documented here is checked by the views
exactly as written (pattern, range, enum), so that a request the document calls invalid is refused.
"""

from __future__ import annotations

import copy
from typing import Any

from ..forms.fields import FIELD_TYPES

# path → method → operation; component name → schema; tag name → description. Filled by `add_paths`.
OPENAPI_PATHS: dict[str, dict[str, dict[str, Any]]] = {}
OPENAPI_SCHEMAS: dict[str, dict[str, Any]] = {}
OPENAPI_TAGS: dict[str, str] = {}

ID_PATTERN = "^[a-z][a-z0-9_]*$"  # definition ids (schemes, forms, states, steps, rules): common.json's `id`
MAX_ID = 2**31 - 1


def add_paths(paths: dict[str, dict[str, dict[str, Any]]], schemas: dict[str, dict[str, Any]] | None = None,
              tags: dict[str, str] | None = None) -> None:
    """Contribute operations (path → method → operation), the component schemas they reference and their tags."""
    for path, operations in paths.items():
        OPENAPI_PATHS.setdefault(path, {}).update(operations)
    OPENAPI_SCHEMAS.update(schemas or {})
    OPENAPI_TAGS.update(tags or {})


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def json_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def error_response(description: str) -> dict[str, Any]:
    return {"description": description, **json_content(ref("Error"))}


ERRORS = {
    400: "The body is not valid JSON.",
    401: "No token, or a token that is unknown, revoked or whose user is blocked.",
    403: "The client's user may not do this (its roles and posts decide).",
    404: "No such district, case, record, period, rule or road, or nothing published yet.",
    409: "The case changed since the version you acted on, or the step cannot be taken with these answers.",
    415: "The body is not sent as application/json.",
    422: "Values refused: `error.fields` lists the messages by field (a form's fields by path, like `rows.0.qty`).",
    429: "Too many requests from this client: wait for the time in Retry-After.",
}


def responses(ok: dict[int, tuple[str, dict[str, Any]]], errors: tuple[int, ...], *, located: bool = False
              ) -> dict[str, Any]:
    """Success responses (status → (description, schema)) and the error responses an operation can give."""
    out: dict[str, Any] = {}
    for status, (description, schema) in ok.items():
        out[str(status)] = {"description": description, **json_content(schema)}
        if located and status == 201:
            out[str(status)]["headers"] = {"Location": {"description": "Where the new resource is read.",
                                                        "schema": {"type": "string"}}}
    for status in errors:
        out[str(status)] = error_response(ERRORS[status])
    return out


def path_param(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": schema}


def query_param(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


def id_schema(description: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {"type": "string", "pattern": ID_PATTERN, "minLength": 1, "maxLength": 64}
    if description:
        out["description"] = description
    return out


def document() -> dict[str, Any]:
    """The whole OpenAPI document: this API's operations and every contributed one."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Fangan API",
            "version": "1",
            "summary": "Cases, transitions, records, patrol compliance, scores and notice boards of a district.",
            "description": (
                "For the systems a district already runs. Every request but this document's carries "
                "`Authorization: Bearer <token>`; a token belongs to a client created with "
                "`fangan api create-client NAME --user USERNAME` and acts as that user, with exactly its roles "
                "and posts. Errors are `{\"error\": {\"code\", \"message\", \"fields\"?}}`."),
        },
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": []}],
        "tags": [{"name": name, "description": text} for name, text in OPENAPI_TAGS.items()],
        "paths": copy.deepcopy(OPENAPI_PATHS),
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer",
                                               "description": "A client token (`fg_…`), shown once at creation."}},
            "schemas": {**copy.deepcopy(OPENAPI_SCHEMAS), "FormValues": form_values_schema()},
        },
    }


def district_document(scheme_key: str, scheme_name: str, forms: list[tuple[str, Any]]) -> dict[str, Any]:
    """The document for one district: the whole API, and each form in force with its own operation and its values
    typed field by field (names, types, choices, required), so an integrator never reads the definitions."""
    from ..web.i18n import tr

    out = document()
    out["info"]["title"] = f"Fangan API · {scheme_name}"
    out["info"]["description"] += (f" This document is the district `{scheme_key}`'s: each of its forms has an "
                                   "operation of its own with its fields typed.")
    for form_key, spec in forms:
        name = _schema_name(form_key)
        out["components"]["schemas"][f"{name}Values"] = form_schema(spec, tr)
        out["components"]["schemas"][f"Submit{name}"] = _object(
            {"values": ref(f"{name}Values")}, f"The values of the form {tr(spec.name) or form_key}.", closed=True)
        operation = _operation(
            f"submit{name}", "records", f"Fill the form {tr(spec.name) or form_key} ({form_key})",
            tr(spec.description) or "Stores a record of the form in force, checked as on the phone.",
            {201: ("The record stored.", ref("Submission")),
             200: ("The record an earlier request with the same Idempotency-Key stored.", ref("Submission"))},
            WRITE_ERRORS, [IDEMPOTENCY], ref(f"Submit{name}"))
        out["paths"][f"/api/v1/schemes/{scheme_key}/forms/{form_key}/submissions"] = {"post": operation}
    return out


def _schema_name(form_key: str) -> str:
    """A form's id as a schema name (patrol_log → PatrolLog): what a generated client names its class."""
    return "".join(part[:1].upper() + part[1:] for part in form_key.replace("-", "_").split("_") if part) or "Form"


def form_schema(spec: Any, tr: Any) -> dict[str, Any]:
    """A form's values as a JSON Schema: each field that takes a value, typed by its type, described by its label.
    Always required fields are listed as required; one required only when another answer says so is described."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    for f in spec.top_level():
        schema = f.kind.api_schema(f)
        if schema is None or f.always_calculated or f.sealed:
            continue  # notes take no value; calculated fields (read-only ones with calculate_on too) are the server's
        # The label leads the description; no `title`: generators name classes after titles, and a Chinese
        # label would make a class name nobody can type.
        notes = [tr(f.label) or f.id] + ([tr(f.hint)] if f.hint else [])
        if f.required and f.visible_if is None:
            required.append(f.id)
        elif f.required or f.required_if is not None:
            notes.append("(required when the form shows it or its condition holds)")
        if f.calculate is not None:  # calculated on named changes: the client's value is kept
            notes.append(f"(calculated when left empty and {', '.join(f.calculate_on)} has a value)")
        if f.choice_filter is not None:  # the schema lists every choice; which are allowed depends on the answers
            notes.append("(only the choices its filter keeps for the other answers are allowed)")
        properties[f.id] = {**schema, "description": " — ".join(n for n in notes if n)}
    out: dict[str, Any] = {"type": "object", "description": tr(spec.name) or spec.id, "properties": properties,
                           "additionalProperties": False}
    if required:
        out["required"] = required
    return out


def form_values_schema() -> dict[str, Any]:
    """A form's values in the API: typed by each field's type, as the field type registry says (the JSON Schema of
    each type's value is under `x-field-types`)."""
    typed = {name: kind.api_schema() for name, kind in FIELD_TYPES.items() if kind.api_schema() is not None}
    described = "; ".join(f"{name}: {kind.api_doc or kind.stored}" for name, kind in FIELD_TYPES.items()
                          if name in typed)
    return {
        "type": "object",
        "description": (
            f"Field values by field id, typed as JSON by the field's type ({described}). Calculated fields are "
            "computed by the server. The form's own rules (required, visibility, constraints, choices) apply as on "
            "the phone."),
        "additionalProperties": True,
        "x-field-types": typed,
    }


# -- this API's own operations -----------------------------------------------------------------------------------

NULLABLE_STRING = {"type": ["string", "null"]}
NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}
NULLABLE_DATE = {"type": ["string", "null"], "format": "date"}
TIME = {"type": "string", "format": "date-time"}
DATE = {"type": "string", "format": "date"}


def _object(properties: dict[str, Any], description: str = "", *, closed: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "required": list(properties), "properties": properties}
    if description:
        out["description"] = description
    if closed:
        out["additionalProperties"] = False
    return out


SCHEMAS: dict[str, dict[str, Any]] = {
    "Error": _object({"error": {
        "type": "object", "required": ["code", "message"],
        "properties": {
            "code": {"type": "string", "description": "unauthorized, forbidden, not_found, conflict, "
                                                      "validation_failed, bad_request, rate_limited, …"},
            "message": {"type": "string", "description": "For people, in the client user's language."},
            "fields": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}},
                       "description": "Messages by field (422 only)."},
        }}}),
    "Deadline": _object({
        "key": {"type": "string"}, "started_at": TIME, "due_at": TIME, "stopped_at": NULLABLE_TIME,
        "paused_at": NULLABLE_TIME, "met": {"type": ["boolean", "null"]}}),
    "Case": _object({
        "id": {"type": "integer"}, "scheme": {"type": "string"}, "workflow": {"type": "string"},
        "version": {"type": "integer", "description": "Send it back as `expected_version` to take a step."},
        "state": {"type": "string"}, "state_name": {"type": "string"},
        "state_kind": {"type": "string", "enum": ["open", "waiting", "final"]},
        "outcome": NULLABLE_STRING, "category": NULLABLE_STRING,
        "area": {**NULLABLE_STRING, "description": "The area's key."},
        "unit": {**NULLABLE_STRING, "description": "The assigned unit's key."},
        "assignee": {**NULLABLE_STRING, "description": "A username."}, "reporter": NULLABLE_STRING,
        "overdue": {"type": "boolean"},
        "report": {"type": ["integer", "null"], "description": "The record the case was opened from."},
        "data": {"type": "object", "description": "The case's fields: the report's values and those steps set."},
        "created_at": TIME, "updated_at": TIME, "closed_at": NULLABLE_TIME,
        "deadlines": {"type": "array", "items": ref("Deadline")},
    }),
    "TimelineEvent": _object({
        "at": TIME, "kind": {"type": "string", "description": "opened, transition or escalation"},
        "transition": NULLABLE_STRING, "from_state": NULLABLE_STRING, "to_state": NULLABLE_STRING,
        "user": NULLABLE_STRING, "submission": {"type": ["integer", "null"]},
        "changes": {"type": ["object", "null"]}, "note": NULLABLE_STRING}),
    "Action": _object({"id": {"type": "string"}, "name": {"type": "string"}, "to_state": {"type": "string"},
                       "form": {**NULLABLE_STRING, "description": "The form whose values the step needs."}}),
    "CaseDetail": {"allOf": [ref("Case"), {
        "type": "object", "required": ["timeline", "actions"],
        "properties": {"timeline": {"type": "array", "items": ref("TimelineEvent")},
                       "actions": {"type": "array", "items": ref("Action"),
                                   "description": "The steps this client may take now."}}}]},
    "CasePage": _object({"items": {"type": "array", "items": ref("Case")}, "page": {"type": "integer"},
                         "per_page": {"type": "integer"}, "total": {"type": "integer"}}),
    "OpenCase": _object({"values": ref("FormValues")}, "The report form's values.", closed=True),
    "Transition": {
        "type": "object", "required": ["expected_version"], "additionalProperties": False,
        "properties": {
            "expected_version": {"type": "integer", "minimum": 1, "maximum": MAX_ID,
                                 "description": "The case's `version` as you last read it; 409 if it moved on."},
            "values": {**ref("FormValues"), "description": "The step's form values (only for a step with a form)."},
        }},
    "SubmitForm": _object({"values": ref("FormValues")}, "The form's values.", closed=True),
    "Submission": _object({
        "id": {"type": "integer"}, "scheme": {"type": "string"}, "form": {"type": "string"},
        "definition_version": {"type": "integer"}, "user": NULLABLE_STRING, "unit": NULLABLE_STRING,
        "area": NULLABLE_STRING, "submitted_at": TIME, "occurred_at": NULLABLE_TIME,
        "data": {"type": "object", "description": "Values by field id; files as upload ids."},
        "location": {"type": ["object", "null"]}, "flags": {"type": "object"}}),
    "Verdict": _object({
        "period": _object({"key": {"type": "string"}, "start": DATE, "end": DATE}),
        "subject": {"type": "object", "required": ["kind"], "properties": {
            "kind": {"type": "string", "enum": ["person", "unit"]}, "unit": NULLABLE_STRING,
            "user": NULLABLE_STRING, "name": NULLABLE_STRING, "focus": NULLABLE_STRING,
            "posts": {"type": "array", "items": {"type": "object"}}}},
        "count": {"type": "integer"}, "required": {"type": "integer"}, "met": {"type": "boolean"},
        "short_by": {"type": "integer"}, "held_days": {"type": "integer"}, "period_days": {"type": "integer"}}),
    "RuleCompliance": _object({
        "id": {"type": "string"}, "name": {"type": "string"}, "at_least": {"type": "integer"},
        "per": {"type": "string"}, "counted_per": {"type": "string"}, "form": {"type": "string"},
        "verdicts": {"type": "array", "items": ref("Verdict")}}),
    "Compliance": _object({"start": DATE, "end": DATE, "rules": {"type": "array", "items": ref("RuleCompliance")}}),
    "Period": _object({
        "id": {"type": "integer"}, "scheme": {"type": "string"}, "sheet": {"type": "string"},
        "period": {"type": "string"}, "starts_on": DATE, "ends_on": DATE,
        "state": {"type": "string", "description": "open, appeal or published"}, "appeal_until": NULLABLE_DATE,
        "revision": {"type": "integer", "description": "The published revision in force; 0 before publication."},
        "provisional": {"type": "boolean", "description": "The revision in force is provisional results."}}),
    "PeriodList": _object({"items": {"type": "array", "items": ref("Period")}}),
    "Score": _object({
        "unit": {"type": ["string", "null"], "description": "The unit, or the unit a person answered to."},
        "unit_name": NULLABLE_STRING,
        "person": {"type": ["object", "null"], "description": "A sheet that assesses people: whose result this is "
                   "(`user:<id>` for an account, `post:<id>` for a post with no account) and their name then.",
                   "properties": {"id": {"type": "string"}, "name": {"type": "string"}}},
        "total": {"type": ["number", "null"]},
        "grade": NULLABLE_STRING, "passing": {"type": ["boolean", "null"]},
        "ranks": {"type": "object", "description": "Rank by ranking id (1 is first; equal totals share a rank).",
                  "additionalProperties": {"type": ["integer", "null"]}},
        "flags": {"type": "array", "description": "The ids of the sheet's flags raised (红旗, 黄旗, …).",
                  "items": {"type": "string"}},
        "items": {"type": "object", "description": "By score item id: its score, what was deducted and added, and "
                  "each rule's amount, as decimal text (exact: 2.5, not 2.4999…).",
                  "additionalProperties": {"type": "object", "properties": {
                      "score": {"type": "string"}, "deducted": {"type": "string"}, "bonus": {"type": "string"},
                      "rules": {"type": "object", "additionalProperties": {"type": "string"}}}}},
        "metrics": {"type": "object", "description": "The figures the items were scored on, by metric name."},
        "vetoes": {"type": "array", "description": "The ids of the sheet's vetoes (一票否决) that applied.",
                   "items": {"type": "string"}},
        "actions": {"type": "array", "description": "What a streak of results calls for (a talk, a review).",
                    "items": {"type": "object", "required": ["id", "action"], "properties": {
                        "id": {"type": "string"}, "name": {"type": ["string", "object", "null"]},
                        "action": {"type": "string"}}}},
        "funding": {"type": ["number", "null"]},
        "money": {"type": "object", "properties": {
            "lines": {"type": "array", "items": {"type": "object", "properties": {
                "kind": {"enum": ["funding", "flag", "charge"]}, "id": {"type": "string"},
                "amount": {"type": ["number", "null"]}, "count": {"type": "number"}}}},
            "total": {"type": ["number", "null"]}}},
        "areas": {"type": "array", "description": "A sheet scored per area: the areas behind the total, in tree "
                  "order (depth 0: the scored kind; higher: the roll_up kinds they are aggregated into).",
                  "items": {"type": "object", "properties": {
                      "area": {"type": "string"}, "kind": {"type": "string"}, "depth": {"type": "integer"},
                      "parent": NULLABLE_STRING, "total": {"type": ["number", "null"]},
                      "items": {"type": "object", "additionalProperties": {"type": ["number", "null"]}},
                      "metrics": {"type": "object"}}}}}),
    "Scores": _object({"period": ref("Period"), "revision": {"type": "integer"},
                       "provisional": {"type": "boolean", "description": "Published on purpose before the period "
                                       "ended or with marks missing: not final, a later revision replaces it."},
                       "scores": {"type": "array", "items": ref("Score")}}),
    "Board": _object({
        "area": _object({"key": {"type": "string"}, "name": {"type": "string"}, "kind": {"type": "string"}}),
        "title": {"type": "string"}, "subtitle": NULLABLE_STRING, "on": DATE, "unit": NULLABLE_STRING,
        "range": {"type": ["object", "null"]},
        "tiers": {"type": "array", "items": _object({"name": {"type": "string"}, "chiefs": {"type": "array", "items": {
            "type": "object", "properties": {"name": NULLABLE_STRING, "title": NULLABLE_STRING,
                                             "phone": NULLABLE_STRING, "unit": NULLABLE_STRING,
                                             "duties": {"type": "array", "items": {"type": "string"}}}}}})},
        "footer": NULLABLE_STRING, "supervision_phone": NULLABLE_STRING}),
}

SCHEME = path_param("scheme_key", "The district's scheme id.", id_schema())
CASE_ID = path_param("case_id", "The case's id.", {"type": "integer", "minimum": 1, "maximum": MAX_ID})
IDEMPOTENCY = {"name": "Idempotency-Key", "in": "header", "required": False,
               "description": "Sent again with the same key, the request gives the record the first one made.",
               "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,48}$"}}
READ_ERRORS = (401, 403, 404, 422, 429)
WRITE_ERRORS = (400, 401, 403, 404, 409, 415, 422, 429)


def _operation(operation_id: str, tag: str, summary: str, description: str, ok: dict[int, tuple[str, dict]],
               errors: tuple[int, ...], parameters: list[dict[str, Any]] | None = None,
               body: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"operationId": operation_id, "tags": [tag], "summary": summary,
                           "description": description, "responses": responses(ok, errors, located=body is not None)}
    if parameters:
        out["parameters"] = parameters
    if body is not None:
        out["requestBody"] = {"required": True, **json_content(body)}
    return out


PATHS: dict[str, dict[str, dict[str, Any]]] = {
    "/api/v1/schemes/{scheme_key}/openapi.json": {"get": {
        "operationId": "districtOpenapi", "tags": ["meta"], "summary": "This document, for one district",
        "security": [], "parameters": [SCHEME],
        "description": "The OpenAPI 3.1 document with the district's forms typed field by field; no token needed.",
        "responses": {"200": {"description": "The document.", **json_content({"type": "object"})},
                      "404": error_response(ERRORS[404]), "429": error_response(ERRORS[429])}}},
    "/api/v1/openapi.json": {"get": {
        "operationId": "openapi", "tags": ["meta"], "summary": "This document", "security": [],
        "description": "The OpenAPI 3.1 document of the API; no token needed.",
        "responses": {"200": {"description": "The document.", **json_content({"type": "object"})},
                      "429": error_response(ERRORS[429])}}},
    "/api/v1/schemes/{scheme_key}/cases": {
        "get": _operation(
            "listCases", "cases", "Cases within the client's reach",
            "Newest first: the cases its user reported or is assigned, and those of the units and areas its "
            "roles reach for viewing, handling or dispatching cases.",
            {200: ("A page of cases.", ref("CasePage"))}, READ_ERRORS, [
                SCHEME,
                query_param("state", "Only cases in this state (a state id of the workflow).", id_schema()),
                query_param("kind", "Only cases whose state is of this kind.",
                            {"type": "string", "enum": ["open", "waiting", "final"]}),
                query_param("since", "Only cases opened, moved or escalated at or after this moment (with its offset; "
                            "2000–2100).",
                            {"type": "string", "format": "date-time"}),
                query_param("page", "The page, from 1.", {"type": "integer", "minimum": 1, "maximum": 100000}),
                query_param("per_page", "Cases per page (default 50).",
                            {"type": "integer", "minimum": 1, "maximum": 100}),
            ]),
        "post": _operation(
            "openCase", "cases", "Report a problem and open a case",
            "The workflow's report form filled with `values`, and a case opened from it, in one transaction "
            "(as the report page does). With an Idempotency-Key sent again, the case the first request opened.",
            {201: ("The case opened.", ref("CaseDetail")),
             200: ("The case an earlier request with the same Idempotency-Key opened.", ref("CaseDetail"))},
            WRITE_ERRORS, [SCHEME, IDEMPOTENCY], ref("OpenCase")),
    },
    "/api/v1/cases/{case_id}": {"get": _operation(
        "getCase", "cases", "A case with its timeline",
        "The case, its deadlines, its timeline and the steps the client may take now.",
        {200: ("The case.", ref("CaseDetail"))}, (401, 403, 404, 429), [CASE_ID])},
    "/api/v1/cases/{case_id}/transitions/{transition_id}": {"post": _operation(
        "fireTransition", "cases", "Take a step of a case's workflow",
        "As the case page does: the step must be open to the client's user now; its form (if any) is filled "
        "with `values`. `expected_version` guards against acting on a case someone else moved meanwhile (409).",
        {200: ("The case after the step.", ref("CaseDetail"))}, WRITE_ERRORS,
        [CASE_ID, path_param("transition_id", "The step's id in the case's workflow.", id_schema()), IDEMPOTENCY],
        ref("Transition"))},
    "/api/v1/schemes/{scheme_key}/forms/{form_key}/submissions": {"post": _operation(
        "submitForm", "records", "Fill a form",
        "Stores a record of the form in force, checked as on the phone. Records that open cases (a patrol's "
        "findings) open them as the page does.",
        {201: ("The record stored.", ref("Submission")),
         200: ("The record an earlier request with the same Idempotency-Key stored.", ref("Submission"))},
        WRITE_ERRORS, [SCHEME, path_param("form_key", "The form's id.", id_schema()), IDEMPOTENCY],
        ref("SubmitForm"))},
    "/api/v1/submissions/{submission_id}": {"get": _operation(
        "getSubmission", "records", "A record",
        "Its own records to the client's user; those of units in reach with `form.view_all`.",
        {200: ("The record.", ref("Submission"))}, (401, 403, 404, 429),
        [path_param("submission_id", "The record's id.", {"type": "integer", "minimum": 1, "maximum": MAX_ID})])},
    "/api/v1/schemes/{scheme_key}/patrols/compliance": {"get": _operation(
        "patrolCompliance", "patrols", "Who met and who missed the patrol rules",
        "Each rule's periods overlapping [start, end] (whole periods), with the subjects in the client's reach "
        "that owed patrols: how many they owed and filed. Needs `patrol.view_compliance`.",
        {200: ("Compliance per rule.", ref("Compliance"))}, READ_ERRORS, [
            SCHEME,
            query_param("rule", "Only this rule (its id).", id_schema()),
            query_param("start", "First day (default: `end`, or today in the district).", {"type": "string",
                                                                                          "format": "date"}),
            query_param("end", "Last day (default: `start`, or today); at most 366 days after `start`.",
                        {"type": "string", "format": "date"}),
        ])},
    "/api/v1/schemes/{scheme_key}/assessment/periods": {"get": _operation(
        "listPeriods", "assessment", "Assessment periods",
        "Every period of the district's score sheets, latest first. Needs an assessment role.",
        {200: ("The periods.", ref("PeriodList"))}, (401, 403, 404, 429), [SCHEME])},
    "/api/v1/assessment/periods/{period_id}/scores": {"get": _operation(
        "periodScores", "assessment", "A period's published scores",
        "A published revision (default the latest), with the units the client may see: every unit for the "
        "office and district-wide readers, else those its roles view or mark.",
        {200: ("The scores.", ref("Scores"))}, READ_ERRORS, [
            path_param("period_id", "The period's id.", {"type": "integer", "minimum": 1, "maximum": MAX_ID}),
            query_param("revision", "A published revision (default: the latest).",
                        {"type": "integer", "minimum": 1, "maximum": 100000}),
        ])},
    "/api/v1/schemes/{scheme_key}/boards/{area_key}": {"get": _operation(
        "board", "boards", "A road's notice board",
        "What the public board shows: each tier's chiefs with their public details, as on a day.",
        {200: ("The board.", ref("Board"))}, READ_ERRORS, [
            SCHEME,
            path_param("area_key", "The road's (area's) key.", {"type": "string", "minLength": 1, "maxLength": 64}),
            query_param("on", "The day (default today).", {"type": "string", "format": "date"}),
        ])},
}

add_paths(PATHS, SCHEMAS, {
    "meta": "This document.", "cases": "Cases and their workflow steps.", "records": "Form records.",
    "patrols": "Patrol-rule compliance.", "assessment": "Assessment periods and published scores.",
    "boards": "Road-chief notice boards.",
})
