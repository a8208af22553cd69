"""The OpenAPI document is a valid OpenAPI 3.1 document that describes every API route, and the API keeps to it:
schemathesis sends generated requests (valid and invalid ones) with a real token against real data and checks
that nothing is a server error and every answer is a documented status with a documented body."""

from __future__ import annotations

import datetime as dt
import re

import jsonschema
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.specs.openapi.definitions import OPENAPI_31

from server.api import service as api
from server.assessment import service as assessment
from server.extensions import db
from tests.integration.test_api import bearer, open_case
from tests.support.factories import give_missing_marks, load_demo, make_user

DOCUMENT = "/api/v1/openapi.json"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance]
EXAMPLES = 12  # per operation and pass: the whole file stays within seconds per database


def test_the_document_is_valid_openapi_3_1(client):
    document = client.get(DOCUMENT).get_json()
    assert document["openapi"] == "3.1.0"
    # The OpenAPI Initiative's schema for 3.1 documents (as schemathesis ships it), and every schema object in it
    # a valid JSON Schema 2020-12 schema.
    jsonschema.Draft202012Validator(OPENAPI_31).validate(document)
    for name, schema in document["components"]["schemas"].items():
        jsonschema.Draft202012Validator.check_schema(schema), name
    refs = set(re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', str(document).replace("'", '"')))
    assert refs <= set(document["components"]["schemas"])
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http", "scheme": "bearer", "description": document["components"]["securitySchemes"][
            "bearerAuth"]["description"]}


def _in_section(path: str, section: str) -> bool:
    """`api`: this API's own operations; `contributed`: those other modules add to the document (Open311)."""
    return path.startswith("/api/v1/") == (section == "api")


SECTIONS = ["api", "contributed"]


def test_every_api_route_is_documented(app, client):
    paths = client.get(DOCUMENT).get_json()["paths"]
    routes: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api."):
            path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
            routes.setdefault(path, set()).update(m.lower() for m in rule.methods - {"HEAD", "OPTIONS"})
    documented = {path: set(operations) for path, operations in paths.items() if path.startswith("/api/v1/")}
    assert documented == routes


@pytest.mark.parametrize("section", SECTIONS)
def test_every_operation_and_parameter_is_described(client, section):
    paths = {p: ops for p, ops in client.get(DOCUMENT).get_json()["paths"].items() if _in_section(p, section)}
    undescribed = []
    for path, operations in paths.items():
        for method, operation in operations.items():
            names = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert names == set(re.findall(r"{([^}]+)}", path)), (method, path)
            if not (operation.get("summary") and operation.get("operationId") and operation.get("responses")):
                undescribed.append(f"{method.upper()} {path}")
            undescribed += [f"{method.upper()} {path}: {p['name']}" for p in operation.get("parameters", [])
                            if not (p.get("description") and p.get("schema"))]
    assert not undescribed


@pytest.fixture
def data(ctx, client) -> dict:
    """A district with a case, its report, a published period and a client that reaches them all."""
    load_demo()
    office = make_user("office", roles=(("lidu", "office_admin", None), ("lidu", "leader", None)))
    _client, token = api.create_client("dashboard", "office")
    db.session.commit()
    case = open_case(client, token)
    period = assessment.open_period(office, "lidu", "lidu_monthly", dt.date(2026, 10, 1))
    give_missing_marks(office, period)
    assessment.publish(office, period, close_appeals=True)
    db.session.commit()
    return {"token": token, "case_id": case["id"], "submission_id": case["report"], "period_id": period.id}


def _fixed_path(operation, data: dict) -> dict:  # noqa: ANN001
    """Path parameters that name real things, so that the answers are the full ones and not only 404s."""
    known = {"scheme_key": "lidu", "case_id": data["case_id"], "submission_id": data["submission_id"],
             "period_id": data["period_id"], "area_key": "shilong_old_street", "form_key": "patrol_log",
             "transition_id": "reject"}
    names = {p.name for p in operation.path_parameters}
    return {name: known[name] for name in names if name in known}


def _run(strategy, headers: dict, checks: list) -> None:  # noqa: ANN001
    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def run(case) -> None:  # noqa: ANN001
        response = case.call(headers=headers)
        case.validate_response(response, checks=checks, headers=headers)

    run()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(e) for e in exc.exceptions)
    return f"{type(exc).__name__}: {exc}"


@pytest.mark.parametrize("section", SECTIONS)
def test_the_api_keeps_to_its_document(app, data, section):
    schema = schemathesis.openapi.from_wsgi(DOCUMENT, app)
    headers = bearer(data["token"])
    operations = [result.ok() for result in schema.get_all_operations() if _in_section(result.ok().path, section)]
    if section == "api":
        assert len(operations) == 11  # all but the document itself (a district's document included)
    failures = []
    for operation in operations:
        strategies = [(operation.as_strategy(), CHECKS)]
        fixed = _fixed_path(operation, data)
        if fixed:
            strategies.append((operation.as_strategy(path_parameters=fixed), CHECKS))
        strategies.append((operation.as_strategy(generation_mode=schemathesis.GenerationMode.NEGATIVE),
                           [*CHECKS, negative_data_rejection]))
        for strategy, checks in strategies:
            try:
                _run(strategy, headers, checks)
            except (Exception, FailureGroup) as exc:  # every operation's failures, not only the first one's
                failures.append(f"{operation.method.upper()} {operation.path}: {_describe(exc)}")
                break
    assert not failures, "\n\n".join(failures)
