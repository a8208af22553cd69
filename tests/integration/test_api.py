"""The JSON API: tokens (required, hashed, revocable, never the session cookie), clients scoped as their user,
cases opened and moved through the API, stale versions, refused forms leaving nothing behind, records, patrol
compliance, scores and boards."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib

import pytest

from server.api import service as api
from server.api.models import ApiClient
from server.auth.models import User
from server.auth.permissions import can_view_case
from server.core.clock import utcnow
from server.extensions import db
from server.forms.models import Submission, Upload
from server.org.posts import appoint
from server.workflow.models import Case, CaseEvent
from tests.support.clock import TODAY
from tests.support.factories import give_missing_marks, load_demo, login, make_user
from tests.support.images import jpeg

ZONE = dt.timezone(dt.timedelta(hours=8))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def new_client(username: str, *roles: tuple[str, str, str | None]) -> str:
    """A user with these roles and an API client acting as them; returns the client's token."""
    make_user(username, roles=roles)
    _client, token = api.create_client(f"{username}-system", username)
    db.session.commit()
    return token


def photo(name: str = "p.jpg") -> dict[str, str]:
    return {"name": name, "content": base64.b64encode(jpeg()).decode()}


def report(area: str = "shilong_old_street", **extra) -> dict:  # noqa: ANN003
    return {"values": {"category": "piled_rubbish", "area": area, "description": "垃圾堆积", "size_m3": 1.0,
                       "photos_before": [photo()], **extra}}


class Tokens(dict):
    """Clients made when a test first asks for them (each user costs a password hash)."""

    ROLES = {"reporter": ("lidu", "staff", "shilong"), "leader": ("lidu", "leader", None),
             "office": ("lidu", "office_admin", None), "head": ("lidu", "unit_head", "shilong"),
             "zhiyuan_head": ("lidu", "unit_head", "zhiyuan")}

    def __missing__(self, username: str) -> str:
        self[username] = new_client(username, self.ROLES[username])
        return self[username]


@pytest.fixture
def tokens(ctx) -> Tokens:
    load_demo()
    return Tokens()


def open_case(client, token: str, area: str = "shilong_old_street") -> dict:  # noqa: ANN001
    response = client.post("/api/v1/schemes/lidu/cases", json=report(area), headers=bearer(token))
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def step(client, token: str, case: dict, transition: str, **values) -> dict:  # noqa: ANN001, ANN003
    response = client.post(f"/api/v1/cases/{case['id']}/transitions/{transition}", headers=bearer(token),
                           json={"expected_version": case["version"], "values": values})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


# -- tokens ------------------------------------------------------------------------------------------------------

def test_every_call_but_the_document_needs_a_valid_token(tokens, client):
    for headers in ({}, bearer("fg_not-a-token"), {"Authorization": f"Basic {tokens['office']}"},
                    {"Authorization": tokens["office"]}):
        response = client.get("/api/v1/schemes/lidu/cases", headers=headers)
        assert response.status_code == 401
        assert response.get_json()["error"]["code"] == "unauthorized"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/api/v1/schemes/lidu/cases", headers=bearer(tokens["office"])).status_code == 200
    assert client.get("/api/v1/openapi.json").status_code == 200


def test_only_the_hash_is_kept_and_use_is_recorded(tokens, client):
    token = tokens["office"]
    row = db.session.scalar(db.select(ApiClient).filter_by(name="office-system"))
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert row.last_used_at is None
    client.get("/api/v1/schemes/lidu/cases", headers=bearer(token))
    db.session.expire_all()
    assert db.session.get(ApiClient, row.id).last_used_at is not None


