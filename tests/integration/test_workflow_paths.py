"""Every shipped workflow walked through each of its paths (rework, waiting states, branches, endings)."""

from __future__ import annotations

import pytest

from server.definitions.service import activate_scheme_version, load_scheme
from server.extensions import db
from tests.integration.test_cases import photo
from tests.support.factories import demo_files

DISPATCH = {"target_unit": "shilong"}
RECTIFY = {"action_taken": "已处理", "finished_at": "2026-11-20T15:00"}
PASSED = {"verdict": "passed"}
FAILED = {"verdict": "failed", "comment": "未达标"}
WHY = {"reason": "不属本单位职责"}  # a step that ends or returns a case says why
REPORT = {"category": "piled_rubbish", "area": "shilong_old_street", "description": "补充说明", "urgency": "normal"}

PATHS = {
    "discover_assign_rectify_close": {
        "rework": [("office", "assign", DISPATCH), ("head", "rectify", RECTIFY), ("office", "rework", FAILED),
                   ("head", "rectify", RECTIFY), ("office", "close", PASSED)],
        "send back and reject": [("office", "assign", DISPATCH), ("head", "send_back", WHY),
                                 ("office", "reject", WHY)],
        "extension refused, then granted": [
            ("office", "assign", DISPATCH), ("head", "request_extension", {"extra_days": "2", "reason": "量大"}),
            ("office", "refuse_extension", None), ("head", "request_extension", {"extra_days": "1", "reason": "仍需"}),
            ("office", "approve_extension", None), ("head", "rectify", RECTIFY), ("office", "close", PASSED)],
    },
    "road_chief_disposal": {
        "self-handled": [("reporter", "self_handle", RECTIFY)],
        "dispatched with rework": [("office", "dispatch", DISPATCH), ("head", "rectify", RECTIFY),
                                   ("office", "rework_dispatched", FAILED), ("head", "rectify", RECTIFY),
                                   ("office", "close", PASSED)],
        "enforcement with rework": [("office", "refer_to_enforcement", DISPATCH), ("head", "accept_enforcement", None),
                                    ("head", "enforcement_done", RECTIFY), ("office", "rework_enforcement", FAILED),
                                    ("head", "enforcement_done", RECTIFY), ("office", "close", PASSED)],
        "enforcement declined, rejected": [("office", "refer_to_enforcement", DISPATCH),
                                           ("head", "decline_enforcement", WHY), ("office", "reject", WHY)],
    },
    "digital_city": {
        "rework": [("office", "register", None), ("office", "dispatch", DISPATCH), ("head", "handle", RECTIFY),
                   ("office", "rework", FAILED), ("head", "handle", RECTIFY), ("office", "close", PASSED)],
        "more information, on hold": [("office", "request_info", None), ("reporter", "supply_info", REPORT),
                                      ("office", "register", None), ("office", "dispatch", DISPATCH),
                                      ("office", "suspend", None), ("office", "resume", None),
                                      ("head", "handle", RECTIFY), ("office", "close", PASSED)],
        "returned, then not registered": [("office", "register", None), ("office", "dispatch", DISPATCH),
                                          ("head", "return_case", WHY), ("office", "dispatch", DISPATCH),
                                          ("head", "handle", RECTIFY), ("office", "close", PASSED)],
        "disputed and upheld": [("office", "register", None), ("office", "dispatch", DISPATCH),
                                ("head", "dispute", WHY), ("office", "uphold_dispute", None),
                                ("office", "dispatch", DISPATCH), ("head", "handle", RECTIFY),
                                ("office", "close", PASSED)],
        "disputed and rejected": [("office", "register", None), ("office", "dispatch", DISPATCH),
                                  ("head", "dispute", WHY), ("office", "reject_dispute", None),
                                  ("head", "handle", RECTIFY), ("office", "close", PASSED)],
        "duplicate": [("office", "mark_duplicate", None)],
        "withdrawn while waiting": [("office", "request_info", None), ("reporter", "withdraw", None)],
        "not registered": [("office", "not_register", WHY)],
    },
}
FINAL = {"reject": "rejected", "not_register": "not_registered", "mark_duplicate": "duplicate", "withdraw": "withdrawn"}


@pytest.fixture
def everything(ctx):
    with ctx.test_request_context():
        files = dict(demo_files())
        key = next(k for k in files if k.endswith("scheme.yaml"))
        files[key] = files[key].replace(
            "workflows: [discover_assign_rectify_close]",
            "workflows: [discover_assign_rectify_close, road_chief_disposal, digital_city]")
        version, _ = load_scheme(files)
        activate_scheme_version(version.id)
        db.session.commit()
        yield _people_after_load()


def _people_after_load() -> dict:
    from tests.support.factories import make_user

    return {
        "reporter": make_user("reporter", roles=(("lidu", "staff", "shilong"),)),
        "office": make_user("office", roles=(("lidu", "office_admin", None),)),
        "head": make_user("head", roles=(("lidu", "unit_head", "shilong"),)),
    }


@pytest.mark.parametrize(("workflow", "path"), [(w, p) for w, paths in PATHS.items() for p in paths])
def test_path(everything, workflow, path):
    from server.forms import service as forms
    from server.forms.engine import form_spec
    from server.forms.models import Submission
    from server.workflow import service
    from tests.integration.test_cases import formdata

    people = everything
    version = forms.form_version("lidu", "problem_report")
    submission = forms.post_form(people["reporter"], "lidu", form_spec(version.data), version, formdata(
        _token=f"r-{workflow}-{path}", photos_before=photo(), size_m3="1", **REPORT))
    assert isinstance(submission, Submission)
    case = service.open_case(people["reporter"], "lidu", submission, workflow)
    db.session.commit()
    steps = PATHS[workflow][path]
    for number, (who, transition, fields) in enumerate(steps):
        user = people[who]
        offered = [t.id for t in service.available_actions(user, case)]
        assert transition in offered, (number, transition, case.state, offered)
        data = None
        if fields is not None:
            extra = {"photos_after": photo()} if "action_taken" in fields else {}
            extra |= {"photos_before": photo()} if transition == "supply_info" else {}
            data = formdata(_token=f"{path}-{number}", **fields, **extra)
        case, page = service.fire(user, case.id, transition, case.version, data)
        assert page is None, page.errors
        db.session.commit()
        if case.state_kind == "waiting":
            assert all(d.paused_at for d in case.deadlines if d.stopped_at is None)
    last = steps[-1][1]
    assert case.state_kind == "final"
    assert case.state == FINAL.get(last, "closed")
    assert case.rework_count == sum(1 for _, t, f in steps if f is FAILED)
    assert all(d.stopped_at is not None for d in case.deadlines)
    assert [e.transition for e in case.events][1:] == [t for _, t, _ in steps]


