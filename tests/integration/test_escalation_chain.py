"""A step's form reads its case (`case.*`): the built-in 上报 form offers only the units on the case's own chain
(the unit holding it and the units above it), never a unit beside it."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.definitions.bundle import library_files
from server.definitions.service import activate_scheme_version, load_scheme
from server.extensions import db
from server.workflow import service
from tests.support.factories import demo_files, formdata, load_demo, make_user

ROOT = Path(__file__).resolve().parents[2]
PASS_UP = """  - id: pass_up
    name: {zh: 上报, en: Pass up}
    from: assigned
    to: reported
    who: {relations: [assignee, assignee_unit]}
    form: escalation
    effects:
      - set: {handling_unit: target_unit}
      - assign: {field: handling_unit}
      - stop_deadline: rectify
"""


@pytest.fixture
def district(ctx):
    load_demo()
    name = "workflow_definitions/discover_assign_rectify_close.yaml"
    text = library_files(ROOT)[name]
    assert "\n  - id: reject\n" in text
    files = {**demo_files(), "lidu/discover_assign_rectify_close.yaml":
             text.replace("\n  - id: reject\n", "\n" + PASS_UP + "  - id: reject\n", 1)}
    version, _ = load_scheme(files)
    activate_scheme_version(version.id)
    db.session.commit()
    with ctx.test_request_context():
        yield {"office": make_user("office", roles=(("lidu", "office_admin", None),)),
               "reporter": make_user("reporter", roles=(("lidu", "staff", "shilong"),)),
               "head": make_user("head", roles=(("lidu", "unit_head", "shilong"),))}


def _assigned_case(people) -> object:  # noqa: ANN001
    from server.forms import service as forms
    from server.forms.engine import form_spec
    from server.forms.models import Submission
    from tests.support.factories import photo

    version = forms.form_version("lidu", "problem_report")
    result = forms.post_form(people["reporter"], "lidu", form_spec(version.data), version, formdata(
        _token="r1", category="piled_rubbish", area="shilong_old_street", description="垃圾堆积",
        photos_before=photo(), size_m3="1", urgency="normal"))
    assert isinstance(result, Submission), result.errors
    case = service.open_case(people["reporter"], "lidu", result)
    case, page = service.fire(people["office"], case.id, "assign", case.version, formdata(
        _token="a1", target_unit="shilong", instructions="请处理"))
    assert page is None and case.unit.key == "shilong"
    db.session.commit()
    return case


def test_the_pass_up_form_offers_only_the_units_above(district):
    from server.forms import service as forms
    from server.forms.engine import form_spec

    case = _assigned_case(district)
    assert service.case_form_names(case)["chain"] == ["shilong", "lidu_street"]
    row = service._form_row(case, "escalation")
    page = forms.open_form(district["head"], "lidu", form_spec(row.data), row, case=service.case_form_names(case))
    offered = [value for value, _label in page.form["target_unit"].choices if value]
    assert offered == ["lidu_street"]  # not Shilong itself, not a neighbouring community or a department
    _case, refused = service.fire(district["head"], case.id, "pass_up", case.version, formdata(
        _token="p1", target_unit="zhiyuan", reason="超出社区能力"))
    assert refused is not None and "target_unit" in refused.state.errors  # a unit beside it is refused
    case, page = service.fire(district["head"], case.id, "pass_up", case.version, formdata(
        _token="p2", target_unit="lidu_street", reason="超出社区能力"))
    assert page is None and case.unit.key == "lidu_street" and case.state == "reported"
    moved = case.events[-1]
    assert moved.from_unit_id is not None and moved.to_unit_id == case.unit_id  # credited as passed up
