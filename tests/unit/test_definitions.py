"""The definition language: parsing with positions, schema messages, reference checks, all errors at once."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from server.definitions.bundle import check_files, read_zip
from server.definitions.errors import DefinitionsInvalid
from server.definitions.loader import content_hash, parse_text
from server.definitions.schema import KINDS, validate_schema, validator_for
from tests.support.schemes import MINI_SCHEME

MINI_FORM = """\
kind: form
id: log
name: 巡查日志
purpose: patrol
fields:
  - {id: qty, type: integer, label: 数量, min: 0}
  - {id: note, type: textarea, label: 说明, required_if: "qty > 3"}
"""


def errors_of(files: dict[str, str], library: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(DefinitionsInvalid) as info:
        check_files(files, library or {})
    return [str(e) for e in info.value.errors]


def test_mini_scheme_is_valid():
    bundle = check_files({"mini/scheme.yaml": MINI_SCHEME, "mini/log.yaml": MINI_FORM})
    assert bundle.id == "mini"
    assert [(m.kind, m.id) for m in bundle.members] == [("form", "log")]


def test_every_schema_is_a_valid_2020_12_schema():
    for kind in KINDS:
        assert validator_for(kind).schema["$schema"].endswith("2020-12/schema")


def test_enum_error_names_file_line_and_path_like_the_docs():
    text = MINI_SCHEME.replace("per: week", "per: fortnight")
    assert errors_of({"schemes/mini/scheme.yaml": text, "schemes/mini/log.yaml": MINI_FORM}) == [
        "schemes/mini/scheme.yaml line 29: patrol_rules[0].per: 'fortnight' is not one of "
        "'day', 'week', 'half_month', 'month', 'quarter', 'year'"
    ]


def test_yaml_syntax_error_has_its_line():
    text = MINI_FORM.replace("purpose: patrol", "purpose: [patrol")
    (error,) = errors_of({"log.yaml": text, "scheme.yaml": MINI_SCHEME})[:1]
    assert error.startswith("log.yaml line ")
    assert "YAML syntax error" in error


def test_duplicate_yaml_key_is_a_syntax_error():
    text = MINI_FORM.replace("purpose: patrol", "purpose: patrol\npurpose: other")
    found = errors_of({"log.yaml": text, "scheme.yaml": MINI_SCHEME})
    assert any(e.startswith("log.yaml line 5: ") and "duplicate key" in e for e in found), found


def test_unknown_field_points_at_the_key_and_suggests():
    text = MINI_SCHEME.replace("      - {id: c1, kind: community, name: 一社区}",
                               "      - id: c1\n        kind: community\n        nmae: 一社区")
    found = errors_of({"s.yaml": text, "log.yaml": MINI_FORM})
    assert "s.yaml line 14: units[0].children[0].nmae: unknown field 'nmae' (did you mean 'name'?)" in found
    assert "s.yaml line 12: units[0].children[0]: missing required field 'name'" in found


def test_wrong_type_message():
    text = MINI_SCHEME.replace("at_least: 1", "at_least: once")
    found = errors_of({"s.yaml": text, "log.yaml": MINI_FORM})
    assert found == ["s.yaml line 28: patrol_rules[0].at_least: expected a whole number, got 'once'"]


def test_json_files_get_lines_too():
    form = {"kind": "form", "id": "log", "name": "日志", "fields": [{"id": "qty", "type": "number"}]}
    text = json.dumps(form, ensure_ascii=False, indent=2)
    found = errors_of({"s.yaml": MINI_SCHEME, "log.json": text})
    line = text.splitlines().index('      "type": "number"') + 1
    assert found[0].startswith(f"log.json line {line}: fields[0].type: 'number' is not one of")


def test_json_syntax_error():
    found = errors_of({"s.yaml": MINI_SCHEME, "log.json": '{\n  "kind": "form",\n  "id": \n}'})
    assert found[0].startswith("log.json line 4: JSON syntax error")


def test_reference_errors_with_suggestions():
    text = MINI_SCHEME.replace("reports_to: chief", "reports_to: cheif").replace("unit: c1", "unit: c2")
    found = errors_of({"s.yaml": text, "log.yaml": MINI_FORM})
    assert "s.yaml line 21: tiers[1].reports_to: unknown tier 'cheif' (did you mean 'chief'?)" in found
    assert any(e.startswith("s.yaml line 16: areas[0].unit: unknown unit 'c2'") for e in found)


def test_tier_loop_is_reported():
    text = MINI_SCHEME.replace("{id: chief, name: 总路长, role: admin}",
                               "{id: chief, name: 总路长, role: admin, reports_to: first}")
    found = errors_of({"s.yaml": text, "log.yaml": MINI_FORM})
    assert any("reports to itself through a loop" in e for e in found)


def test_expression_names_are_checked_against_fields():
    text = MINI_FORM.replace("qty > 3", "qtty > 3")
    found = errors_of({"s.yaml": MINI_SCHEME, "log.yaml": text})
    assert found == ["log.yaml line 7: fields[1].required_if: unknown name 'qtty' (did you mean 'qty'?)"]


def test_forbidden_operator_is_a_schema_error():
    text = MINI_FORM.replace("qty > 3", "qty ** 3 > 3")
    found = errors_of({"s.yaml": MINI_SCHEME, "log.yaml": text})
    assert len(found) == 1 and found[0].startswith("log.yaml line 7: fields[1].required_if: invalid expression")
    assert "'**'" in found[0]


WORKFLOW = """\
kind: workflow
id: flow
name: 流程
initial: open
states:
  - {id: open, name: 待办, kind: open}
  - {id: done, name: 办结, kind: final}
  - {id: limbo, name: 悬空, kind: open}
