"""A corpus of XLSForm workbooks, written from the XLSForm specification (xlsform.org) with openpyxl and xlwt,
each imported by Fangan and checked against what pyxform, the reference converter, makes of the same bytes:
every question pyxform keeps is in the definition with the same type, labels in every language, hints,
choices (with their extra columns), logic, defaults, repeat counts and triggers — or it is named among the rows
left out, with the reason. The definitions must then pass the scheme checks, and the logic must behave as it
does in ODK (cascading filters, regex constraints, or_other, repeat counts)."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

import pytest
import xlwt
from pyxform.xls2xform import convert

from server.definitions.bundle import check_files
from server.expressions import compile_expression
from server.forms.engine import evaluate, form_spec
from server.forms.xlsform import XlsformError, import_xlsform, sanitize_id
from tests.unit.test_xlsform import fields_by_id, scheme_with, workbook

Rows = list[list[Any]]


@dataclass
class Book:
    """One workbook of the corpus and what Fangan must leave out of it (question name → words of the reason)."""

    survey: Rows
    choices: Rows | None = None
    settings: Rows | None = None
    xls: bool = False
    attachments: dict[str, bytes] = field(default_factory=dict)
    dropped: dict[str, str] = field(default_factory=dict)
    languages: dict[str, str] = field(default_factory=dict)  # pyxform's language name → Fangan's code
    dropped_columns: list[str] = field(default_factory=list)  # columns left out (a language Fangan cannot name)

    def data(self) -> bytes:
        return xls_workbook(self.survey, self.choices, self.settings) if self.xls else workbook(
            self.survey, self.choices, self.settings)


def xls_workbook(survey: Rows, choices: Rows | None = None, settings: Rows | None = None) -> bytes:
    """An Excel 97–2003 .xls with the given sheets; dates and times are written as Excel date cells."""
    book = xlwt.Workbook(encoding="utf-8")
    styles = {datetime: xlwt.easyxf(num_format_str="yyyy-mm-dd hh:mm"), date: xlwt.easyxf(num_format_str="yyyy-mm-dd"),
              time: xlwt.easyxf(num_format_str="hh:mm")}
    for title, rows in (("survey", survey), ("choices", choices), ("settings", settings)):
        if rows is None:
            continue
        sheet = book.add_sheet(title)
        for r, values in enumerate(rows):
            for c, value in enumerate(values):
                if value is None:
                    continue
                style = styles.get(type(value))
                sheet.write(r, c, value, style) if style else sheet.write(r, c, value)
    stream = io.BytesIO()
    book.save(stream)
    return stream.getvalue()


ZH_EN = {"中文 (zh)": "zh", "English (en)": "en"}
STREETS = [["list_name", "name", "label::中文 (zh)", "label::English (en)", "street"],
           ["street", "dj", "东街街道", "East Street", None], ["street", "xj", "西街街道", "West Street", None],
           ["community", "dj1", "东一社区", "East One", "dj"], ["community", "dj2", "东二社区", "East Two", "dj"],
           ["community", "xj1", "西一社区", "West One", "xj"]]
VILLAGES_CSV = "name,label,zone\nv1,上村,north\nv2,下村,south\nv3,中村,north\n".encode("gb18030")

CORPUS: dict[str, Book] = {
    "question_types": Book([
        ["type", "name", "label", "hint", "appearance", "calculation"],
        ["text", "shop", "Shop name", "As on the sign"],
        ["string", "owner", "Owner"],
        ["text", "story", "What happened", None, "multiline"],
        ["integer", "people", "People"], ["int", "floors", "Floors"], ["decimal", "area", "Area (m²)"],
        ["date", "found_on", "Date"], ["time", "found_at", "Time"], ["dateTime", "seen", "Seen"],
        ["geopoint", "where", "Where"], ["gps", "where2", "Where (old alias)"],
        ["image", "photo", "Photo"], ["file", "scan", "Scanned letter"],
        ["note", "thanks", "Thank you"], ["acknowledge", "agree", "I confirm"],
        ["calculate", "density", None, None, None, "${people} div ${area}"],
    ]),
    "groups_and_repeats": Book([
        ["type", "name", "label::中文 (zh)", "label::English (en)", "repeat_count", "relevant"],
        ["integer", "households", "户数", "Households"],
        ["begin group", "address", "地址", "Address"],
        ["text", "road", "道路", "Road"],
        ["begin group", "door_group", "门牌", "Door"], ["text", "door", "门牌号", "Number"], ["end group"],
        ["end group"],
        ["begin repeat", "household", "住户", "Household", "${households}"],
        ["text", "head", "户主", "Head"],
        ["integer", "members", "人数", "Members"],
        ["begin_repeat", "member", "成员", "Member", "${members}"], ["text", "member_name", "姓名", "Name"],
        ["end_repeat"],
        ["end repeat"],
        ["begin repeat", "visits", "走访", "Visits", 3], ["date", "visit_day", "日期", "Day"], ["end repeat"],
        ["begin repeat", "extra", "补充", "More", None, "${households} > 2"], ["text", "remark", "说明", "Remark"],
        ["end repeat"],
    ], languages=ZH_EN),
    "cascading_selects": Book([
        ["type", "name", "label::中文 (zh)", "label::English (en)", "choice_filter", "required"],
        ["select_one street", "street", "街道", "Street", None, "yes"],
        ["select_one community", "community", "社区", "Community", "street=${street}", "yes"],
        ["select_multiple community", "also", "其他社区", "Other communities",
         "street=${street} and name != ${community}"],
    ], STREETS, [["form_title", "form_id", "default_language"], ["街道社区", "streets", "中文 (zh)"]], languages=ZH_EN),
    "regex_and_constraints": Book([
        ["type", "name", "label", "constraint", "constraint_message", "required", "required_message"],
        ["text", "phone", "Phone", "regex(., '^1[3-9][0-9]{9}$')", "An 11-digit mobile number", "yes", "Needed"],
        ["text", "plate", "Plate", "regex(., '^[A-Z][A-Z0-9]{5,6}$') or . = 'none'", "A plate or none"],
        ["integer", "age", "Age", ". >= 0 and . <= 120", "0 to 120"],
        ["text", "email", "Email", "regex(., '[^@ ]+@[^@ ]+')", "An e-mail address", "${age} >= 18"],
    ]),
    "or_other": Book([
        ["type", "name", "label"],
        ["select_one problem or_other", "problem", "Problem"],
        ["select_multiple problem or_other", "also", "Also"],
        ["text", "why", "Why"],
    ], [["list_name", "name", "label"], ["problem", "litter", "Litter"], ["problem", "parking", "Parking"]]),
    "select_from_file": Book([
        ["type", "name", "label", "parameters", "choice_filter"],
        ["select_one_from_file villages.csv", "village", "Village"],
        ["select_multiple_from_file villages.csv", "nearby", "Nearby", None, "zone = 'north'"],
        ["select_one_from_file shops.csv", "shop", "Shop", "value=code label=title"],
        ["select_one_from_file roads.geojson", "road", "Road"],
        ["select_one_from_file missing.csv", "lost", "Lost"],
    ], attachments={"villages.csv": VILLAGES_CSV, "shops.csv": "code,title\ns1,一号店\ns2,二号店\n".encode()},
        dropped={"road": "only CSV files can be read", "lost": "the file 'missing.csv' is not attached"}),
    "triggers": Book([
        ["type", "name", "label", "calculation", "trigger", "read_only"],
        ["text", "problem", "Problem"],
        ["dateTime", "seen_at", "Seen at", "now()", "${problem}", "yes"],
        ["select_one shop", "shop", "Shop"],
        ["text", "contact", "Contact", "concat(${shop}, ' manager')", "${shop}"],
        ["text", "both", "Both", "concat(${problem}, ${shop})", "${problem}, ${shop}"],
        ["text", "cleared", "Cleared", None, "${problem}"],
    ], [["list_name", "name", "label"], ["shop", "a", "A"], ["shop", "b", "B"]],
        dropped={"cleared": "a trigger without a calculation"}),
    "more_languages": Book([
        ["type", "name", "label::中文 (zh)", "label::English (en)", "label::Français (fr)", "label::Tibetan",
         "hint::Français (fr)", "label::Local dialect"],
        ["text", "name_of_road", "路名", "Road name", "Nom de la rue", "ལམ་མིང་།", "Comme sur le panneau", "qIt"],
        ["select_one yn", "paved", "已铺装", "Paved", "Pavée", "བཟོས།"],
    ], [["list_name", "name", "label::中文 (zh)", "label::English (en)", "label::Français (fr)", "label::Tibetan"],
        ["yn", "yes", "是", "Yes", "Oui", "ཡིན།"], ["yn", "no", "否", "No", "Non", "མིན།"]],
        languages={**ZH_EN, "Français (fr)": "fr", "Tibetan": "bo"}, dropped_columns=["label::Local dialect"]),
    "notes_and_comments": Book([
        ["type", "name", "label", "hint", "relevant"],
        ["note", None, "Please read before you start"],
        [None, None, None, "— a comment row: the section below is for inspectors —"],
        ["integer", "score", "Score"],
        ["note", None, "High score", None, "${score} > 5"],
        [None, None, None, None, None],
        ["text", "remark", "Remark"],
    ]),
    "excel_cells": Book([
        ["type", "name", "label", "default"],
        ["time", "start_time", "Start", time(9, 30)],
        ["date", "start_date", "Day", date(2026, 12, 1)],
        ["dateTime", "start_moment", "Moment", datetime(2026, 12, 1, 8, 15)],
        ["time", "bad_time", "Bad", "half past nine"],
        ["integer", "n", "N", 3],
        ["date", "today_field", "Today", "today()"],
    ], dropped={"bad_time": "'half past nine' is not a time of day"}),
    "xls_cascading": Book([
        ["type", "name", "label::中文 (zh)", "label::English (en)", "choice_filter", "default"],
        ["select_one street", "street", "街道", "Street", None, "dj"],
        ["select_one community", "community", "社区", "Community", "street=${street}"],
        ["time", "at", "时间", "Time", None, time(14, 5)],
        ["date", "on", "日期", "Date", None, date(2027, 1, 4)],
    ], STREETS, [["form_title", "form_id"], ["旧格式", "old_format"]], xls=True, languages=ZH_EN),
    "metadata_and_left_out": Book([
        ["type", "name", "label", "relevant", "calculation"],
        ["start", "started"], ["end", "ended"], ["today", "day"], ["deviceid", "device"], ["username", "who"],
        ["text", "road", "Road"],
        ["geotrace", "route", "Route"],
        ["text", "route_note", "About the route", "${route} != ''"],
        ["text", "copy", "Copy", None, "${last-saved#road}"],
        ["calculate", "first", None, None, "indexed-repeat(${road}, ${road}, 1)"],
        ["text", "late", "Late", "${day} > '2026-01-01'"],
        ["text", "by", "By", None, "${who}"],
        ["text", "dev", "Device", None, "${device}"],
    ], dropped={"route": "type 'geotrace' is not supported",
                "route_note": "${route} cannot be used: survey row 8 is left out",
                "copy": "ODK Collect feature", "first": "indexed-repeat() has no Fangan equivalent",
                "dev": "deviceid metadata"}),
}

METADATA = {"start", "end", "today", "deviceid", "username"}


def pyxform_of(book: Book) -> dict:
    return convert(book.data(), file_type=".xls" if book.xls else ".xlsx", warnings=[])._pyxform


def walk_pyxform(children: list[dict]) -> list[dict]:
    """pyxform's questions, groups and repeats in order (its own meta group and preloaded metadata aside)."""
    out = []
    for child in children:
        if child.get("name") == "meta" or child["type"] in METADATA:
            continue
        out.append(child)
        out.extend(walk_pyxform(child.get("children", [])))
    return out