def test_a_revoked_token_or_a_blocked_user_is_refused(tokens, client):
    url, headers = "/api/v1/schemes/lidu/cases", bearer(tokens["office"])
    assert client.get(url, headers=headers).status_code == 200
    api.revoke_client("office-system")
    db.session.commit()
    assert client.get(url, headers=headers).status_code == 401

    head = bearer(tokens["head"])
    assert client.get(url, headers=head).status_code == 200
    db.session.scalar(db.select(User).filter_by(username="head")).active = False
    db.session.commit()
    assert client.get(url, headers=head).status_code == 401


def test_a_browser_session_never_reaches_the_api(tokens, client):
    """The API takes no CSRF token, so a logged-in browser must not be able to call it with its cookie."""
    make_user("admin", admin=True)
    login(client, "admin")
    assert client.get("/admin/schemes").status_code == 200  # logged in on the pages
    assert client.get("/api/v1/schemes/lidu/cases").status_code == 401
    assert client.post("/api/v1/schemes/lidu/cases", json=report()).status_code == 401


def test_api_calls_set_no_cookie(tokens, client):
    response = client.post("/api/v1/schemes/lidu/cases", json=report(), headers=bearer(tokens["reporter"]))
    assert response.status_code == 201
    assert "Set-Cookie" not in response.headers


def test_clients_are_created_and_revoked_once(tokens):
    from server.core.errors import Conflict, NotFound

    tokens["office"], tokens["head"]  # noqa: B018 - made on first use
    with pytest.raises(Conflict):
        api.create_client("office-system", "office")
    with pytest.raises(NotFound):
        api.create_client("ghost-system", "nobody")
    with pytest.raises(NotFound):
        api.revoke_client("ghost-system")
    first = api.revoke_client("head-system").revoked_at
    assert api.revoke_client("head-system").revoked_at == first


# -- scope ---------------------------------------------------------------------------------------------------------

def test_a_community_heads_client_sees_its_community_only(tokens, client):
    shilong = open_case(client, tokens["leader"], "shilong_old_street")
    zhiyuan = open_case(client, tokens["leader"], "zhiyuan_road")
    head = bearer(tokens["head"])
    listed = client.get("/api/v1/schemes/lidu/cases", headers=head).get_json()
    assert [c["id"] for c in listed["items"]] == [shilong["id"]] and listed["total"] == 1
    assert client.get(f"/api/v1/cases/{shilong['id']}", headers=head).status_code == 200
    refused = client.get(f"/api/v1/cases/{zhiyuan['id']}", headers=head)
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "forbidden"
    office = client.get("/api/v1/schemes/lidu/cases", headers=bearer(tokens["office"])).get_json()
    assert {c["id"] for c in office["items"]} == {shilong["id"], zhiyuan["id"]}
    assert client.get("/api/v1/cases/2147483647", headers=head).status_code == 404


@pytest.mark.parametrize("who", ["reporter", "leader", "office", "head", "zhiyuan_head"])
def test_the_listing_is_exactly_what_the_case_page_allows(tokens, client, who):
    token = tokens[who]
    for area in ("shilong_old_street", "zhiyuan_road", "duanqiao_street"):
        open_case(client, tokens["leader"], area)
    open_case(client, tokens["reporter"])  # the reporter's own
    user = db.session.scalar(db.select(User).filter_by(username=who))
    allowed = {c.id for c in db.session.scalars(db.select(Case)) if can_view_case(user, c)}
    listed = client.get("/api/v1/schemes/lidu/cases?per_page=100", headers=bearer(token)).get_json()
    assert {c["id"] for c in listed["items"]} == allowed and listed["total"] == len(allowed)


