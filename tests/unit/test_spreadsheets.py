"""The one writer of XLSX and CSV: formulas neutralised, XML-illegal characters dropped, sheet titles Excel
accepts. Pure, no database."""

from __future__ import annotations

import csv
import datetime as dt
import io
import xml.etree.ElementTree as ET
import zipfile
from decimal import Decimal

import openpyxl
import pytest
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from server.core.spreadsheets import (
    FORMULA_STARTS,
    MAX_CELL,
    neutralise,
    restore,
    sheet_title,
    write_csv,
    write_xlsx,
    xml_text,
)

HOSTILE = ['=HYPERLINK("http://x","点我")', "+1", "-2+3", "@SUM(A1:A2)", "\t=1", "\r=1", "\x07=1+1", "石\x1b龙"]


def _book(data: bytes) -> openpyxl.Workbook:
    return openpyxl.load_workbook(io.BytesIO(data))


def _csv(data: bytes) -> list[list[str]]:
    assert data.startswith("\ufeff".encode())  # Excel reads Chinese CSV as UTF-8 only with it
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


@pytest.mark.parametrize(("value", "expected"), [
    ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'), ("+1", "'+1"), ("-2+3", "'-2+3"),
    ("@SUM(1)", "'@SUM(1)"), ("\t=1", "'\t=1"), ("\r=1", "'\r=1"),
    ("\x07=1", "'=1"),  # cleaned first, so the character hid nothing
    ("'=1", "''=1"),  # an apostrophe already there is kept through an import
    ("石龙", "石龙"), ("a=b", "a=b"), ("'quoted'", "'quoted'"), ("", ""),
    (-5, -5), (-2.5, -2.5), (None, None), (dt.date(2026, 3, 15), dt.date(2026, 3, 15)),
])
def test_neutralise(value, expected):
    assert neutralise(value) == expected


@pytest.mark.parametrize("text", [*HOSTILE, "'=1", "''+2", "'", "''", "'plain", "plain", "", "-"])
def test_restore_undoes_neutralise(text):
    assert restore(neutralise(xml_text(text))) == xml_text(text)


def test_xml_text_drops_what_xml_cannot_hold_and_keeps_the_rest():
    every_illegal = "".join(chr(c) for c in range(0x20) if chr(c) not in "\t\n\r") + "\ufffe\uffff\ud800"
    assert xml_text("a" + every_illegal + "b") == "ab"
    assert xml_text("一\t二\n三\r四 ü €") == "一\t二\n三\r四 ü €"
    assert not ILLEGAL_CHARACTERS_RE.search(xml_text("".join(chr(c) for c in range(0x100))))


@pytest.mark.parametrize(("name", "taken", "expected"), [
    ("a/b:c*?[x]", (), "a_b_c___x_"),
    ("巡查日志", (), "巡查日志"),
    ("x" * 40, (), "x" * 31),
    ("'quoted'", (), "quoted"),
    ("'", (), "Sheet"),
    ("", (), "Sheet"),
    ("\x07", (), "Sheet"),
    ("units", ("UNITS",), "units (2)"),
    ("units", ("units", "units (2)"), "units (3)"),
    ("y" * 31, ("Y" * 31,), "y" * 27 + " (2)"),
    ("History", (), "History (2)"),  # Excel keeps the name
])
def test_sheet_title(name, taken, expected):
    title = sheet_title(name, taken)
    assert title == expected and len(title) <= 31


def test_workbook_has_no_formula_and_keeps_types():
    data = write_xlsx({"a/b:c*?[x]": [["=header", *HOSTILE], [1, -2, -2.5, Decimal("1.5"), dt.date(2026, 3, 15),
                                                               dt.datetime(2026, 3, 15, 9, 30), True, None,
                                                               float("nan"), "#N/A", {"a": 1}]],
                       "A/B:C*?[X]": [["second"]], "History": []})
    book = _book(data)
    assert book.sheetnames == ["a_b_c___x_", "A_B_C___X_ (2)", "History (2)"]
    sheet = book.worksheets[0]
    texts = [c.value for c in sheet[1]][:len(HOSTILE) + 1]
    # XML reads a carriage return as a line feed: still no formula, still the text
    assert texts == ["'=header", *(neutralise(v).replace("\r", "\n") for v in HOSTILE)]
    assert texts[-1] == "石龙" and texts[-2] == "'=1+1"
    numbers = [c.value for c in sheet[2]]
    assert numbers[:8] == [1, -2, -2.5, 1.5, dt.datetime(2026, 3, 15), dt.datetime(2026, 3, 15, 9, 30), True, None]
    assert numbers[8:] == ["nan", "#N/A", "{'a': 1}"]
    assert sheet.cell(2, 5).number_format == "yyyy-mm-dd"
    for row in sheet.iter_rows():
        for cell in row:
            assert cell.data_type != "f"
            assert not isinstance(cell.value, str) or cell.value[:1] not in FORMULA_STARTS


def test_a_long_text_is_cut_to_what_excel_holds():
    sheet = _book(write_xlsx({"s": [["字" * (MAX_CELL + 10)]]})).active
    assert len(sheet.cell(1, 1).value) == MAX_CELL


def test_an_empty_workbook_still_opens():
    assert _book(write_xlsx({})).sheetnames == ["Sheet"]


def test_workbook_xml_parses_with_every_illegal_character():
    data = write_xlsx({"s": [["a\x00b\x0bc\ufffed\uffff"]]})
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for name in archive.namelist():
            if name.endswith(".xml"):
                ET.fromstring(archive.read(name))  # noqa: S314 - our own output
    assert _book(data).active.cell(1, 1).value == "abcd"


def test_csv_neutralises_texts_not_numbers():
    rows = _csv(write_csv([["头", "=header"], HOSTILE, [-2, -2.5, 3, None, dt.date(2026, 3, 15), float("-inf")]]))
    assert rows[0] == ["头", "'=header"]
    assert rows[1] == [neutralise(v) for v in HOSTILE]
    assert rows[2] == ["-2", "-2.5", "3", "", "2026-03-15", "'-inf"]
