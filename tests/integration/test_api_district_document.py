"""Each district's API document types its forms field by field: a client generated from it with
openapi-python-client (as an integrator would) fills a form with typed values, and the server's refusals come
back typed too; an unknown district has no document."""

from __future__ import annotations

import base64
import datetime as dt
import importlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
from PIL import Image

from server.api.service import create_client
from server.extensions import db
from tests.support.clock import ZONE
from tests.support.factories import load_demo, make_user

PACKAGE = "lidu_api"


def _jpeg() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (80, 60), "teal").save(buffer, "JPEG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_the_document_types_each_form_and_an_unknown_district_has_none(app, client):
    with app.app_context():
        load_demo()
    doc = client.get("/api/v1/schemes/lidu/openapi.json").get_json()
    values = doc["components"]["schemas"]["PatrolLogValues"]
    assert values["additionalProperties"] is False and {"area", "started_at", "photos"} <= set(values["required"])
    assert values["properties"]["participants"]["type"] == "integer"
    assert values["properties"]["participants"]["minimum"] == 1
    assert values["properties"]["has_problems"]["enum"] == ["yes", "no"]
    assert values["properties"]["participants"]["description"].startswith("参加人数")
    operation = doc["paths"]["/api/v1/schemes/lidu/forms/patrol_log/submissions"]["post"]
    assert operation["operationId"] == "submitPatrolLog"
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/SubmitPatrolLog"}
    score = doc["components"]["schemas"]["Score"]["properties"]
    assert score["flags"]["items"] == {"type": "string"} and score["vetoes"]["items"] == {"type": "string"}
    assert score["actions"]["items"]["required"] == ["id", "action"]
    for unknown in ("nope", "x" * 65, "lidu%20"):
        missing = client.get(f"/api/v1/schemes/{unknown}/openapi.json")
        assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "not_found"


def test_a_client_generated_from_the_districts_document_fills_a_form(app, tmp_path):
    with app.app_context():
        load_demo()
        make_user("walker", roles=(("lidu", "staff", "shilong"),))
        _api_client, token = create_client("generated-client", "walker")
        db.session.commit()
    (tmp_path / "doc.json").write_text(json.dumps(app.test_client().get("/api/v1/schemes/lidu/openapi.json")
                                                  .get_json(), ensure_ascii=False), encoding="utf-8")
    (tmp_path / "config.yaml").write_text(f"package_name_override: {PACKAGE}\nproject_name_override: lidu-api\n")
    generator = Path(sys.executable).with_name("openapi-python-client")
    bin_dir = str(Path(sys.executable).parent)  # its post-generation hooks run ruff from the same environment
    done = subprocess.run([str(generator), "generate", "--path", "doc.json", "--meta", "none", "--output-path",
                           PACKAGE, "--config", "config.yaml"], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}, check=False)
    assert done.returncode == 0 and "Warning" not in done.stdout + done.stderr, done.stdout + done.stderr

    sys.path.insert(0, str(tmp_path))
    try:
        generated = importlib.import_module(PACKAGE)
        submit = importlib.import_module(f"{PACKAGE}.api.records.submit_patrol_log")
        models = importlib.import_module(f"{PACKAGE}.models")
        api = generated.AuthenticatedClient(base_url="http://fangan.test", token=token,
                                            httpx_args={"transport": httpx.WSGITransport(app=app)})
        started = (dt.datetime.now(ZONE) - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
        values = models.PatrolLogValues(
            area="shilong_old_street", has_problems=models.PatrolLogValuesHasProblems.NO, started_at=started,
            photos=[models.PatrolLogValuesPhotosItem(content=_jpeg(), name="street.jpg")], participants=3,
            findings="巡查老街，未发现问题")
        response = submit.sync_detailed(client=api, body=models.SubmitPatrolLog(values=values),
                                        idempotency_key="patrol-1")
        assert response.status_code == 201, response.content
        record = response.parsed
        assert isinstance(record, models.Submission) and record.form == "patrol_log" and record.scheme == "lidu"
        assert record.data["participants"] == 3 and record.data["has_problems"] == "no"
        assert record.area == "shilong_old_street" and len(record.data["photos"]) == 1

        again = submit.sync_detailed(client=api, body=models.SubmitPatrolLog(values=values), idempotency_key="patrol-1")
        assert again.status_code == 200 and again.parsed.id == record.id  # the same record, not a second one

        values.participants = 0  # below the form's minimum
        refused = submit.sync_detailed(client=api, body=models.SubmitPatrolLog(values=values))
        assert refused.status_code == 422 and isinstance(refused.parsed, models.Error)
        assert "participants" in refused.parsed.error.fields.to_dict()
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]