def test_listing_filters_and_pages(tokens, client):
    ids = [open_case(client, tokens["leader"])["id"] for _ in range(3)]
    office = bearer(tokens["office"])
    first = client.get("/api/v1/schemes/lidu/cases?per_page=2", headers=office).get_json()
    second = client.get("/api/v1/schemes/lidu/cases?per_page=2&page=2", headers=office).get_json()
    assert [c["id"] for c in first["items"] + second["items"]] == sorted(ids, reverse=True)
    assert first["total"] == 3
    assert client.get("/api/v1/schemes/lidu/cases?state=closed", headers=office).get_json()["total"] == 0
    assert client.get("/api/v1/schemes/lidu/cases?kind=open", headers=office).get_json()["total"] == 3
    later = (utcnow() + dt.timedelta(hours=1)).isoformat()
    assert client.get("/api/v1/schemes/lidu/cases", query_string={"since": later},
                      headers=office).get_json()["total"] == 0
    unencoded = (utcnow() + dt.timedelta(hours=1)).astimezone(ZONE).isoformat().replace("+", " ")
    assert client.get(f"/api/v1/schemes/lidu/cases?since={unencoded}", headers=office).get_json()["total"] == 0
    bad = client.get("/api/v1/schemes/lidu/cases?per_page=500&kind=shut&since=yesterday", headers=office)
    assert bad.status_code == 422
    assert set(bad.get_json()["error"]["fields"]) == {"per_page", "kind", "since"}
    assert client.get("/api/v1/schemes/nowhere/cases", headers=office).status_code == 404


def test_since_sees_escalations_too(tokens, client):
    case = open_case(client, tokens["leader"])
    office = bearer(tokens["office"])
    later = utcnow() + dt.timedelta(minutes=5)
    url = "/api/v1/schemes/lidu/cases"
    assert client.get(url, query_string={"since": later.isoformat()}, headers=office).get_json()["total"] == 0
    # What `fangan tick` leaves when a deadline passes: an escalation on the timeline, no step taken.
    db.session.add(CaseEvent(case_id=case["id"], kind="escalation", transition="overdue", at=later,
                             from_state="reported", to_state="reported", note="overdue"))
    db.session.commit()
    listed = client.get(url, query_string={"since": later.isoformat()}, headers=office).get_json()
    assert [c["id"] for c in listed["items"]] == [case["id"]]


# -- cases -------------------------------------------------------------------------------------------------------

def test_a_case_opened_and_moved_through_the_api(tokens, client):
    case = open_case(client, tokens["reporter"])
    assert (case["state"], case["state_kind"], case["unit"], case["reporter"]) == (
        "reported", "open", "shilong", "reporter")
    assert case["data"]["photos_before"] and case["report"] is not None
    assert [a["id"] for a in case["actions"]] == []  # the reporter may not dispatch
    office = client.get(f"/api/v1/cases/{case['id']}", headers=bearer(tokens["office"])).get_json()
    assert {"assign", "reject"} <= {a["id"] for a in office["actions"]}

    case = step(client, tokens["office"], office, "assign", target_unit="shilong", instructions="请一天内清理")
    assert case["state"] == "assigned" and case["data"]["handling_unit"] == "shilong"
    assert [d["key"] for d in case["deadlines"] if d["stopped_at"] is None] == ["rectify"]
    case = step(client, tokens["head"], case, "rectify", action_taken="已清理", photos_after=[photo("after.jpg")],
                finished_at="2026-11-20T15:00")
    case = step(client, tokens["office"], case, "close", verdict="passed")
    assert case["state_kind"] == "final" and case["closed_at"] is not None
    assert [e["transition"] for e in case["timeline"]] == [None, "assign", "rectify", "close"]
    assert [e["user"] for e in case["timeline"]] == ["reporter", "office", "head", "office"]
    row = db.session.get(Case, case["id"])
    assert row.state == "closed" and row.version == case["version"]


def test_a_stale_version_is_a_conflict_and_changes_nothing(tokens, client):
    case = open_case(client, tokens["reporter"])
    office = bearer(tokens["office"])
    moved = step(client, tokens["office"], case, "assign", target_unit="shilong")
    response = client.post(f"/api/v1/cases/{case['id']}/transitions/reject", headers=office,
                           json={"expected_version": case["version"]})
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "conflict" and "Office" in response.get_json()["error"]["message"]
    now = client.get(f"/api/v1/cases/{case['id']}", headers=office).get_json()
    assert (now["state"], now["version"], len(now["timeline"])) == ("assigned", moved["version"], 2)


