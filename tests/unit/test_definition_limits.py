"""Definition files cannot take the server down: every limit of the loader and of zips, refused quickly."""

from __future__ import annotations

import hashlib
import re
import time
from pathlib import Path

import pytest

from server.core import suggestions
from server.definitions.bundle import (
    MAX_LISTED_ERRORS,
    MAX_SCHEME_BYTES,
    MAX_SCHEME_VALUES,
    check_files,
    library_files,
    read_source,
    read_upload,
    read_zip,
)
from server.definitions.errors import DefinitionsInvalid
from server.definitions.loader import MAX_DEPTH, MAX_FILE_BYTES, MAX_NUMBER, MAX_VALUES, ReadBudget, parse_text
from tests.support import bombs
from tests.support.schemes import MINI_SCHEME

ROOT = Path(__file__).resolve().parents[2]
# Seconds: a guard against a refusal that hangs or goes quadratic (minutes), not a benchmark; generous, so that a
# busy machine (a CI run beside other work) never fails an honest refusal.
QUICK = 10.0


def refused(file: str, text: str) -> list[str]:
    start = time.monotonic()
    doc = parse_text(file, text)
    assert time.monotonic() - start < QUICK
    assert doc.data is None and doc.over_limit
    return [str(e) for e in doc.errors]


def upload_errors(uploads: list[tuple[str, bytes]]) -> list[str]:
    start = time.monotonic()
    with pytest.raises(DefinitionsInvalid) as info:
        read_upload(uploads)
    assert time.monotonic() - start < QUICK
    return [str(e) for e in info.value.errors]


# -- YAML and JSON -------------------------------------------------------------------------------------------------

def test_alias_bomb_stops_at_the_value_budget():
    text = bombs.alias_bomb()
    assert len(text.encode()) < 600
    [error] = refused("lol.yaml", text)
    assert error.startswith("lol.yaml line 7: l4[0]: the alias *l3 makes the file expand to more than "
                            f"{MAX_VALUES:,} values")


def test_an_alias_inside_its_own_anchor_is_refused():
    assert refused("loop.yaml", "kind: form\nloop: &me [1, *me]\n") == [
        "loop.yaml line 2: loop[1]: the alias *me refers to a value that contains it"]


def test_ordinary_aliases_and_merge_keys_still_read():
    doc = parse_text("ok.yaml", "base: &base {min: 0, max: 9}\nqty:\n  <<: *base\n  label: 数量\nother: *base\n"
                                "again: &base 2\nlast: *base\n")
    assert doc.ok
    assert doc.data["qty"] == {"label": "数量", "min": 0, "max": 9} and doc.data["other"] == {"min": 0, "max": 9}
    assert doc.data["last"] == 2  # a reused anchor: the alias takes the latest


@pytest.mark.parametrize(("file", "text", "line"), [
    ("flow.yaml", bombs.deep_yaml(), 3),
    ("block.yaml", "".join("  " * i + f"k{i}:\n" for i in range(100)) + "  " * 100 + "v: 1\n", MAX_DEPTH),
    ("deep.json", "[" * 100_000 + "]" * 100_000, 1),
    ("shallow_for_json.json", '{"a": ' + "[" * 60 + "]" * 60 + "}", 1),
])
def test_deep_nesting_is_refused(file, text, line):
    [error] = refused(file, text)
    assert error.startswith(f"{file} line {line}: ") and error.endswith(f"nested more than {MAX_DEPTH} levels deep")


def test_nesting_up_to_the_limit_reads():
    doc = parse_text("ok.yaml", "a: " + "[" * (MAX_DEPTH - 2) + "]" * (MAX_DEPTH - 2) + "\n")
    assert doc.ok


def test_too_many_values_in_one_file():
    text = "kind: form\nitems: [" + ", ".join(["1"] * (MAX_VALUES + 10)) + "]\n"
    [error] = refused("many.yaml", text)
    assert f"the file holds more than {MAX_VALUES:,} values" in error