def fangan_id(name: str) -> str:
    match = re.fullmatch(r"generated_(?:note|group)_name_(\d+)", name)
    if match:
        return f"note_{match.group(1)}" if "note" in name else f"group_{match.group(1)}"
    return sanitize_id(name) or ""


def expected_text(label: Any, languages: dict[str, str]) -> Any:
    """pyxform's text ({language name: text} or text) as Fangan writes it ({code: text} or text)."""
    if isinstance(label, dict):
        known = {languages[name]: text for name, text in label.items() if name in languages and text}
        return known or None
    return label


# pyxform type → the Fangan types it may become (calculate: by what its result is; text: by its appearance)
TYPES = {"text": {"text", "textarea"}, "string": {"text", "textarea"}, "int": {"integer"}, "gps": {"location"},
         "photo": {"photo"}, "integer": {"integer"}, "decimal": {"decimal"}, "date": {"date"},
         "time": {"time"}, "dateTime": {"datetime"}, "geopoint": {"location"}, "image": {"photo"}, "file": {"file"},
         "note": {"note"}, "acknowledge": {"single_choice"}, "select one": {"single_choice"},
         "select all that apply": {"multiple_choice"}, "calculate": {"integer", "decimal", "text"},
         "group": {"section"}, "repeat": {"repeat"}}


