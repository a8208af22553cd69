"""An Open311 GeoReport v2 client session against the demo district, with the specification's own sample
requests (http://wiki.open311.org/GeoReport_v2): services, a service definition, a request posted as the
spec's example, read back by id, by token and in a list, in JSON and XML, and the spec's error format."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

import pytest
from PIL import Image

from server.extensions import db
from server.public.models import PublicReport
from tests.support.factories import load_demo

# The spec's "Example Request" for POST Service Request, with our service code and place.
SAMPLE_POST = ("api_key=xyz&jurisdiction_id=lidu&service_code=random_piling&lat=29.771&long=107.244"
               "&address_string=1234+5th+street&email=smit333%40sfgov.edu&device_id=tt222111&account_id=123456"
               "&first_name=john&last_name=smith&phone=111111111"
               "&description=A+large+sinkhole+is+destroying+the+street"
               "&media_url=http%3A%2F%2Ffarm3.static.flickr.com%2F2002%2F2212426634_5ed477a060.jpg"
               "&attribute[WHISPAWN]=123456&attribute[WHISDORN]=COISL001")
FORM = "application/x-www-form-urlencoded; charset=utf-8"


@pytest.fixture
def district(app):
    app.config["FANGAN_OPEN311_KEYS"] = {"xyz": "sample-client"}
    with app.app_context():
        load_demo()
    yield app
    app.config.pop("FANGAN_OPEN311_KEYS", None)


def _xml(response) -> ET.Element:  # noqa: ANN001
    assert response.data.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    return ET.fromstring(response.data)  # noqa: S314 - our own response, parsed to check its shape


def test_services_and_a_service_definition(district):
    client = district.test_client()
    services = client.get("/open311/v2/services.json?jurisdiction_id=lidu").get_json()
    by_code = {s["service_code"]: s for s in services}
    assert by_code["random_piling"]["service_name"] == "乱堆乱放"
    assert by_code["random_piling"]["group"] == "市容秩序"
    assert {"service_code", "service_name", "description", "metadata", "type", "keywords", "group"} <= set(
        by_code["random_piling"])
    assert by_code["random_piling"]["type"] == "realtime" and by_code["random_piling"]["metadata"] is False
    assert "environment" not in by_code  # groups are not services
    root = _xml(client.get("/open311/v2/services.xml"))  # one district takes reports: no jurisdiction needed
    assert root.tag == "services" and {s.findtext("service_code") for s in root.findall("service")} == set(by_code)
    definition = client.get("/open311/v2/services/random_piling.json").get_json()
    assert definition == {"service_code": "random_piling", "attributes": []}
    root = _xml(client.get("/open311/v2/services/random_piling.xml"))
    assert root.tag == "service_definition" and root.findtext("service_code") == "random_piling"
    missing = client.get("/open311/v2/services/nope.json")
    assert missing.status_code == 404 and missing.get_json()[0]["code"] == 404
    root = _xml(client.get("/open311/v2/services.xml?jurisdiction_id=elsewhere.gov"))
    assert root.tag == "errors" and root.find("error").findtext("code") == "404"


def test_the_specs_sample_request_creates_a_case_and_reads_back(district):
    client = district.test_client()
    response = client.post("/open311/v2/requests.xml", data=SAMPLE_POST, content_type=FORM)
    assert response.status_code == 200, response.data
    root = _xml(response)
    assert root.tag == "service_requests"
    created = root.find("request")
    request_id = created.findtext("service_request_id")
    assert request_id and created.find("account_id") is not None
    with district.app_context():
        report = db.session.get(PublicReport, int(request_id))
        assert report.channel == "open311" and report.client == "sample-client"
        assert report.code in created.findtext("service_notice")  # the tracking code, to this client only
        assert report.case.data["description"] == "A large sinkhole is destroying the street"
        assert report.case.data["address"] == "1234 5th street" and report.phone_masked == "111****11"
        assert "111111111" not in (report.phone_sealed or "") and report.case.unit is not None
        code = report.code

    one = client.get(f"/open311/v2/requests/{request_id}.json").get_json()
    assert len(one) == 1 and one[0]["service_request_id"] == request_id
    assert one[0]["status"] == "open" and one[0]["status_notes"] == "已受理"
    assert one[0]["service_code"] == "random_piling" and one[0]["service_name"] == "乱堆乱放"
    assert one[0]["description"] is None and one[0]["lat"] is None  # not yet approved by a moderator
    assert one[0]["requested_datetime"].endswith("+08:00") and one[0]["expected_datetime"] is None
    assert "smith" not in str(one) and "111111111" not in str(one)

    token = client.get(f"/open311/v2/tokens/{code}.json").get_json()
    assert token == [{"service_request_id": request_id, "token": code}]
    listed = client.get("/open311/v2/requests.json?status=open").get_json()
    assert request_id in {r["service_request_id"] for r in listed}
    assert code not in str(listed)  # the list never shows tracking codes
    assert client.get("/open311/v2/requests.json?status=closed").get_json() == []
    root = _xml(client.get(f"/open311/v2/requests.xml?service_request_id={request_id},99999"))
    assert [r.findtext("service_request_id") for r in root.findall("request")] == [request_id]
    assert root.find("request").find("lat") is not None  # empty element, as in the spec's example

    with district.app_context():
        report = db.session.get(PublicReport, int(request_id))
        report.moderation = "approved"
        db.session.commit()
    approved = client.get(f"/open311/v2/requests/{request_id}.json").get_json()[0]
    assert approved["description"] == "A large sinkhole is destroying the street"
    assert (approved["lat"], approved["long"]) == (29.771, 107.244)


def test_a_request_on_a_named_road_goes_to_its_community_with_a_photo(district):
    client = district.test_client()
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), "brown").save(buffer, "JPEG")
    response = client.post("/open311/v2/requests.json", content_type="multipart/form-data", data={
        "api_key": "xyz", "service_code": "street_stalls", "address_id": "shilong_old_street",
        "description": "占道经营", "media": (io.BytesIO(buffer.getvalue()), "stall.jpg")})
    assert response.status_code == 200, response.data
    request_id = response.get_json()[0]["service_request_id"]
    with district.app_context():
        case = db.session.get(PublicReport, int(request_id)).case
        assert case.unit.key == "shilong" and case.area.key == "shilong_old_street"
        assert len(case.data["photos_before"]) == 1


@pytest.mark.parametrize(("body", "code", "words"), [
    (SAMPLE_POST.replace("api_key=xyz", "api_key=wrong"), 403, "api_key"),
    (SAMPLE_POST.replace("service_code=random_piling", "service_code="), 400, "service_code"),
    (SAMPLE_POST.replace("service_code=random_piling", "service_code=potholes"), 404, "potholes"),
    (SAMPLE_POST.replace("jurisdiction_id=lidu", "jurisdiction_id=sfgov.org"), 404, "sfgov.org"),
    ("api_key=xyz&service_code=random_piling&description=x", 400, "address_string"),
    (SAMPLE_POST.replace("address_string=1234+5th+street", "address_string=").replace("lat=29.771&long=107.244",
                                                                                       "address_id=nowhere"),
     400, "nowhere"),
    (SAMPLE_POST.replace("&description=A+large+sinkhole+is+destroying+the+street", ""), 400, "问题描述"),
])
def test_errors_in_the_specs_format_and_nothing_stored(district, body, code, words):
    client = district.test_client()
    response = client.post("/open311/v2/requests.json", data=body, content_type=FORM)
    assert response.status_code == code
    errors = response.get_json()
    assert errors[0]["code"] == code and words in errors[0]["description"]
    with district.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(PublicReport)) == 0


def test_only_form_encoded_bodies_and_the_two_formats(district):
    client = district.test_client()
    response = client.post("/open311/v2/requests.json", json={"service_code": "random_piling"})
    assert response.status_code == 400 and response.get_json()[0]["code"] == 400
    assert client.get("/open311/v2/services.yaml").status_code == 404
    bad_dates = client.get("/open311/v2/requests.json?start_date=2026-01-01T00:00:00Z&end_date=2026-12-31T00:00:00Z")
    assert bad_dates.status_code == 400 and "90" in bad_dates.get_json()[0]["description"]


def test_keys_are_optional_when_the_district_hands_out_none(district):
    district.config["FANGAN_OPEN311_KEYS"] = {}
    client = district.test_client()
    body = SAMPLE_POST.replace("api_key=xyz&", "")
    assert client.post("/open311/v2/requests.json", data=body, content_type=FORM).status_code == 200
