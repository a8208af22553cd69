"""Open311 GeoReport v2 to the letter, through a client written from the specification alone
(tests/support/open311_client.py), in JSON and in XML: discovery's changeset follows the definitions in force;
a request keeps its address_string (returned as `address`), e-mail (sealed) and media_url, and takes the
4,000-character description the spec allows; wrong methods and unknown addresses answer in the requested format
with an Allow header; date ranges that cannot be served say why."""

from __future__ import annotations

import pytest

from server.core.secrets import unseal
from server.definitions.models import SchemeRecord
from server.extensions import db
from server.public.models import PublicReport
from server.public.retention import erase_reporter
from tests.support.factories import load_demo, make_user
from tests.support.open311_client import GeoReportClient, GeoReportError

FORMATS = ["json", "xml"]
PHOTO_URL = "https://img.example.cn/reports/2026/11/sinkhole.jpg?size=large&v=2"


@pytest.fixture
def district(app):
    app.config["FANGAN_OPEN311_KEYS"] = {"k-123": "wechat-mini-program"}
    with app.app_context():
        load_demo()
    yield app
    app.config.pop("FANGAN_OPEN311_KEYS", None)


def _client(app, fmt: str) -> GeoReportClient:  # noqa: ANN001
    return GeoReportClient(app.test_client(), "/open311/v2", fmt, jurisdiction_id="lidu", api_key="k-123")


@pytest.mark.parametrize("fmt", FORMATS)
def test_discovery_names_the_endpoint_and_the_changeset_of_the_definitions_in_force(district, fmt):
    found = _client(district, fmt).discovery()
    with district.app_context():
        activated = db.session.get(SchemeRecord, "lidu").current_version.activated_at
    assert found["changeset"] == activated.isoformat(timespec="seconds")
    endpoint = found["endpoints"][0]
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["url"].endswith("/open311/v2") and endpoint["changeset"] == found["changeset"]
    assert set(endpoint["formats"]) == {"application/json", "text/xml"}
    with district.app_context():  # a new version put in force moves the changeset
        from server.definitions.service import activate_scheme_version, load_scheme
        from tests.support.factories import demo_files

        files = demo_files()
        name = next(k for k in files if k.endswith("scheme.yaml"))
        version, _ = load_scheme({**files, name: files[name] + "\n# a comment makes a new version\n"})
        activate_scheme_version(version.id)
        db.session.commit()
        later = version.activated_at.isoformat(timespec="seconds")
    assert _client(district, fmt).discovery()["changeset"] == later


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_request_keeps_what_the_spec_sends_and_gives_it_back(district, fmt):
    client = _client(district, fmt)
    codes = {s["service_code"] for s in client.services()}
    assert "random_piling" in codes and client.service_definition("random_piling")["attributes"] == []
    description = ("人行道上堆放建筑垃圾。" * 400)[:4000]  # 4,000 characters, as the spec allows
    assert len(description) == 4000
    created = client.post_service_request(
        "random_piling", lat="29.771", long="107.244", address_string="渝中区解放碑步行街 18 号门口",
        email="zhao.liu@example.cn", first_name="六", last_name="赵", phone="13912345678",
        description=description, media_url=PHOTO_URL, device_id="wx-device-1")
    request_id = created[0]["service_request_id"]
    assert created[0]["service_notice"]
    with district.app_context():
        report = db.session.get(PublicReport, int(request_id))
        assert unseal(report.email_sealed) == "zhao.liu@example.cn" and "zhao" not in report.email_sealed
        assert report.media_url == PHOTO_URL and report.case.data["description"] == description

    before = client.get_service_request(request_id)[0]
    assert before["status"] == "open" and before["description"] is None  # not yet approved by a moderator
    assert before["media_url"] is None and before["address"] != "渝中区解放碑步行街 18 号门口"
    with district.app_context():
        db.session.get(PublicReport, int(request_id)).moderation = "approved"
        db.session.commit()
    after = client.get_service_request(request_id)[0]
    assert after["description"] == description
    assert after["address"] == "渝中区解放碑步行街 18 号门口"  # address_string, given back as address
    assert after["media_url"] == PHOTO_URL  # no photo uploaded: the client's own
    assert (after["lat"], after["long"]) == (29.771, 107.244)
    listed = client.get_service_requests(service_request_id=request_id)
    assert [r["service_request_id"] for r in listed] == [request_id]
    assert "zhao.liu" not in str(listed) and "13912345678" not in str(listed)

    with district.app_context():  # the reporter asks to be erased: the e-mail goes with the phone
        admin = make_user("office", roles=(("lidu", "office_admin", None),))
        assert erase_reporter(admin, "lidu", phone="13912345678") == 1
        db.session.commit()
        report = db.session.get(PublicReport, int(request_id))
        assert report.email_sealed is None and report.phone_sealed is None


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_contact_that_is_not_one_is_refused_in_the_specs_format(district, fmt):
    client = _client(district, fmt)
    for arguments, words in (({"email": "not an address"}, "@example.com"),
                             ({"media_url": "javascript:alert(1)"}, "media_url"),
                             ({"media_url": "file:///etc/passwd"}, "media_url"),
                             ({"description": "长" * 4001}, "4000")):
        with pytest.raises(GeoReportError) as refused:
            client.post_service_request("random_piling", lat="29.771", long="107.244",
                                        **{"description": "说明", **arguments})
        assert refused.value.status == 400 and refused.value.errors[0]["code"] == 400
        assert words in refused.value.errors[0]["description"], refused.value.errors
    with district.app_context():
        assert db.session.scalar(db.select(db.func.count(PublicReport.id))) == 0