def csv_choices(data: bytes, value: str = "name") -> list[str]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("gb18030")
    lines = [line.split(",") for line in text.strip().splitlines()]
    column = lines[0].index(value)
    return [line[column] for line in lines[1:]]


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_workbook_matches_pyxform(name: str) -> None:
    book = CORPUS[name]
    reference = pyxform_of(book)  # pyxform accepts every workbook of the corpus
    result = import_xlsform(book.data(), f"{name}.{'xls' if book.xls else 'xlsx'}", attachments=book.attachments)
    fields = fields_by_id(result.definition)
    rows = {str(r[book.survey[0].index("name")]): n for n, r in enumerate(book.survey[1:], start=2)
            if r and len(r) > 1 and r[1]}

    # What is left out is exactly what the corpus says, each named by its sheet, row and reason.
    left_out = {issue.row: issue for issue in result.dropped if issue.sheet == "survey" and issue.row != 1}
    assert sorted(i.column for i in result.dropped if i.row == 1) == sorted(book.dropped_columns)
    assert set(left_out) == {rows[q] for q in book.dropped}, [str(i) for i in result.dropped]
    for question, reason in book.dropped.items():
        assert reason in left_out[rows[question]].message
        assert fangan_id(question) not in fields
    assert [i for i in result.dropped if i.sheet != "survey"] == []

    for question in walk_pyxform(reference["children"]):
        ident = fangan_id(question["name"])
        if question["name"] in book.dropped:
            continue
        if question["name"] not in rows and not question["name"].startswith("generated_"):
            if question["name"].endswith("_other"):  # or_other's text field: pyxform's label is English only
                assert fields[ident]["label"] == {"zh": "请注明其他", "en": "Please specify"}
                assert "visible_if" in fields[ident] and "relevant" in question["bind"]
            else:  # the count of a repeat with a literal repeat_count: Fangan keeps it as the repeat's own
                assert question["type"] == "calculate" and question["name"].endswith("_count")
            continue
        assert ident in fields, f"{question['name']} is missing"
        ours = fields[ident]
        assert ours["type"] in TYPES[question["type"]], (question["name"], ours["type"])
        assert ours.get("label") == expected_text(question.get("label"), book.languages), question["name"]
        assert ours.get("hint") == expected_text(question.get("hint"), book.languages), question["name"]
        bind, control = question.get("bind", {}), question.get("control", {})
        assert ("visible_if" in ours) == ("relevant" in bind), question["name"]
        assert ("constraints" in ours) == ("constraint" in bind), question["name"]
        assert ("calculate" in ours) == ("calculate" in bind), question["name"]
        if bind.get("required") in ("true()", "yes"):
            assert ours.get("required") is True
        elif bind.get("required"):
            assert "required_if" in ours
        if "jr:count" in control:  # a field's name, or pyxform's own calculate holding a literal count
            count = str(control["jr:count"])
            helper = next((q["bind"]["calculate"] for q in walk_pyxform(reference["children"])
                           if f"${{{q['name']}}}" == count and q["name"] not in rows), None)
            assert ours["repeat_count"] == (helper or re.sub(r"\$\{(\w+)\}", lambda m: fangan_id(m.group(1)), count))
        if question.get("trigger"):
            assert ours["calculate_on"] == [fangan_id(t) for t in question["trigger"]]
        if "default" in question:
            assert "default" in ours or "default_from" in ours
        if question.get("choices"):
            assert [c["value"] for c in ours["choices"]] == [c["name"] for c in question["choices"]]
            for theirs, mine in zip(question["choices"], ours["choices"], strict=True):
                if theirs["name"] == "other" and question["name"] + "_other" in fields:  # or_other: said in both
                    assert mine["label"] == {"zh": "其他", "en": "Other"}
                else:
                    assert mine["label"] in (expected_text(theirs.get("label"), book.languages), theirs["name"])
                read = {k: v for k, v in theirs.items() if k not in ("name", "label")
                        and f"choice.{k}" in ours.get("choice_filter", "")}
                assert mine.get("data", {}) == read
        elif question.get("itemset", "").endswith(".csv"):
            params = question.get("parameters") or {}
            values = csv_choices(book.attachments[question["itemset"]], params.get("value", "name"))
            assert [c["value"] for c in ours["choices"]] == values

    # The definition is a valid Fangan form.
    check_files(scheme_with(result.definition))