transitions:
  - {id: finish, name: 办结, from: open, to: done, who: {capabilities: [case.handle]}, form: log}
  - {id: again, name: 重办, from: [done], to: opn, who: {relations: [reporter]}}
"""


def test_workflow_graph_checks():
    scheme = MINI_SCHEME + "workflows: [flow]\n"
    found = errors_of({"s.yaml": scheme, "log.yaml": MINI_FORM, "flow.yaml": WORKFLOW})
    assert "flow.yaml line 11: transitions[1].to: unknown state 'opn' (did you mean 'open'?)" in found
    assert "flow.yaml line 8: states[2].id: state 'limbo' cannot be reached from 'open'" in found
    assert "flow.yaml line 8: states[2].id: state 'limbo' is not final but no transition leaves it" in found


def test_queue_look_names_the_report_forms_fields_and_choices():
    """A row's line is a case field; a flag is a choice field of the report form, with values among its choices
    (a tag that can never show is an error)."""
    form = MINI_FORM.replace("purpose: patrol", "purpose: case_report") + (
        "  - {id: level, type: single_choice, label: 级别,\n"
        "     choices: [{value: low, label: 低}, {value: high, label: 高}]}\n")
    flow = WORKFLOW.replace("to: opn", "to: open").replace("  - {id: limbo, name: 悬空, kind: open}\n", "") + (
        "report_form: log\nqueue:\n  line: notes\n  flags:\n    - {field: qty, values: [x]}\n"
        "    - {field: level, values: [high, top]}\n")
    found = errors_of({"s.yaml": MINI_SCHEME + "workflows: [flow]\n", "log.yaml": form, "flow.yaml": flow})
    assert found == [
        "flow.yaml line 13: queue.line: unknown field 'notes' (did you mean 'note'?)",
        "flow.yaml line 15: queue.flags[0].field: "
        "'qty' is not a field of the report form with its own choices",
        "flow.yaml line 16: queue.flags[1].values[1]: 'top' is not a choice of 'level'"]
    fixed = (flow.replace("line: notes", "line: note").replace("[high, top]", "[high]")
             .replace("{field: qty, values: [x]}", "{field: level, values: [high]}"))
    bundle = check_files({"s.yaml": MINI_SCHEME + "workflows: [flow]\n", "log.yaml": form, "flow.yaml": fixed}, {})
    assert bundle.get("workflow", "flow").data["queue"]["line"] == "note"


def test_duplicate_definition_ids_across_files():
    found = errors_of({"s.yaml": MINI_SCHEME, "a.yaml": MINI_FORM, "b.yaml": MINI_FORM})
    assert any(e.startswith("b.yaml line 2: id: duplicate form id 'log' (also in a.yaml)") for e in found)


def test_all_errors_reported_in_one_run():
    scheme = MINI_SCHEME.replace("per: week", "per: fortnight").replace("reports_to: chief", "reports_to: x")
    form = MINI_FORM.replace("qty > 3", "qtty > 3")
    assert len(errors_of({"s.yaml": scheme, "log.yaml": form})) == 3


def test_scheme_own_definition_overrides_built_in():
    built_in = MINI_FORM.replace("name: 巡查日志", "name: 内置")
    bundle = check_files({"s.yaml": MINI_SCHEME, "log.yaml": MINI_FORM}, {"form_definitions/log.yaml": built_in})
    assert bundle.get("form", "log").data["name"] == "巡查日志"


def test_missing_scheme_file():
    assert errors_of({"log.yaml": MINI_FORM}) == ["log.yaml line 1: no file with 'kind: scheme' was found"]


def test_zip_upload_refuses_unsafe_paths():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("../evil.yaml", "kind: form")
    with pytest.raises(DefinitionsInvalid) as info:
        read_zip(buffer.getvalue())
    assert "unsafe path" in str(info.value)


def test_zip_upload_reads_definitions():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("mini/scheme.yaml", MINI_SCHEME)
        archive.writestr("mini/forms/log.yaml", MINI_FORM)
        archive.writestr("mini/README.txt", "ignored")
    assert sorted(read_zip(buffer.getvalue())) == ["mini/forms/log.yaml", "mini/scheme.yaml"]


def test_content_hash_ignores_key_order_and_formatting():
    a = parse_text("a.yaml", "kind: form\nid: x\nname: n\n").data
    b = parse_text("b.json", '{"name": "n", "id": "x", "kind": "form"}').data
    assert content_hash(a) == content_hash(b)


def test_unknown_kind():
    doc = parse_text("x.yaml", "kind: forms\nid: x\n")
    assert [str(e) for e in validate_schema(doc)] == [
        "x.yaml line 1: kind: 'forms' is not one of 'scheme', 'form', 'workflow', 'patrol_rules', "
        "'score_sheet', 'board', 'category_list'"
    ]


def test_a_form_that_opens_cases_needs_a_workflow():
    opening = MINI_FORM + "opens_cases:\n  fill: {description: note}\n"
    errors = errors_of({"mini/scheme.yaml": MINI_SCHEME, "mini/log.yaml": opening})
    assert errors == ["mini/scheme.yaml line 22: forms: form 'log' opens cases, but the scheme has no default_workflow"]
    unknown = opening.replace("fill: {description: note}", "fill: {description: nowhere}")
    assert any("opens_cases.fill.description: unknown field 'nowhere'" in e
               for e in errors_of({"mini/scheme.yaml": MINI_SCHEME, "mini/log.yaml": unknown}))


def test_weighted_categories_add_up_by_weight():
    from server.definitions.bundle import library_files, read_source
    from tests.support.factories import ROOT

    files, library = read_source(ROOT / "schemes" / "chengguan"), library_files(ROOT)
    name = next(n for n in files if n.endswith("monthly.yaml"))
    assert check_files(files, library)  # weights 26/26/12/12/12/12 make the 100
    broken = dict(files)
    broken[name] = files[name].replace("\n    weight: 26\n", "\n    weight: 25\n", 1)
    errors = errors_of(broken, library)
    assert any("total is 100 but the section weights add up to 99" in e for e in errors)


def test_a_scheme_or_board_may_choose_only_an_installed_theme():
    from server.definitions.bundle import available_themes, library_files, read_source
    from tests.support.factories import ROOT

    assert {"default", "blue"} <= available_themes(ROOT)
    files, library = read_source(ROOT / "schemes" / "lidu"), library_files(ROOT)
    chosen = dict(files)
    chosen["schemes/lidu/scheme.yaml"] = files["schemes/lidu/scheme.yaml"].replace("theme: default", "theme: blue")
    assert check_files(chosen, library).scheme.data["theme"] == "blue"
    unknown = dict(files)
    unknown["schemes/lidu/scheme.yaml"] = files["schemes/lidu/scheme.yaml"].replace("theme: default", "theme: bleu")
    unknown["schemes/lidu/board.yaml"] = files["schemes/lidu/board.yaml"] + "theme: gold\n"
    line = files["schemes/lidu/scheme.yaml"].splitlines().index("theme: default") + 1
    board_line = len(files["schemes/lidu/board.yaml"].splitlines()) + 1
    installed = ", ".join(sorted(available_themes(ROOT)))
    assert sorted(errors_of(unknown, library)) == [
        f"schemes/lidu/board.yaml line {board_line}: theme: unknown theme 'gold': installed themes are {installed}",
        f"schemes/lidu/scheme.yaml line {line}: theme: unknown theme 'bleu' (did you mean 'blue'?): "
        f"installed themes are {installed}",
    ]
    # The names checked against are the ones given (what is installed where the scheme is loaded).
    with pytest.raises(DefinitionsInvalid, match="unknown theme 'blue'"):
        check_files(chosen, library, themes={"default"})


FOUR_EYES = """\
kind: workflow
id: flow
name: 流程
initial: open
states:
  - {id: open, name: 待办, kind: open}
  - {id: done, name: 已办, kind: final, outcome: resolved}
