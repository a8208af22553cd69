"""A field type and a metric source added from the test package alone: once registered (server/core/registry.py)
the definition language accepts them, the form page renders the field, the engine checks it, the record stores it,
the export and the API document show it, a score sheet counts with the metric and the docs table lists them; once
taken out, every trace is gone and a definition naming them is refused again."""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import select

from server.assessment import scoring
from server.assessment.sources import METRIC_SOURCES, MetricSource, period_bounds
from server.auth.service import create_user, grant_role
from server.definitions.docs import fill_registry_tables
from server.definitions.errors import DefinitionsInvalid
from server.definitions.schema import schema_of
from server.definitions.service import activate_scheme_version, load_scheme
from server.extensions import db
from server.forms.fields import FIELD_TYPES, FieldType
from server.forms.models import Submission
from tests.support.clock import TODAY
from tests.support.factories import PASSWORD, demo_files, login, unit_id

PLATE = re.compile("[\u4e00-\u9fff][A-Z][A-Z0-9]{5,6}")


class PlateType(FieldType):
    """A licence plate (京A12345): typed in any case and with spaces, stored upper-case, checked, and exported as
    its province and its number."""

    name = "plate"
    phone = "a licence plate"
    stored = "text, upper-case (`京A12345`)"
    open311_datatype = "string"

    def value(self, field: Any) -> Any:
        text = super().value(field)
        return text.upper().replace(" ", "") if isinstance(text, str) else text

    def attributes(self, spec: Any) -> dict[str, Any]:
        return {**super().attributes(spec), "autocapitalize": "characters"}

    def limits(self, spec: Any, value: Any):  # noqa: ANN201
        if not PLATE.fullmatch(str(value)):
            yield "constraint", {"message": {"zh": "不是车牌号", "en": "Not a licence plate."}}
        yield from super().limits(spec, value)

    def export_headers(self, spec: Any, label: str) -> list[str]:
        return [f"{label} (province)", f"{label} (number)"]

    def export_cells(self, spec: Any, value: Any) -> list[Any]:
        return ["", ""] if not value else [value[0], value[1:]]

    def api_schema(self, spec: Any = None) -> dict[str, Any]:
        return {"type": "string", "pattern": PLATE.pattern}


def beijing_plates(scheme_key: str, metric: dict, period: Any, unit_ids: list[int]) -> dict[int, Any]:
    """Per unit, the records of the metric's `form` made in the period with a plate from Beijing (京)."""
    begin, finish = period_bounds(scheme_key, period)
    rows = db.session.execute(select(Submission.unit_id, Submission.data).where(
        Submission.scheme_key == scheme_key, Submission.form_key == metric["form"], Submission.occurred_at >= begin,
        Submission.occurred_at < finish, Submission.unit_id.in_(unit_ids)))
    counts = Counter(unit for unit, data in rows if str((data or {}).get("plate", "")).startswith("京"))
    return {unit: counts.get(unit, 0) for unit in unit_ids}


BEIJING = MetricSource("beijing_plates", beijing_plates, reads=frozenset({"form"}), needs=("form",),
                       doc="records of `form` with a plate from Beijing")

PLATE_FORM = """\
kind: form
id: plate_check
name: {zh: 外地车辆登记, en: Vehicles from elsewhere}
fields:
  - {id: plate, type: plate, label: {zh: 车牌, en: Plate}, required: true}
  - {id: remark, type: text, label: {zh: 说明, en: Remark}}
"""

PLATE_SHEET = """\
kind: score_sheet
id: plate_sheet
name: {zh: 外地车辆考核, en: Vehicles from elsewhere}
period: month
total: 10
assessed:
  unit_kinds: [community]
metrics:
  - {id: beijing, source: beijing_plates, form: plate_check}
sections:
  - id: vehicles
    name: {zh: 车辆, en: Vehicles}
    points: 10
    items:
      - id: beijing_vehicles
        name: {zh: 京牌车辆, en: Beijing vehicles}
        points: 10
        rules:
          - {id: each, type: per_occurrence, points: 2, count: beijing}
"""


