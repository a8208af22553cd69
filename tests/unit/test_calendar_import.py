"""Reading a year's holidays and makeup workdays from a table, YAML or an iCalendar file (no database).

The 2027 rows here are test data shaped like a State Council notice, not the official schedule."""

from __future__ import annotations

import io
from datetime import date, datetime
from pathlib import Path

from openpyxl import Workbook

from server.calendar import WorkingCalendar
from server.calendar.importer import read_calendar

TABLE = (Path(__file__).resolve().parents[1] / "support" / "data" / "calendar-2027.csv").read_bytes()


def test_a_csv_table_gives_every_day_of_each_range():
    table = read_calendar(TABLE, "2027.csv")
    assert table.errors == [] and table.years == [2027]
    holidays = [o.day for o in table.overrides() if not o.working]
    assert holidays[:3] == [date(2027, 1, 1), date(2027, 1, 2), date(2027, 1, 3)]
    assert len(holidays) == 3 + 8
    assert {o.day for o in table.overrides() if o.working} == {date(2027, 1, 31), date(2027, 2, 20)}
    assert table.days[date(2027, 2, 8)].name == "春节"


def test_deadlines_on_the_imported_year():
    table = read_calendar(TABLE, "2027.csv")
    cal = WorkingCalendar(table.overrides(), complete_years=table.years)
    assert cal.add_working_days(datetime(2026, 12, 31, 10), 1) == datetime(2027, 1, 4, 10)  # across 元旦
    assert cal.add_working_days(datetime(2027, 2, 4, 10), 1) == datetime(2027, 2, 15, 10)  # across 春节
    assert cal.add_working_days(datetime(2027, 1, 29, 10), 1) == datetime(2027, 1, 31, 10)  # a makeup Sunday
    assert cal.unknown_years(date(2027, 1, 1), date(2027, 12, 31)) == []


def test_yaml_xlsx_and_icalendar_say_the_same():
    yaml = ("holidays:\n  - {name: 元旦, start: 2027-01-01, end: 2027-01-03}\n"
            "  - {name: 春节, start: 2027-02-05, end: 2027-02-12}\n"
            "workdays:\n  - {name: 春节调休, day: 2027-01-31}\n  - {name: 春节调休, day: 2027-02-20}\n")
    book = Workbook()
    sheet = book.active
    sheet.append(["开始", "结束", "类型", "名称"])
    sheet.append([datetime(2027, 1, 1), datetime(2027, 1, 3), "放假", "元旦"])
    sheet.append(["2027-01-31", None, "上班", "春节调休"])
    sheet.append(["2027/2/5", "2027/2/12", "休", "春节"])
    sheet.append(["2027-02-20", "", "补班", "春节调休"])
    buffer = io.BytesIO()
    book.save(buffer)
    ics = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n"
           "BEGIN:VEVENT\r\nUID:a\r\nSUMMARY:元旦\r\nDTSTART;VALUE=DATE:20270101\r\nDTEND;VALUE=DATE:20270104\r\nEND:VEVENT\r\n"
           "BEGIN:VEVENT\r\nUID:b\r\nSUMMARY:春节\r\nDTSTART;VALUE=DATE:20270205\r\nDTEND;VALUE=DATE:20270213\r\nEND:VEVENT\r\n"
           "BEGIN:VEVENT\r\nUID:c\r\nSUMMARY:春节补班\r\nDTSTART;VALUE=DATE:20270131\r\nEND:VEVENT\r\n"
           "BEGIN:VEVENT\r\nUID:d\r\nSUMMARY:春节补班\r\nDTSTART;VALUE=DATE:20270220\r\nEND:VEVENT\r\n"
           "END:VCALENDAR\r\n").encode()
    expected = {(o.day, o.working) for o in read_calendar(TABLE, "2027.csv").overrides()}
    for data, name in ((yaml.encode(), "2027.yaml"), (buffer.getvalue(), "2027.xlsx"), (ics, "2027.ics")):
        table = read_calendar(data, name)
        assert table.errors == [], (name, table.errors)
        assert {(o.day, o.working) for o in table.overrides()} == expected, name


def test_mistakes_name_their_row_and_nothing_is_half_read():
    bad = ("start,end,kind,name\n2027-01-01,2027-01-03,放假,元旦\n2027-13-01,,放假,x\n2027-02-12,2027-02-05,放假,y\n"
           "2027-03-03,,上班,z\n2027-04-01,,开会,w\n2027-01-02,,上班,v\n").encode()
    table = read_calendar(bad, "bad.csv")
    rows = {e.row for e in table.errors}
    assert rows == {3, 4, 5, 6, 7}, table.errors
    assert any("weekday" in e.message for e in table.errors)  # a makeup workday on a Wednesday does nothing
    assert any("both a holiday and a makeup workday" in e.message for e in table.errors)


def test_files_that_are_not_calendars_are_refused_cleanly():
    for data, name in ((b"", "a.csv"), (b"\xff\xfe\x00garbage", "a.csv"), (b"PK\x03\x04broken", "a.xlsx"),
                       (b"BEGIN:VCALENDAR\r\nBROKEN", "a.ics"), (b"a: &x [1]\nb: *x\n", "a.yaml"),
                       (b"date\n" + b"2027-01-01\n" * 10, "a.csv"), (b"x" * (1024 * 1024 + 1), "a.csv"),
                       (b"start\n2027-01-01\n2027-01-01\n", "dup.csv")):
        table = read_calendar(data, name)
        if name == "dup.csv" or name == "a.csv" and data.startswith(b"date"):
            assert table.errors == [] and table.years == [2027]  # the same holiday twice is still one holiday
        else:
            assert table.errors, name
    long = read_calendar(b"start,end\n2027-01-01,2027-03-01\n", "long.csv")
    assert long.errors and long.errors[0].row == 2