transitions:
  - {id: finish, name: 办结, from: open, to: done, who: {capabilities: [case.handle]}, form: log}
  - id: check
    name: 核查
    from: done
    to: done
    who: {relations: [reporter]}
    not_by: {relations: [reporter], steps: [finsh]}
"""


def test_four_eyes_names_steps_and_never_refuses_everyone_it_lets_in():
    scheme = MINI_SCHEME + "workflows: [flow]\n"
    found = errors_of({"s.yaml": scheme, "log.yaml": MINI_FORM, "flow.yaml": FOUR_EYES})
    assert ("flow.yaml line 15: transitions[1].not_by.steps[0]: unknown transition 'finsh' (did you mean 'finish'?)"
            in found)
    assert any(e.startswith("flow.yaml line 15: transitions[1].not_by.relations: 'who' lets reporter take this step "
                            "and 'not_by' refuses them") for e in found), found


def test_four_eyes_refuses_whoever_took_the_named_steps():
    import yaml

    from server.workflow.engine import Actor, may_fire, workflow_spec

    text = FOUR_EYES.replace("who: {relations: [reporter]}", "who: {capabilities: [case.dispatch]}")
    definition = yaml.safe_load(text.replace("[reporter], steps: [finsh]", "[assignee], steps: [finish]"))
    check = workflow_spec(definition).transition("check")
    dispatcher = Actor(capabilities=frozenset({"case.dispatch"}))
    assert may_fire(check, dispatcher)
    assert not may_fire(check, Actor(capabilities=frozenset({"case.dispatch"}), took=frozenset({"finish"})))
    assert not may_fire(check, Actor(capabilities=frozenset({"case.dispatch"}), relations=frozenset({"assignee"})))
    assert may_fire(check, Actor(capabilities=frozenset({"case.dispatch"}), took=frozenset({"other"})))


CATEGORY_LIST = """\
kind: category_list
id: national
name: {zh: 全国分类, en: National}
categories:
  - id: events
    name: {zh: 事件, en: Events}
    children:
      - {id: ev_rubbish, name: {zh: 暴露垃圾, en: Exposed rubbish}}
      - {id: ev_muck, name: {zh: 积存垃圾渣土, en: Piled rubbish or muck}}
  - id: stalls
    name: {zh: 摊点, en: Stalls}
    children:
      - {id: ev_stall, name: {zh: 流动摊点, en: Mobile stall}}