def _files() -> dict[str, str]:
    files = dict(demo_files())
    scheme = files["schemes/lidu/scheme.yaml"]
    files["schemes/lidu/scheme.yaml"] = (
        scheme.replace("forms: [patrol_log,", "forms: [plate_check, patrol_log,")
        .replace("score_sheets: [lidu_monthly]", "score_sheets: [lidu_monthly, plate_sheet]"))
    assert files["schemes/lidu/scheme.yaml"] != scheme
    files["schemes/lidu/plate_check.yaml"] = PLATE_FORM
    files["schemes/lidu/plate_sheet.yaml"] = PLATE_SHEET
    return files


def _hidden(page: str, name: str) -> str:
    return re.search(rf'name="{name}" value="([^"]*)"', page).group(1)


def _submit(client, plate: str):  # noqa: ANN001, ANN202
    page = client.get("/f/lidu/plate_check/new").get_data(as_text=True)
    return client.post("/f/lidu/plate_check/new", data={
        "csrf_token": _hidden(page, "csrf_token"), "_token": _hidden(page, "_token"), "plate": plate,
        "remark": "路边停放", "_action": "submit"})


def test_a_field_type_and_a_metric_source_from_outside_the_server(app):
    with FIELD_TYPES.registered("plate", PlateType()), METRIC_SOURCES.registered("beijing_plates", BEIJING):
        with app.test_request_context():
            version, _ = load_scheme(_files())  # the schema and the reference check know both
            activate_scheme_version(version.id)
            chief, _ = create_user("chief", "张三", PASSWORD)
            grant_role(chief, "lidu", "unit_head", unit_id("lidu", "shilong"))
            db.session.commit()
        client = app.test_client()
        login(client, "chief")

        page = client.get("/f/lidu/plate_check/new").get_data(as_text=True)
        assert re.search(r'<input[^>]*autocapitalize="characters"[^>]*name="plate"', page), page[:2000]

        refused = _submit(client, "not a plate")
        assert refused.status_code == 400 and "不是车牌号" in refused.get_data(as_text=True)

        assert _submit(client, "京a 12345").status_code == 303
        assert _submit(client, "渝B54321").status_code == 303
        with app.app_context():
            stored = [s.data["plate"] for s in db.session.scalars(
                select(Submission).filter_by(scheme_key="lidu", form_key="plate_check").order_by(Submission.id))]
        assert stored == ["京A12345", "渝B54321"]

        rows = list(csv.reader(io.StringIO(client.get("/f/lidu/plate_check/records?format=csv")
                                           .get_data(as_text=True).lstrip("\ufeff"))))
        assert rows[0][-3:] == ["车牌 (province)", "车牌 (number)", "说明"]
        assert sorted(tuple(row[-3:-1]) for row in rows[1:]) == [("京", "A12345"), ("渝", "B54321")]

        values = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]["FormValues"]
        assert values["x-field-types"]["plate"] == {"type": "string", "pattern": PLATE.pattern}

        with app.test_request_context():
            _period, results = scoring.score_period("lidu", "plate_sheet", TODAY)
            by_unit = {r.unit.key: r for r in results}
            assert by_unit["shilong"].metrics["beijing"] == 1 and by_unit["zhiyuan"].metrics["beijing"] == 0
            assert (by_unit["shilong"].total, by_unit["zhiyuan"].total) == (8, 10)

        tables = fill_registry_tables("<!-- registry: field type -->\n<!-- /registry -->\n"
                                      "<!-- registry: metric source -->\n<!-- /registry -->\n")
        assert "| `plate` | a licence plate |" in tables and "| `beijing_plates` |" in tables

    assert "plate" not in FIELD_TYPES and "beijing_plates" not in METRIC_SOURCES
    assert "plate" not in schema_of("form")["$defs"]["field"]["properties"]["type"]["enum"]
    with app.test_request_context(), pytest.raises(DefinitionsInvalid) as refused:
        load_scheme(_files())
    messages = [str(e) for e in refused.value.errors]
    assert any("'plate' is not one of" in m for m in messages), messages
    assert any("'beijing_plates' is not one of" in m for m in messages), messages