def test_the_files_of_one_check_share_a_value_budget():
    budget = ReadBudget(MAX_VALUES + 100)
    half = "items: [" + ", ".join(["1"] * (MAX_VALUES * 2 // 3)) + "]\n"
    assert parse_text("a.yaml", half, budget).ok
    second = parse_text("b.yaml", half, budget)
    assert second.over_limit
    assert f"the scheme's files hold more than {MAX_VALUES + 100:,} values together" in str(second.errors[0])


@pytest.mark.parametrize(("file", "text", "path"), [
    ("big.yaml", bombs.huge_number_yaml(), "version"),
    ("hex.yaml", "kind: form\nsize: 0x" + "f" * 100_000 + "\n", "size"),
    ("long.json", '{"kind": "form", "size": ' + "9" * 100_000 + "}", "size"),
])
def test_a_number_too_long_to_convert_is_refused_before_conversion(file, text, path):
    [error] = refused(file, text)
    assert f": {path}: the number 99999" in error or f": {path}: the number 0xffff" in error
    assert f"numbers must lie between -{MAX_NUMBER} and {MAX_NUMBER}" in error


@pytest.mark.parametrize(("file", "text", "path"), [
    ("a.yaml", f"a: [1, {MAX_NUMBER + 1}]\n", "a[1]"),
    ("b.yaml", "b: 1e400\n", "b"),
    ("c.yaml", "c: .nan\n", "c"),
    ("d.yaml", "d: -.inf\n", "d"),
    ("e.json", '{"e": NaN}', "e"),
    ("f.json", '{"f": {"g": -Infinity}}', "f.g"),
    ("g.json", '{"g": 1e999}', "g"),
])
def test_numbers_out_of_range_are_errors_at_their_path(file, text, path):
    doc = parse_text(file, text)
    [error] = doc.errors
    assert error.path == path and error.line == 1 and "is out of range" in error.message


def test_numbers_at_the_limits_read():
    doc = parse_text("ok.yaml", f"a: {MAX_NUMBER}\nb: -{MAX_NUMBER}\nc: 0.000001\nd: 1.5e10\n")
    assert doc.ok and doc.data["a"] == MAX_NUMBER


def test_a_value_python_cannot_hold_is_a_yaml_error_at_its_line():
    doc = parse_text("dates.yaml", "kind: form\nopens: 2026-13-45\n")
    [error] = doc.errors
    assert error.line == 2 and "YAML syntax error: cannot read '2026-13-45'" in error.message


def test_a_file_over_the_size_limit_is_not_parsed():
    [error] = refused("large.yaml", "# " + "x" * MAX_FILE_BYTES + "\n")
    assert error == "large.yaml line 1: the file is larger than 512 KB"


def test_a_utf8_byte_order_mark_is_accepted():
    assert parse_text("bom.json", '\ufeff{"kind": "form"}').data == {"kind": "form"}
    assert read_upload([("bom.yaml", b"\xef\xbb\xbfkind: form\n")]) == {"bom.yaml": "kind: form\n"}


# -- text encodings ------------------------------------------------------------------------------------------------

def test_a_gbk_file_is_refused_naming_it_and_saying_to_save_as_utf8():
    [error] = upload_errors([("board.yaml", bombs.gbk_bytes())])
    assert error == ("board.yaml line 3: the file is not UTF-8 text (it looks like GBK): "
                     "save it as UTF-8 and try again")


def test_other_bytes_are_refused_too_and_every_bad_file_is_named():
    errors = upload_errors([("a.yaml", b"kind: form\n\xff\xfe\n"), ("ok.yaml", b"kind: form\n"),
                            ("b.json", "{}".encode("utf-16"))])
    assert errors == ["a.yaml line 2: the file is not UTF-8 text: save it as UTF-8 and try again",
                      "b.json line 1: the file is not UTF-8 text: save it as UTF-8 and try again"]


def test_a_gbk_file_on_disk(tmp_path):
    (tmp_path / "scheme.yaml").write_text(MINI_SCHEME)
    (tmp_path / "board.yaml").write_bytes(bombs.gbk_bytes())
    with pytest.raises(DefinitionsInvalid) as info:
        read_source(tmp_path)
    [error] = info.value.errors
    assert error.file.endswith("board.yaml") and "save it as UTF-8" in error.message
    with pytest.raises(DefinitionsInvalid):
        read_source(tmp_path / "board.yaml")


def test_a_large_file_on_disk_is_not_read_whole(tmp_path):
    path = tmp_path / "huge.yaml"
    with path.open("wb") as stream:
        stream.truncate(1024 * 1024 * 1024)  # a sparse gigabyte
    start = time.monotonic()
    with pytest.raises(DefinitionsInvalid) as info:
        read_source(path)
    assert time.monotonic() - start < QUICK
    assert "larger than 512 KB" in str(info.value)


# -- zips ------------------------------------------------------------------------------------------------------------

def test_a_malformed_zip_is_named():
    for data in (bombs.malformed_zip(), b"PK\x03\x04 not really", b"nothing like a zip"):
        assert upload_errors([("lidu.zip", data)]) == [
            "lidu.zip line 1: this is not a zip file, or the zip is damaged"]


def test_a_zip_bomb_is_refused_from_its_directory():
    data = bombs.zip_bomb()
    assert len(data) < 200_000
    assert upload_errors([("lidu.zip", data)]) == ["lidu.zip line 1: mini/scheme.yaml is larger than 512 KB "
                                                   "once unpacked"]


def test_a_zip_whose_directory_lies_stops_while_unpacking():
    assert upload_errors([("lying.zip", bombs.lying_zip_bomb())]) == [
        "lying.zip line 1: the zip is damaged: scheme.yaml cannot be unpacked"]


def test_a_zip_of_too_many_entries_is_refused_before_they_are_parsed():
    assert upload_errors([("many.zip", bombs.many_entries_zip())]) == [
        "many.zip line 1: the zip holds more than 1,000 entries"]


def test_a_member_compressed_too_far_is_refused():
    data = bombs.zip_of({"scheme.yaml": MINI_SCHEME + " " * (400 * 1024)})
    assert upload_errors([("x.zip", data)]) == [
        "x.zip line 1: scheme.yaml is compressed more than 100 times: the zip looks like a zip bomb"]


def test_members_that_add_up_past_the_limit_are_refused():
    noise = "".join(hashlib.sha256(str(i).encode()).hexdigest() for i in range(300 * 1024 // 64))
    data = bombs.zip_of({f"f{i}.yaml": "# " + noise for i in range(4)})
    assert upload_errors([("x.zip", data)]) == ["x.zip line 1: the files in the zip add up to more than 1 MB once "
                                                "unpacked"]


def test_an_encrypted_member_is_named():
    data = bytearray(bombs.zip_of({"scheme.yaml": MINI_SCHEME}))
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.find(signature)
        data[at + offset] |= 0x1
    assert upload_errors([("x.zip", bytes(data))]) == [
        "x.zip line 1: scheme.yaml is encrypted: zip the files without a password"]


def test_unsafe_paths_and_other_file_types_are_named():
    assert upload_errors([("x.zip", bombs.zip_of({"../evil.yaml": "kind: form"}))]) == [
        "x.zip line 1: unsafe path in the zip: ../evil.yaml"]
    assert upload_errors([("evil.exe", b"MZ")]) == ["evil.exe line 1: Only YAML, JSON or zip files can be uploaded."]


def test_a_zip_bomb_inside_the_zip_is_never_opened():
    data = bombs.zip_of({"mini/scheme.yaml": MINI_SCHEME, "mini/inner.zip": bombs.zip_bomb()})
    assert list(read_zip(data)) == ["mini/scheme.yaml"]


# -- a whole check ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("bomb", ["alias", "deep", "number"])
def test_a_bomb_among_good_files_is_refused_before_the_library_is_read(bomb):
    text = {"alias": bombs.alias_bomb(), "deep": bombs.deep_yaml(), "number": bombs.huge_number_yaml()}[bomb]
    library = library_files(ROOT)
    start = time.monotonic()
    with pytest.raises(DefinitionsInvalid) as info:
        check_files({"mini/scheme.yaml": MINI_SCHEME, "mini/bomb.yaml": text}, library, themes=())
    assert time.monotonic() - start < QUICK
    assert [e.file for e in info.value.errors] == ["mini/bomb.yaml"]


def test_the_files_of_a_check_are_bounded_together():
    files = {f"f{i}.yaml": "# " + "x" * (MAX_SCHEME_BYTES // 3) for i in range(4)}
    with pytest.raises(DefinitionsInvalid, match="the scheme's files add up to more than 1 MB"):
        check_files(files, {}, themes=())
    assert MAX_SCHEME_VALUES > MAX_VALUES


def test_a_flood_of_misspelt_names_is_checked_quickly_and_the_list_is_capped():
    roles = "".join(f"  - {{id: role_number_{i}, name: r, scope: district, capabilities: [org.view]}}\n"
                    for i in range(150))
    tiers = "".join(f"  - {{id: t{i}, name: t, role: role_numbr_{i}}}\n" for i in range(1100))
    scheme = MINI_SCHEME.replace("roles:\n", "roles:\n" + roles).replace("tiers:\n", "tiers:\n" + tiers)
    start = time.monotonic()
    with pytest.raises(DefinitionsInvalid) as info:
        check_files({"s.yaml": scheme}, {}, themes=())
    assert time.monotonic() - start < 5 * QUICK  # a safety check; the assertions below show the bound at work
    errors = info.value.errors
    assert len(errors) == MAX_LISTED_ERRORS + 1
    assert "(did you mean 'role_number_0'?)" in errors[0].message  # the first ones still suggest
    assert not any("did you mean" in e.message for e in errors[-100:-1])  # then the comparisons ran out
    assert re.fullmatch(r"1\d\d more errors are not listed: fix these first", errors[-1].message)


def test_suggestions_spend_a_bound():
    assert suggestions.close_matches("rol", ["role", "tier"]) == ["role"]
    with suggestions.bounded(3):
        assert suggestions.affordable(3)
        assert suggestions.close_matches("rol", ["role", "tier"]) == ["role"]
        assert not suggestions.affordable(2)
        assert suggestions.close_matches("rol", ["role", "tier"]) == []
        assert suggestions.close_matches("rol", ["role"]) == ["role"]
    assert suggestions.close_matches("rol", ["role", "tier"]) == ["role"]  # outside: unbounded