def test_steps_are_refused_as_on_the_case_page(tokens, client):
    case = open_case(client, tokens["reporter"])
    url = f"/api/v1/cases/{case['id']}/transitions"
    reporter, office = bearer(tokens["reporter"]), bearer(tokens["office"])
    assert client.post(f"{url}/assign", headers=reporter, json={"expected_version": case["version"],
                                                                "values": {"target_unit": "shilong"}}
                       ).status_code == 403
    assert client.post(f"{url}/no_such_step", headers=office,
                       json={"expected_version": case["version"]}).status_code == 404
    missing = client.post(f"{url}/assign", headers=office, json={"values": {"target_unit": "shilong"}})
    assert missing.status_code == 422 and "expected_version" in missing.get_json()["error"]["fields"]
    refused = client.post(f"{url}/assign", headers=office, json={"expected_version": case["version"],
                                                                 "values": {"target_unit": "atlantis"}})
    assert refused.status_code == 422 and "target_unit" in refused.get_json()["error"]["fields"]
    assert db.session.get(Case, case["id"]).state == "reported"


def test_a_refused_report_stores_nothing(tokens, client):
    counts = lambda: (db.session.scalar(db.select(db.func.count(Submission.id))),  # noqa: E731
                      db.session.scalar(db.select(db.func.count(Upload.id))),
                      db.session.scalar(db.select(db.func.count(Case.id))))
    before = counts()
    body = report(description="", size_m3=-3, urgency="urgent", unknown_field="x")
    response = client.post("/api/v1/schemes/lidu/cases", json=body, headers=bearer(tokens["reporter"]))
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "validation_failed" and "unknown_field" in error["fields"]
    body["values"].pop("unknown_field")
    response = client.post("/api/v1/schemes/lidu/cases", json=body, headers=bearer(tokens["reporter"]))
    assert response.status_code == 422
    assert {"description", "size_m3", "urgency_reason"} <= set(response.get_json()["error"]["fields"])
    db.session.expire_all()
    assert counts() == before  # not the record, not the photo, not a case


@pytest.mark.parametrize(("body", "status"), [
    ("not json", 415), ('{"values": ', 400), ("[1, 2]", 422), ('{"values": [1]}', 422), ('{"value": {}}', 422),
])
def test_bodies_that_are_not_a_report(tokens, client, body, status):
    content_type = "text/plain" if status == 415 else "application/json"
    response = client.post("/api/v1/schemes/lidu/cases", data=body, content_type=content_type,
                           headers=bearer(tokens["reporter"]))
    assert response.status_code == status and response.get_json()["error"]["message"]