def test_cascading_filter_behaves_as_in_odk() -> None:
    book = CORPUS["cascading_selects"]
    fields = fields_by_id(import_xlsform(book.data(), "streets.xlsx").definition)
    community = fields["community"]
    condition = compile_expression(community["choice_filter"])
    offered = [c["value"] for c in community["choices"]
               if condition.evaluate({"street": "dj", "choice": {"value": c["value"], **c.get("data", {})}})]
    assert offered == ["dj1", "dj2"]
    also = compile_expression(fields["also"]["choice_filter"])
    offered = [c["value"] for c in fields["also"]["choices"]
               if also.evaluate({"street": "dj", "community": "dj1",
                                 "choice": {"value": c["value"], **c.get("data", {})}})]
    assert offered == ["dj2"]


def test_regex_constraints_behave_as_in_odk() -> None:
    definition = import_xlsform(CORPUS["regex_and_constraints"].data(), "checks.xlsx").definition
    spec = form_spec(definition)
    ok = evaluate(spec, {"phone": "13812345678", "plate": "none", "age": 30, "email": "a@b.cn"}, {})
    assert ok.errors == {}
    wrong = evaluate(spec, {"phone": "1381234567", "plate": "京A12345", "age": 30, "email": "nobody"}, {})
    assert set(wrong.errors) == {"phone", "plate", "email"}
    assert wrong.errors["phone"] == ["An 11-digit mobile number"]
    assert "email" in evaluate(spec, {"phone": "13812345678", "age": 30}, {}).required
    assert "email" not in evaluate(spec, {"phone": "13812345678", "age": 12}, {}).required