"""


def _with_categories(own: str) -> dict[str, str]:
    scheme = MINI_SCHEME + "category_lists: [national]\ncategories:\n" + own
    return {"schemes/mini/scheme.yaml": scheme, "schemes/mini/log.yaml": MINI_FORM,
            "category_definitions/national.yaml": CATEGORY_LIST}


def test_a_districts_categories_stand_for_the_lists_in_pickers():
    from server.definitions.bundle import merge_categories, picker_categories

    own = [{"id": "rubbish", "name": {"zh": "暴露垃圾"}},  # the very name of the list's: it stands for it
           {"id": "muck", "name": {"zh": "积存垃圾"}, "replaces": ["ev_muck"]},
           {"id": "stall", "name": {"zh": "占道摊点"}, "replaces": ["ev_stall"]}]
    import yaml

    listed = [yaml.safe_load(CATEGORY_LIST)["categories"]]
    tree = picker_categories(own, listed)
    assert [c["id"] for c in tree] == ["rubbish", "muck", "stall"]  # both groups of the list emptied, so gone
    full = merge_categories(own, listed)
    assert [c["id"] for c in full] == ["events", "stalls", "rubbish", "muck", "stall"]  # names for old cases
    assert [c["id"] for c in picker_categories([{"id": "other", "name": "别的"}], listed)] == [
        "events", "stalls", "other"]  # nothing to stand for: the list stays whole
    # A district's own version of a list's group (the same id) is the district's: it stays, children and all.
    mine = [{"id": "stalls", "name": {"zh": "摊点"}, "children": [{"id": "ev_stall", "name": {"zh": "流动摊点"}},
                                                               {"id": "night_market", "name": {"zh": "夜市"}}]}]
    kept = picker_categories(mine, listed)
    assert [c["id"] for c in kept] == ["events", "stalls"]
    assert [c["id"] for c in kept[1]["children"]] == ["ev_stall", "night_market"]
    # A name the lists use twice stands for neither of them.
    twice = [[{"id": "a", "name": "甲", "children": [{"id": "a_other", "name": "其他"}]},
              {"id": "b", "name": "乙", "children": [{"id": "b_other", "name": "其他"}]}]]
    assert [c["id"] for c in picker_categories([{"id": "other", "name": "其他"}], twice)] == ["a", "b", "other"]


def test_replacing_a_category_the_lists_do_not_have_is_an_error():
    text = "  - {id: muck, name: {zh: 积存垃圾}, replaces: [ev_muck, no_such]}\n  - {id: mine, name: 我的}\n" \
           "  - {id: again, name: 又一个, replaces: [mine]}\n"
    errors = errors_of(_with_categories(text))
    assert len(errors) == 2, errors
    assert "categories[0].replaces" in errors[0] and "no_such" in errors[0]
    assert "categories[2].replaces" in errors[1] and "'mine'" in errors[1]  # the district's own: not a list's


def test_reference_problems_carry_their_chinese_words():
    text = MINI_SCHEME + "  - {id: weekly, name: 又一条, who: {tiers: [first]}, at_least: 1, per: week}\n" \
                         "  - {id: daily, name: 每天, who: {tiers: [firts]}, at_least: 1, per: day}\n"
    with pytest.raises(DefinitionsInvalid) as info:
        check_files({"schemes/mini/scheme.yaml": text, "schemes/mini/log.yaml": MINI_FORM}, {})
    said = {e.message: e.message_in("zh") for e in info.value.errors}
    assert said["duplicate patrol rule id 'weekly'"] == "巡查规则编号“weekly”重复"
    assert said["unknown tier 'firts' (did you mean 'first'?)"] == "未知的层级“firts”（是否应为“first”？）"
    assert all(e.message_in("en") == e.message for e in info.value.errors)  # English stays English


def test_people_sheet_and_combination_problems_carry_their_chinese_words():
    from server.definitions.bundle import library_files, read_source
    from tests.support.factories import ROOT

    files, library = read_source(ROOT / "schemes" / "luzhang"), library_files(ROOT)
    name = next(n for n in files if n.endswith("squad_chiefs.yaml"))
    broken = dict(files)
    broken[name] = files[name].replace("  tiers: [second_chief_squad]\n", "  tiers: [second_chief_squad]\n"
                                       "appeal_roles: [chief]\n", 1) \
        .replace("    formula: luzhang_squad_chiefs\n", "    sheets: [luzhang_squad]\n"
                 "    formula: luzhang_squad_chiefs\n", 1)
    with pytest.raises(DefinitionsInvalid) as info:
        check_files(broken, library)
    said = {e.message: e.message_in("zh") for e in info.value.errors}
    assert said["this sheet assesses people: people's appeals are not taken yet"] == (
        "本考核表考核个人：暂不受理个人申诉")
    assert said["'luzhang_squad' assesses units and this sheet people: no one has a score in both"] == (
        "“luzhang_squad”考核单位，而本考核表考核个人：没有谁在两张表中都有得分")