@pytest.mark.parametrize("fmt", FORMATS)
def test_wrong_methods_and_addresses_answer_in_the_format_asked_with_allow(district, fmt):
    client = _client(district, fmt)
    for method, path, allowed in (("put", f"requests.{fmt}", "GET, POST"), ("delete", f"requests/1.{fmt}", "GET"),
                                  ("post", f"services.{fmt}", "GET"), ("patch", f"discovery.{fmt}", "GET")):
        with pytest.raises(GeoReportError) as refused:
            client.raw(method, path)
        assert refused.value.status == 405 and refused.value.errors[0]["code"] == 405
        allow = {m.strip() for m in refused.value.headers["Allow"].split(",")} - {"HEAD", "OPTIONS"}
        assert allow == set(allowed.split(", ")), refused.value.headers
        assert method.upper() in refused.value.errors[0]["description"]
        for verb in allowed.split(", "):
            assert verb in refused.value.errors[0]["description"]
    with pytest.raises(GeoReportError) as unknown:
        client.raw("get", f"no/such/thing.{fmt}")
    assert unknown.value.status == 404 and "discovery" in unknown.value.errors[0]["description"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_date_ranges_that_cannot_be_served_say_what_is_wrong(district, fmt):
    client = _client(district, fmt)
    assert client.get_service_requests(start_date="2026-10-01T00:00:00Z", end_date="2026-11-01T00:00:00Z") == []
    cases = (({"start_date": "2026-11-01T00:00:00Z", "end_date": "2026-10-01T00:00:00Z"},
              ["start_date", "2026-11-01T00:00:00+00:00", "end_date", "2026-10-01T00:00:00+00:00"]),
             ({"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-11-01T00:00:00Z"}, ["304.0", "90"]),
             ({"start_date": "2020-01-01T00:00:00Z"}, ["90", "end_date"]),
             ({"end_date": "yesterday"}, ["end_date", "2026-10-01T00:00:00Z"]))
    for filters, words in cases:
        with pytest.raises(GeoReportError) as refused:
            client.get_service_requests(**filters)
        assert refused.value.status == 400
        for word in words:
            assert word in refused.value.errors[0]["description"], (filters, refused.value.errors)
