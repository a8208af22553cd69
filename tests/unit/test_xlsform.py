"""XLSForm import (server/forms/xlsform.py): workbooks built in memory with openpyxl, no DB, no Flask."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import openpyxl
import pytest
from ruamel.yaml import YAML

from server.definitions.bundle import check_files
from server.definitions.errors import DefinitionsInvalid
from server.forms.xlsform import (
    ExpressionScope,
    XlsformError,
    XlsformIssue,
    import_xlsform,
    sanitize_id,
    to_yaml,
    translate_expression,
)
from tests.support.schemes import MINI_SCHEME

Rows = list[list[Any]]

# A tiny valid scheme (as in test_definitions.py) that lists the imported form as its patrol form.


def workbook(survey: Rows | None, choices: Rows | None = None, settings: Rows | None = None) -> bytes:
    """An .xlsx with the given sheets (first row = headers)."""
    book = openpyxl.Workbook()
    book.remove(book.active)
    for title, rows in (("survey", survey), ("choices", choices), ("settings", settings)):
        if rows is not None:
            sheet = book.create_sheet(title)
            for row in rows:
                sheet.append(row)
    stream = io.BytesIO()
    book.save(stream)
    return stream.getvalue()


def scheme_with(definition: dict) -> dict[str, str]:
    """A tiny valid scheme whose patrol form is the imported one."""
    scheme = MINI_SCHEME.replace("forms: [log]", f"forms: [{definition['id']}]")
    scheme = scheme.replace("patrol_form: log", f"patrol_form: {definition['id']}")
    return {"mini/scheme.yaml": scheme, f"mini/{definition['id']}.yaml": to_yaml(definition)}


def fields_by_id(definition: dict) -> dict[str, dict]:
    found: dict[str, dict] = {}

    def walk(items: list[dict]) -> None:
        for item in items:
            found[item["id"]] = item
            walk(item.get("fields", []))

    walk(definition["fields"])
    return found


def issues_of(data: bytes, **kwargs: Any) -> list[XlsformIssue]:
    """What a strict import refuses: everything that would be left out (or that refuses the workbook anyway)."""
    with pytest.raises(XlsformError) as caught:
        import_xlsform(data, strict=True, **kwargs)
    return caught.value.issues


def imported(data: bytes, *args: Any, **kwargs: Any) -> dict:
    """The definition of a workbook that imports whole."""
    result = import_xlsform(data, *args, **kwargs)
    assert result.dropped == []
    return result.definition


HEADERS = ["type", "name", "label::中文 (zh)", "label::English (en)", "hint::中文 (zh)", "required", "relevant",
           "constraint", "constraint_message::中文 (zh)", "constraint_message::English (en)", "calculation",
           "choice_filter", "appearance", "repeat_count", "default"]


SHORT = {"hint_zh": "hint::中文 (zh)", "message_zh": "constraint_message::中文 (zh)",
         "message_en": "constraint_message::English (en)"}


def row(type_: str, name: str = "", zh: str = "", en: str = "", **columns: Any) -> list[Any]:
    """A survey row in HEADERS order; language columns by their SHORT names."""
    values = {"type": type_, "name": name, "label::中文 (zh)": zh, "label::English (en)": en,
              **{SHORT.get(k, k): v for k, v in columns.items()}}
    return [values.get(header) or None for header in HEADERS]


FULL_SURVEY = [
    HEADERS,
    row("start", "started"),
    row("text", "reporter", "填报人", "Reporter", hint_zh="姓名", required="yes"),
    row("integer", "qty", "数量", "Quantity", constraint=". >= 0 and . <= 100",
        message_zh="数量须在0到100之间", message_en="Between 0 and 100"),
    row("select_one fruit", "kind", "类别", "Kind", required="TRUE"),
    row("text", "details", "详情", "Details", relevant="${qty} > 3", appearance="multiline"),
    row("select_multiple fruit", "extras", "附加", "Extras", choice_filter="name != ${kind}"),
    row("note", "apple_note", "有苹果", "Apples chosen", relevant="selected(${extras}, 'apple')"),
    row("calculate", "total", calculation="${qty} * 2"),
    row("begin repeat", "items", "物品", "Items", repeat_count=5),
    row("text", "item_name", "名称", "Name", required="yes"),
    row("decimal", "item_weight", "重量", "Weight", constraint=". > 0"),
    row("end repeat"),
    row("begin group", "place", "地点", "Place", relevant="count-selected(${extras}) >= 1 or ${kind} = 1"),
    row("geopoint", "spot", "位置", "Location"),
    row("image", "photo", "照片", "Photo", required="${qty} > 50"),
    row("end group"),
    row("date", "visit_date", "日期", "Date", default="today()"),
    row("acknowledge", "agree", "确认无误", "Confirmed"),
]
FULL_CHOICES = [
    ["list_name", "name", "label::中文 (zh)", "label::English (en)"],
    ["fruit", "apple", "苹果", "Apple"],
    ["fruit", "pear", "梨", "Pear"],
    ["fruit", 1, "一号", "Number one"],
]
FULL_SETTINGS = [["form_title", "form_id", "default_language"], ["水果调查", "Fruit-Survey", "中文 (zh)"]]



def test_full_workbook_imports_and_passes_the_scheme_checks() -> None:
    definition = imported(workbook(FULL_SURVEY, FULL_CHOICES, FULL_SETTINGS), "fruit.xlsx")
    bundle = check_files(scheme_with(definition))
    assert [(m.kind, m.id) for m in bundle.members] == [("form", "fruit_survey")]

    assert definition["kind"] == "form"
    assert definition["id"] == "fruit_survey"
    assert definition["name"] == "水果调查"
    fields = fields_by_id(definition)
    assert "started" not in fields  # metadata is skipped
    assert [f["id"] for f in definition["fields"]] == [
        "reporter", "qty", "kind", "details", "extras", "apple_note", "total", "items", "place", "visit_date", "agree"]

    assert fields["reporter"] == {"id": "reporter", "type": "text", "label": {"zh": "填报人", "en": "Reporter"},
                                  "hint": {"zh": "姓名"}, "required": True}
    assert fields["qty"]["type"] == "integer"
    assert fields["qty"]["constraints"] == [
        {"check": "value >= 0 and value <= 100", "message": {"zh": "数量须在0到100之间", "en": "Between 0 and 100"}}]
    assert fields["kind"]["type"] == "single_choice"
    assert fields["kind"]["required"] is True
    assert fields["kind"]["choices"] == [
        {"value": "apple", "label": {"zh": "苹果", "en": "Apple"}},
        {"value": "pear", "label": {"zh": "梨", "en": "Pear"}},
        {"value": "1", "label": {"zh": "一号", "en": "Number one"}},
    ]
    assert fields["details"]["type"] == "textarea"
    assert fields["details"]["visible_if"] == "qty > 3"
    assert fields["extras"]["type"] == "multiple_choice"
    assert fields["extras"]["choice_filter"] == "choice.value != kind"
    assert fields["apple_note"] == {"id": "apple_note", "type": "note",
                                    "label": {"zh": "有苹果", "en": "Apples chosen"}, "visible_if": "'apple' in extras"}
    assert fields["total"] == {"id": "total", "type": "integer", "readonly": True, "calculate": "qty * 2"}

    items = fields["items"]
    assert (items["type"], items["repeat_count"]) == ("repeat", "5")
    assert [f["id"] for f in items["fields"]] == ["item_name", "item_weight"]
    assert fields["item_weight"]["constraints"][0]["check"] == "value > 0"
    assert fields["item_weight"]["constraints"][0]["message"]["en"]  # a default message when none is given

    place = fields["place"]
    assert place["type"] == "section"
    # select values are text, so the number 1 is compared as '1'
    assert place["visible_if"] == "len(extras) >= 1 or kind == '1'"
    assert [f["id"] for f in place["fields"]] == ["spot", "photo"]
    assert fields["spot"]["type"] == "location"
    assert fields["photo"] == {"id": "photo", "type": "photo", "label": {"zh": "照片", "en": "Photo"},
                               "required_if": "qty > 50", "max_files": 1, "accept": ["image"], "capture": True}
    assert fields["visit_date"]["default_from"] == "today"
    assert fields["agree"]["type"] == "single_choice"
    assert [c["value"] for c in fields["agree"]["choices"]] == ["OK"]


def test_plain_labels_give_plain_texts_and_the_id_falls_back_to_the_file_name() -> None:
    survey = [["type", "name", "label", "hint"], ["text", "Street Name", "Street", "The street"],
              ["integer", "count", "How many"]]
    definition = imported(workbook(survey), "Road Check 2024.xlsx")
    assert definition["id"] == "road_check_2024"
    assert definition["name"] == "Road Check 2024"
    assert definition["fields"] == [
        {"id": "street_name", "type": "text", "label": "Street", "hint": "The street"},
        {"id": "count", "type": "integer", "label": "How many"},
    ]
    check_files(scheme_with(definition))


def test_form_id_argument_overrides_settings() -> None:
    data = workbook([["type", "name", "label"], ["text", "a", "A"]], settings=[["form_id"], ["from_settings"]])
    assert imported(data, form_id="Chosen ID")["id"] == "chosen_id"
    assert imported(data)["id"] == "from_settings"


def test_plain_label_is_the_default_language_beside_language_columns() -> None:
    survey = [["type", "name", "label", "label::English (en)"], ["text", "a", "名称", "Name"], ["text", "b", "仅中文"]]
    settings = [["default_language"], ["中文 (zh)"]]
    fields = imported(workbook(survey, settings=settings))["fields"]
    assert fields[0]["label"] == {"zh": "名称", "en": "Name"}
    assert fields[1]["label"] == {"zh": "仅中文"}


def test_unsupported_type_is_reported_with_the_other_problems_in_one_error() -> None:
    survey = [
        ["type", "name", "label"],
        ["text", "road", "Road"],
        ["geotrace", "route", "Route"],
        ["integer", "n", "N"],
        ["select_one nowhere", "pick", "Pick"],
        ["audio", "voice", "Voice"],
    ]
    issues = issues_of(workbook(survey, choices=[["list_name", "name", "label"], ["yes_no", "yes", "Yes"]]))
    geotrace = next(i for i in issues if "geotrace" in i.message)
    assert (geotrace.sheet, geotrace.row, geotrace.column) == ("survey", 3, "type")
    assert str(geotrace) == "survey row 3 (route), column type: type 'geotrace' is not supported"
    missing = next(i for i in issues if "nowhere" in i.message)
    assert (missing.sheet, missing.row, missing.column) == ("survey", 5, "type")
    assert "choice list 'nowhere' is not in the choices sheet" in missing.message
    assert any(i.row == 6 and i.message == "type 'audio' is not supported" for i in issues)


def test_unbalanced_groups_are_reported_on_their_rows() -> None:
    survey = [
        ["type", "name", "label"],
        ["begin group", "outer", "Outer"],
        ["text", "a", "A"],
        ["begin repeat", "inner", "Inner"],
        ["text", "b", "B"],
        ["end group"],
        ["end repeat"],
        ["end repeat"],
        ["begin group", "open", "Open"],
        ["text", "c", "C"],
    ]
    found = {(i.sheet, i.row, i.column, i.message) for i in issues_of(workbook(survey))}
    assert found == {
        ("survey", 6, "type", "end group closes the repeat 'inner' begun on row 4"),
        ("survey", 7, "type", "end repeat closes the group 'outer' begun on row 2"),
        ("survey", 8, "type", "end repeat without a begin repeat"),
        ("survey", 9, "type", "begin group 'open' has no matching end group"),
    }


def test_duplicate_missing_and_unusable_names() -> None:
    survey = [
        ["type", "name", "label"],
        ["integer", "qty", "Qty"],
        ["text", "", "No name"],
        ["integer", "qty", "Qty again"],
        ["text", "Qty", "Same id"],
        ["text", "数量", "Chinese name"],
    ]
    found = {(i.row, i.column, i.message) for i in issues_of(workbook(survey))}
    assert found == {
        (3, "name", "missing name"),
        (4, "name", "duplicate name 'qty' (also on row 2)"),
        (5, "name", "name 'Qty' becomes id 'qty', which 'qty' on row 2 already has"),
        (6, "name", "name '数量' has no letters or digits usable in an id (a-z, 0-9, _): give it a pinyin or English "
                    "name"),
    }


def test_untranslatable_expressions_are_reported_at_their_cells() -> None:
    survey = [
        ["type", "name", "label", "relevant", "constraint", "calculation", "choice_filter"],
        ["text", "code", "Code", None, "substr(., 0, 1) = 'x'"],
        ["integer", "n", "N", "${missing} > 1"],
        ["calculate", "s", None, None, None, "sum(${n})"],
        ["text", "street", "Street"],
        ["select_one roads", "road", "Road", None, None, None, "label=${street}"],
        ["integer", "m", "M", "${n} ＞ 2"],
        ["integer", "k", "K", "/data/n > 2"],
        ["text", "before", "Before", None, None, "${last-saved#street}"],
    ]
    choices = [["list_name", "name", "label", "street"], ["roads", "r1", "Road 1", "s1"]]
    issues = issues_of(workbook(survey, choices))
    by_row = {i.row: i for i in issues}
    assert set(by_row) == {2, 3, 4, 6, 7, 8, 9}
    assert (by_row[2].sheet, by_row[2].column) == ("survey", "constraint")
    assert "the function substr() has no Fangan equivalent" in by_row[2].message
    assert by_row[3].column == "relevant" and "unknown field ${missing}" in by_row[3].message
    assert by_row[4].column == "calculation" and "sum()" in by_row[4].message
    assert by_row[6].column == "choice_filter"
    assert "a choice_filter over choice labels is not supported" in by_row[6].message
    assert "full-width characters ＞: type them half-width, as >" in by_row[7].message
    assert "paths" in by_row[8].message
    assert "${last-saved#street} (the answer last saved on this phone) is an ODK Collect feature" in by_row[9].message


def test_checker_problems_after_translation_are_reported() -> None:
    survey = [["type", "name", "label", "default"], ["integer", "a", "A"], ["integer", "b", "B", "${a} + 1"]]
    (issue,) = issues_of(workbook(survey))
    assert (issue.row, issue.column) == (3, "default")
    assert "unknown name 'a'" in issue.message  # defaults are computed from the context only


def test_repeat_count_from_a_field_and_or_other() -> None:
    survey = [
        ["type", "name", "label", "repeat_count", "relevant"],
        ["integer", "n", "N"],
        ["begin repeat", "r", "R", "${n}"],
        ["select_one yn or_other", "pick", "Pick"],
        ["text", "why", "Why", None, "${pick_other} != ''"],
        ["end repeat"],
    ]
    definition = imported(workbook(survey, [["list_name", "name", "label"], ["yn", "y", "Y"]]))
    fields = fields_by_id(definition)
    assert fields["r"]["repeat_count"] == "n"
    assert [c["value"] for c in fields["pick"]["choices"]] == ["y", "other"]
    assert fields["pick_other"] == {"id": "pick_other", "type": "text",
                                    "label": {"zh": "请注明其他", "en": "Please specify"},
                                    "visible_if": "pick == 'other'"}
    assert fields["why"]["visible_if"] == "pick_other is not None"
    assert [f["id"] for f in fields["r"]["fields"]] == ["pick", "pick_other", "why"]


def test_reserved_names_are_renamed_and_references_follow() -> None:
    survey = [["type", "name", "label", "relevant"], ["integer", "value", "Value"],
              ["text", "in", "In", "${value} > 1"], ["today", "today_date"],
              ["text", "late", "Late", "${today_date} > '2024-01-01'"]]
    fields = imported(workbook(survey))["fields"]
    assert [f["id"] for f in fields] == ["value_", "in_", "late"]
    assert fields[1]["visible_if"] == "value_ > 1"
    assert fields[2]["visible_if"] == "today > '2024-01-01'"


def test_not_a_workbook_and_no_survey_sheet() -> None:
    (issue,) = issues_of(b"not a zip", filename="old.xls")
    assert issue.message == "not an Excel workbook (.xlsx or .xls)"
    stream = io.BytesIO()
    with zipfile.ZipFile(stream, "w") as archive:  # a .docx is a zip too
        archive.writestr("word/document.xml", "<document/>")
    (issue,) = issues_of(stream.getvalue(), filename="说明.xlsx")
    assert issue.message == "not an Excel workbook (.xlsx or .xls)"
    (issue,) = issues_of(workbook([["type", "name", "label"], ["text", "a", "A"]]), filename="巡查表.xlsx")
    assert (issue.column, issue.message) == ("form_id", "the form has no id: give one (the form id box, or --id), "
                                                        "or fill in form_id on the settings sheet")
    assert imported(workbook([["type", "name", "label"], ["text", "a", "A"]]), "巡查表.xlsx", form_id="xuncha")
    (issue,) = issues_of(workbook(None, settings=[["form_id"], ["x"]]))
    assert issue.message == "the workbook has no sheet named 'survey'"


def test_to_yaml_round_trips_and_is_block_style() -> None:
    definition = imported(workbook(FULL_SURVEY, FULL_CHOICES, FULL_SETTINGS))
    text = to_yaml(definition)
    assert "水果调查" in text and "&" not in text and "{" not in text
    assert YAML(typ="safe").load(text) == definition


SCOPE_NAMES = {"a": "a", "b": "b", "s1": "s1", "sm": "sm", "rep": "rep", "t": "t"}
SCOPE_TYPES = {"a": "integer", "b": "decimal", "s1": "single_choice", "sm": "multiple_choice", "rep": "repeat",
               "t": "text"}


@pytest.mark.parametrize(("source", "expected"), [
    ("${a} = 3", "a == 3"),
    ("${a} != 3 and ${b} <= 2.5", "a != 3 and b <= 2.5"),
    ("${a} >= 1 or not(${b} > 2)", "a >= 1 or not b > 2"),
    ("not(${a} = 1) and ${b} = 2", "not a == 1 and b == 2"),
    ("(${a} + 1) * 2", "(a + 1) * 2"),
    ("${a} - (${b} - 1)", "a - (b - 1)"),
    ("${a} div 2 + ${b} mod 3", "a / 2 + b % 3"),
    ("-${a} * 2", "-a * 2"),
    ("selected(${sm}, 'x')", "'x' in sm"),
    ("selected(${s1}, 'x')", "s1 == 'x'"),
    ("selected(${sm}, 2)", "'2' in sm"),
    ("count-selected(${sm}) > 1", "len(sm) > 1"),
    ("string-length(${t}) < 10", "len(t) < 10"),
    ("if(${a} > 1, 'big', 'small')", "('big' if a > 1 else 'small')"),
    ("if(${a} > 1, if(${b} > 1, 1, 2), 3)", "((1 if b > 1 else 2) if a > 1 else 3)"),
    ("${t} = ''", "t is None"),
    ("'' != ${t}", "t is not None"),
    ("today()", "today"),
    ("number(${t}) + int(${b})", "float(t) + int(b)"),
    ("round(${b}, 2)", "round(b, 2)"),
    ("coalesce(${a}, 0)", "coalesce(a, 0)"),
    ("max(${a}, ${b}, 3)", "max(a, b, 3)"),
    ("ceiling(${b})", "ceil(b)"),
    ("concat('No. ', ${a})", "'No. ' + str(a)"),
    ("count(${rep})", "len(rep)"),
    ("true() and ${s1} = \"it's\"", "True and s1 == \"it's\""),
    ("${s1} = 07", "s1 == '7'"),
    ("${a} = .5", "a == 0.5"),
])
def test_translations(source: str, expected: str) -> None:
    assert translate_expression(source, ExpressionScope(SCOPE_NAMES, SCOPE_TYPES)) == (expected, [])


@pytest.mark.parametrize(("source", "mode", "expected"), [
    (". > 0", "constraint", "value > 0"),
    ("selected(., 'x')", "constraint", "'x' in value"),
    ("selected(${sm}, name)", "choice_filter", "choice.value in sm"),
    ("name = 1", "choice_filter", "choice.value == '1'"),
])
def test_translations_with_current_value_and_candidate(source: str, mode: str, expected: str) -> None:
    scope = ExpressionScope(SCOPE_NAMES, SCOPE_TYPES, mode, own="sm")
    assert translate_expression(source, scope) == (expected, [])


@pytest.mark.parametrize(("source", "problem"), [
    ("${a} |", "the expression ends too early"),
    ("${a} | ${b}", "the operator '|' is not supported"),
    ("starts-with(${t}, 'x')", "the function starts-with() has no Fangan equivalent"),
    ("jr:choice-name(${s1}, '${s1}')", "the function jr:choice-name() has no Fangan equivalent"),
    ("max(${a})", "max() over a repeat group is not supported"),
    ("if(${a}, 1)", "if() takes 3 argument(s)"),
    ("a > 1", "bare name 'a' is not supported; refer to fields as ${a}"),
    ("selected(${t}, 'x')", "selected() needs a select_one or select_multiple field first"),
    ("${a} / 2", "'/' is a path in XLSForm, not division (divide with 'div'); paths are not supported"),
    ("${a} > (1", "expected ')' but the expression ends"),
    ("label = 'x'", "bare name 'label' is not supported; refer to fields as ${label}"),
])
def test_untranslatable(source: str, problem: str) -> None:
    translated, problems = translate_expression(source, ExpressionScope(SCOPE_NAMES, SCOPE_TYPES))
    assert (translated, [p.in_language("en") for p in problems]) == (None, [problem])


def test_sanitize_id() -> None:
    assert sanitize_id("Street-Name 2") == "street_name_2"
    assert sanitize_id("2nd visit") == "f_2nd_visit"
    assert sanitize_id("ＡＢＣ") == "abc"
    assert sanitize_id("数量") is None


def test_definitions_invalid_is_what_a_broken_scheme_raises() -> None:
    # Guard for the helper above: a form the schema rejects does fail check_files.
    definition = {"kind": "form", "id": "bad", "name": "Bad", "fields": [{"id": "x", "type": "geotrace"}]}
    with pytest.raises(DefinitionsInvalid):
        check_files(scheme_with(definition))


def test_what_the_scheme_check_refuses_is_left_out_at_its_row() -> None:
    survey = [["type", "name", "label", "trigger", "calculation", "repeat_count", "default"],
              ["text", "a", "A", "${a}", "concat(${a}, 'x')"],
              ["note", "n", "Note"],
              ["text", "b", "B", "${n}", "'x'"],
              ["begin repeat", "r", "R", None, None, "${q}"], ["integer", "q", "Q"], ["end repeat"],
              ["decimal", "d", "D", None, None, None, "nan"],
              ["text", "kept", "Kept"]]
    result = import_xlsform(workbook(survey), "net.xlsx")
    found = {(i.row, i.column): i.message for i in result.dropped}
    assert found == {
        (2, "trigger"): "field 'a' cannot be calculated when it changes itself",
        (4, "trigger"): "'n' is not a field with a value of this row or of the record",
        (5, "repeat_count"): "repeat_count of 'r' reads 'q', a field of its own rows",
        (8, "default"): "default 'nan' is not a number"}
    assert [f["id"] for f in result.definition["fields"]] == ["n", "kept"]
    check_files(scheme_with(result.definition))


def test_a_filter_over_a_chinese_column_and_choices_without_its_value() -> None:
    survey = [["type", "name", "label", "choice_filter"], ["select_one st", "st", "街道"],
              ["select_one co", "co", "社区", "街道=${st}"]]
    choices = [["list_name", "name", "label", "街道", "st-x", "st_x"], ["st", "s1", "东街"],
               ["co", "c1", "东一", "s1"], ["co", "c2", "无街道"]]
    fields = fields_by_id(imported(workbook(survey, choices)))
    assert fields["co"]["choice_filter"] == "choice.column_4 == st"
    assert [c["data"] for c in fields["co"]["choices"]] == [{"column_4": "s1"}, {"column_4": ""}]


def test_a_stray_cell_far_away_and_too_many_rows() -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "survey"
    sheet.append(["type", "name", "label"])
    sheet.append(["text", "a", "A"])
    sheet.cell(row=200_000, column=16_000, value=" ")  # read cell by cell, this would be 3.2 billion cells
    stream = io.BytesIO()
    book.save(stream)
    assert [f["id"] for f in imported(stream.getvalue())["fields"]] == ["a"]
    many = [["type", "name", "label"]] + [["text", f"f{i}", "F"] for i in range(10_001)]
    (issue,) = issues_of(workbook(many))
    assert issue.message == "the sheet has more than 10000 rows"


def test_a_workbook_that_unpacks_too_large_is_refused() -> None:
    stream = io.BytesIO()
    with zipfile.ZipFile(stream, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>")
        archive.writestr("xl/sharedStrings.xml", "a" * (65 * 1024 * 1024))
    (issue,) = issues_of(stream.getvalue())
    assert issue.message == "the workbook unpacks to more than 64 MB"