def test_or_other_behaves_as_in_odk() -> None:
    definition = import_xlsform(CORPUS["or_other"].data(), "other.xlsx").definition
    spec = form_spec(definition)
    assert "problem_other" in evaluate(spec, {"problem": "litter"}, {}).hidden
    assert "problem_other" not in evaluate(spec, {"problem": "other"}, {}).hidden
    assert "also_other" not in evaluate(spec, {"also": ["parking", "other"]}, {}).hidden


def test_repeat_counts_and_excel_cells_behave() -> None:
    fields = fields_by_id(import_xlsform(CORPUS["groups_and_repeats"].data(), "g.xlsx").definition)
    assert fields["household"]["repeat_count"] == "households"
    assert fields["member"]["repeat_count"] == "members"
    assert fields["visits"]["repeat_count"] == "3"
    excel = fields_by_id(import_xlsform(CORPUS["excel_cells"].data(), "e.xlsx").definition)
    assert excel["start_time"]["default"] == "09:30"
    assert excel["start_date"]["default"] == "2026-12-01"
    assert excel["start_moment"]["default"] == "2026-12-01T08:15"
    assert excel["today_field"]["default_from"] == "today"
    old = fields_by_id(import_xlsform(CORPUS["xls_cascading"].data(), "old.xls").definition)
    assert (old["at"]["default"], old["on"]["default"], old["street"]["default"]) == ("14:05", "2027-01-04", "dj")


def test_strict_refuses_what_would_be_left_out_and_names_it() -> None:
    book = CORPUS["metadata_and_left_out"]
    with pytest.raises(XlsformError) as caught:
        import_xlsform(book.data(), "left.xlsx", strict=True)
    assert sorted(i.row for i in caught.value.issues) == [8, 9, 10, 11, 14]
    assert "survey row 8 (route), column type: type 'geotrace' is not supported" in str(caught.value)
    assert caught.value.strict


def test_messages_are_said_in_chinese() -> None:
    result = import_xlsform(CORPUS["metadata_and_left_out"].data(), "left.xlsx")
    said = {issue.row: issue.in_language("zh") for issue in result.dropped}
    assert said[8].startswith("survey 表第 8 行（route），type 列：")
    assert "不支持" in said[8]
    assert "ODK Collect" in said[10] and "上次保存" in said[10]
    assert all(not re.search(r"\b(is|are|the|not)\b", text) for text in said.values()), said
    notes = [note.in_language("zh") for note in result.notes]
    assert any("deviceid" in note and "跳过" in note for note in notes)