def test_the_same_idempotency_key_opens_one_case(tokens, client):
    headers = {**bearer(tokens["reporter"]), "Idempotency-Key": "szcg-2026-0001"}
    first = client.post("/api/v1/schemes/lidu/cases", json=report(), headers=headers)
    again = client.post("/api/v1/schemes/lidu/cases", json=report(), headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.get_json()["id"] == again.get_json()["id"]
    assert first.headers["Location"].endswith(f"/api/v1/cases/{first.get_json()['id']}")
    assert db.session.scalar(db.select(db.func.count(Case.id))) == 1
    bad = client.post("/api/v1/schemes/lidu/cases", json=report(),
                      headers={**bearer(tokens["reporter"]), "Idempotency-Key": "no spaces please"})
    assert bad.status_code == 422


def test_reporting_needs_the_reporting_capability(tokens, client):
    response = client.post("/api/v1/schemes/lidu/cases", json=report(), headers=bearer(tokens["office"]))
    assert response.status_code == 403


# -- records -----------------------------------------------------------------------------------------------------

def patrol(**extra) -> dict:  # noqa: ANN003
    return {"values": {"area": "shilong_old_street", "started_at": "2026-11-20T09:00", "photos": [photo()],
                       "location": {"lat": 29.71, "lng": 107.3, "accuracy": 12}, **extra}}


def test_a_patrol_log_with_findings_opens_their_cases(tokens, client):
    body = patrol(has_problems="yes", problems=[
        {"problem_category": "piled_rubbish", "problem_description": "桥头垃圾", "problem_fixed_on_spot": "no"},
        {"problem_category": "piled_rubbish", "problem_description": "已清理", "problem_fixed_on_spot": "yes"},
    ])
    response = client.post("/api/v1/schemes/lidu/forms/patrol_log/submissions", json=body,
                           headers=bearer(tokens["reporter"]))
    assert response.status_code == 201, response.get_json()
    record = response.get_json()
    assert record["form"] == "patrol_log" and record["user"] == "reporter" and record["area"] == "shilong_old_street"
    assert record["data"]["participants"] == 1  # the form's default for a field left out
    assert [p["problem_description"] for p in record["data"]["problems"]] == ["桥头垃圾", "已清理"]
    assert record["location"]["lat"] == 29.71
    opened = db.session.scalars(db.select(Case).join(Submission, Case.submission_id == Submission.id)
                                .where(Submission.source_id == record["id"])).all()
    assert [c.data["description"] for c in opened] == ["桥头垃圾"]
    fetched = client.get(f"/api/v1/submissions/{record['id']}", headers=bearer(tokens["reporter"]))
    assert fetched.get_json() == record
    assert client.get(f"/api/v1/submissions/{record['id']}",
                      headers=bearer(tokens["zhiyuan_head"])).status_code == 403


def test_a_refused_record_names_fields_by_path(tokens, client):
    body = patrol(has_problems="yes", location={"lat": 91, "lng": 107}, problems=[
        {"problem_category": "piled_rubbish", "problem_description": "体量写错", "problem_size_m3": "lots"},
        {"problem_description": "没有类别"}])
    response = client.post("/api/v1/schemes/lidu/forms/patrol_log/submissions", json=body,
                           headers=bearer(tokens["reporter"]))
    assert response.status_code == 422
    fields = response.get_json()["error"]["fields"]
    assert {"problems.0.problem_size_m3", "problems.1.problem_category", "location"} <= set(fields)
    assert db.session.scalar(db.select(db.func.count(Submission.id))) == 0


def test_files_must_be_base64_and_pictures(tokens, client):
    headers = bearer(tokens["reporter"])
    url = "/api/v1/schemes/lidu/forms/patrol_log/submissions"
    not_base64 = client.post(url, json=patrol(photos=[{"name": "a.jpg", "content": "%%%"}]), headers=headers)
    assert not_base64.status_code == 422 and "photos" in not_base64.get_json()["error"]["fields"]
    not_a_photo = client.post(url, json=patrol(photos=[{"name": "a.jpg", "content": base64.b64encode(
        b"#!/bin/sh\nrm -rf /\n").decode()}]), headers=headers)
    assert not_a_photo.status_code == 422 and "photos" in not_a_photo.get_json()["error"]["fields"]
    assert db.session.scalar(db.select(db.func.count(Upload.id))) == 0


def test_forms_need_the_filling_capability_and_exist(tokens, client):
    assert client.post("/api/v1/schemes/lidu/forms/patrol_log/submissions", json=patrol(),
                       headers=bearer(tokens["office"])).status_code == 403
    assert client.post("/api/v1/schemes/lidu/forms/no_such_form/submissions", json=patrol(),
                       headers=bearer(tokens["reporter"])).status_code == 404


# -- patrols, scores, boards ---------------------------------------------------------------------------------------

from tests.integration.test_assessment import OCTOBER, october  # noqa: E402, F401 - the fixture


def _assessment_tokens() -> dict[str, str]:
    return {
        "office": new_client("office", ("lidu", "office_admin", None)),
        "shilong": new_client("shilong_reader", ("lidu", "unit_head", "shilong")),
        "staff": new_client("staff", ("lidu", "staff", "shilong")),
    }


def test_patrol_compliance_within_reach(october, client):  # noqa: F811
    tokens = _assessment_tokens()
    url = "/api/v1/schemes/lidu/patrols/compliance?rule=community_head_weekly&start=2026-10-01&end=2026-10-31"

    def short(token: str) -> dict[str, list[str]]:
        response = client.get(url, headers=bearer(token))
        assert response.status_code == 200, response.get_json()
        (rule,) = response.get_json()["rules"]
        out: dict[str, list[str]] = {}
        for v in rule["verdicts"]:
            if not v["met"]:
                who = v["subject"]["user"] or v["subject"]["posts"][0]["holder"]
                out.setdefault(who, []).append(v["period"]["key"])
        return out

    office = short(tokens["office"])
    assert office["shilong_head"] == ["2026-10-12"]  # the one week Shilong's head did not patrol
    assert len(office["致远书记"]) == 5  # a post nobody logs in to: short every week
    assert set(short(tokens["shilong"])) == {"shilong_head"}  # its own community only
    assert client.get(url, headers=bearer(tokens["staff"])).status_code == 403
    too_long = client.get("/api/v1/schemes/lidu/patrols/compliance?start=2026-01-01&end=2027-06-30",
                          headers=bearer(tokens["office"]))
    assert too_long.status_code == 422 and "end" in too_long.get_json()["error"]["fields"]
    assert client.get("/api/v1/schemes/lidu/patrols/compliance?rule=no_such_rule",
                      headers=bearer(tokens["office"])).status_code == 404


def test_scores_are_published_ones_seen_as_on_the_pages(october, client):  # noqa: F811
    from server.assessment import service as assessment

    tokens = _assessment_tokens()
    office_user = db.session.scalar(db.select(User).filter_by(username="office"))
    period = assessment.open_period(office_user, "lidu", "lidu_monthly", OCTOBER)
    db.session.commit()
    listed = client.get("/api/v1/schemes/lidu/assessment/periods", headers=bearer(tokens["office"])).get_json()
    assert [(p["id"], p["period"], p["revision"]) for p in listed["items"]] == [(period.id, "2026-10", 0)]
    url = f"/api/v1/assessment/periods/{period.id}/scores"
    assert client.get(url, headers=bearer(tokens["office"])).status_code == 404  # nothing published yet

    give_missing_marks(office_user, period)

    assessment.publish(office_user, period, close_appeals=True)
    db.session.commit()
    everything = client.get(url, headers=bearer(tokens["office"])).get_json()
    assert everything["revision"] == 1 and len(everything["scores"]) == 8
    shilong = next(s for s in everything["scores"] if s["unit"] == "shilong")
    assert shilong["total"] == 88.0 and shilong["grade"] == "good"
    own = client.get(url, headers=bearer(tokens["shilong"])).get_json()
    assert [s["unit"] for s in own["scores"]] == ["shilong"]  # a community head sees its own only
    assert client.get(url, headers=bearer(tokens["staff"])).status_code == 403
    assert client.get(f"{url}?revision=2", headers=bearer(tokens["office"])).status_code == 404
    assert client.get("/api/v1/schemes/lidu/assessment/periods", headers=bearer(tokens["staff"])).status_code == 403


def test_board_data_as_the_public_board_shows_it(tokens, client):
    today = TODAY
    appoint("lidu", "community_head", "李书记", area_key="shilong_town", phone="13800000001",
            since=today - dt.timedelta(days=60))
    appoint("lidu", "segment_keeper", "张三", area_key="shilong_old_street", phone="13900000002",
            since=today - dt.timedelta(days=40))
    db.session.commit()
    headers = bearer(tokens["reporter"])
    board = client.get("/api/v1/schemes/lidu/boards/shilong_old_street", headers=headers).get_json()
    assert board["area"]["key"] == "shilong_old_street" and board["range"]["from"] == "石龙桥头"
    chiefs = {c["name"]: c for tier in board["tiers"] for c in tier["chiefs"]}
    assert set(chiefs) == {"李书记", "张三"}
    assert chiefs["张三"]["phone"] == "13900000002" and chiefs["李书记"]["phone"] is None  # public details only
    past = (today - dt.timedelta(days=50)).isoformat()
    earlier = client.get(f"/api/v1/schemes/lidu/boards/shilong_old_street?on={past}", headers=headers).get_json()
    assert {c["name"] for tier in earlier["tiers"] for c in tier["chiefs"]} == {"李书记"}
    assert client.get("/api/v1/schemes/lidu/boards/nowhere", headers=headers).status_code == 404
    assert client.get("/api/v1/schemes/lidu/boards/shilong_old_street?on=someday",
                      headers=headers).status_code == 422


def test_the_api_is_rate_limited_per_client(tmp_path):
    from server.extensions import limiter
    from tests.conftest import make_app

    enabled = limiter.enabled
    app = make_app(f"sqlite:///{tmp_path / 'limits.sqlite'}", tmp_path, RATELIMIT_ENABLED=True,
                   FANGAN_API_LIMIT="3 per minute")
    try:
        with app.app_context():
            load_demo()
            first, second = new_client("first"), new_client("second")
        client = app.test_client()
        codes = [client.get("/api/v1/schemes/lidu/boards/shilong_old_street", headers=bearer(first)).status_code
                 for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        limited = client.get("/api/v1/schemes/lidu/cases", headers=bearer(first))
        assert limited.status_code == 429 and limited.get_json()["error"]["code"] == "rate_limited"
        assert "Retry-After" in limited.headers
        # Another client from the same address has a budget of its own.
        assert client.get("/api/v1/schemes/lidu/cases", headers=bearer(second)).status_code == 403
    finally:
        with app.app_context():
            db.engine.dispose()
        limiter.enabled = enabled  # the limiter is shared: leave it as the other tests' apps want it


def test_the_page_and_the_api_report_a_case_through_one_service(app, tokens, monkeypatch):
    """Reporting a problem is one use case: the report page and the JSON API both go through
    workflow.service.report_case, and the same report gives the same case (routed, with its deadline)."""
    import io
    import re

    from server.workflow import service as workflow
    from tests.support.factories import login

    calls, real = [], workflow.report_case

    def counted(user, scheme_key, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        calls.append(scheme_key)
        return real(user, scheme_key, *args, **kwargs)

    monkeypatch.setattr(workflow, "report_case", counted)
    client = app.test_client()
    by_api = open_case(client, tokens["reporter"])
    page = app.test_client()
    login(page, "reporter")
    html = page.get("/cases/lidu/report").get_data(as_text=True)
    fields = {name: re.search(rf'name="{name}"[^>]*value="([^"]*)"', html).group(1)
              for name in ("csrf_token", "_token")}
    sent = page.post("/cases/lidu/report", content_type="multipart/form-data", data={
        **fields, "_action": "submit", "category": "piled_rubbish", "area": "shilong_old_street",
        "description": "垃圾堆积", "size_m3": "1", "urgency": "normal",
        "photos_before": (io.BytesIO(base64.b64decode(photo()["content"])), "p.jpg")})
    assert sent.status_code == 303 and calls == ["lidu", "lidu"]
    case_id = int(re.search(r"/case/(\d+)", sent.headers["Location"]).group(1))
    by_page = client.get(f"/api/v1/cases/{case_id}", headers=bearer(tokens["reporter"])).get_json()
    keys = ("state", "unit", "category", "area")
    assert {k: by_page.get(k) for k in keys} == {k: by_api.get(k) for k in keys}
