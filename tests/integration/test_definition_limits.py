"""Hostile definition files on the upload page and in `fangan scheme validate`: a clear error, within a second."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask_babel import gettext
from markupsafe import escape

from server import create_app
from server.cli import main
from server.definitions.models import SchemeVersion
from server.extensions import db
from tests.conftest import csrf_token
from tests.support import bombs
from tests.support.factories import login, make_user
from tests.support.schemes import MINI_SCHEME

QUICK = 1.0  # seconds: a generous safety check that the refusal is immediate, not a benchmark
TOO_MANY = "the alias *%(alias)s makes the file expand to more than %(num)s values: write the values out, or use " \
           "fewer aliases"
TOO_DEEP = "nested more than %(num)s levels deep"
OUT_OF_RANGE = "the number %(value)s is out of range: numbers must lie between -%(max)s and %(max)s"
NOT_UTF8 = "the file is not UTF-8 text (it looks like GBK): save it as UTF-8 and try again"
UNPACKS_TOO_LARGE = "%(member)s is larger than %(size)s once unpacked"
DAMAGED = "this is not a zip file, or the zip is damaged"

# name → (files uploaded, the file named by the error, its line and path, the message and its parameters)
CASES = {
    "alias bomb": ({"scheme.yaml": MINI_SCHEME, "lol.yaml": bombs.alias_bomb()}, "lol.yaml", 7, "l4[0]",
                   TOO_MANY, {"alias": "l3", "num": "10,000"}),
    "deep nesting": ({"scheme.yaml": MINI_SCHEME, "deep.yaml": bombs.deep_yaml()}, "deep.yaml", 3, "",
                     TOO_DEEP, {"num": 40}),
    "huge number": ({"scheme.yaml": MINI_SCHEME, "big.yaml": bombs.huge_number_yaml()}, "big.yaml", 3, "version",
                    OUT_OF_RANGE, {"value": "9" * 20 + "…", "max": 2**53 - 1}),
    "GBK file": ({"scheme.yaml": MINI_SCHEME, "board.yaml": bombs.gbk_bytes()}, "board.yaml", 3, "",
                 NOT_UTF8, {}),
    "zip bomb": ({"lidu.zip": bombs.zip_bomb()}, "lidu.zip", 1, "",
                 UNPACKS_TOO_LARGE, {"member": "mini/scheme.yaml", "size": "512 KB"}),
    "malformed zip": ({"lidu.zip": bombs.malformed_zip()}, "lidu.zip", 1, "", DAMAGED, {}),
}


def _bytes(content: str | bytes) -> bytes:
    return content.encode() if isinstance(content, str) else content


@pytest.fixture
def english_admin(ctx, client):
    make_user("root", admin=True)
    login(client, "root")
    client.post("/lang/en", data={"csrf_token": csrf_token(client, "/"), "next": "/"})
    return client


@pytest.mark.parametrize("case", CASES)
def test_upload_page_refuses_quickly_naming_the_file(english_admin, case):
    files, file, line, path, message, params = CASES[case]
    token = csrf_token(english_admin, "/admin/schemes/upload")
    data = {"csrf_token": token, "note": "",
            "files": [(io.BytesIO(_bytes(content)), name) for name, content in files.items()]}
    start = time.monotonic()
    response = english_admin.post("/admin/schemes/upload", data=data, content_type="multipart/form-data")
    elapsed = time.monotonic() - start
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    where = f"<code>{file}</code> line {line}: " + (f"<code>{path}</code>: " if path else "")
    assert f"<li>{where}{escape(message % params)}</li>" in page
    assert "1 error — nothing was stored" in page
    assert elapsed < QUICK, f"{case}: {elapsed:.2f} s"
    assert db.session.scalar(db.select(db.func.count(SchemeVersion.id))) == 0


@pytest.fixture
def validate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """`fangan scheme validate PATH` as an administrator types it; returns (exit code, output, seconds)."""
    monkeypatch.setenv("FANGAN_INSTANCE", str(tmp_path / "instance"))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite'}")
    monkeypatch.setenv("SECRET_KEY", "cli-test")
    runner = CliRunner()

    def run(path: Path) -> tuple[int, str, float]:
        start = time.monotonic()
        result = runner.invoke(main, ["scheme", "validate", str(path)], catch_exceptions=False)
        return result.exit_code, result.output, time.monotonic() - start

    return run


@pytest.mark.parametrize("case", CASES)
def test_scheme_validate_refuses_quickly_naming_the_file(validate, tmp_path, monkeypatch, case):
    files, file, line, path, message, params = CASES[case]
    folder = tmp_path / "scheme"
    folder.mkdir()
    for name, content in files.items():
        (folder / name).write_bytes(_bytes(content))
    target = folder / file if file.endswith(".zip") else folder
    monkeypatch.chdir(tmp_path)  # files are named relative to where the command runs
    with create_app().app_context():  # the command speaks the site's default language
        expected = gettext(message, **params)
    code, output, elapsed = validate(target)
    where = f"scheme/{file} line {line}: " + (f"{path}: " if path else "")
    assert code == 1
    assert output.splitlines() == [where + expected, "1 error(s); nothing was stored."]
    assert elapsed < QUICK, f"{case}: {elapsed:.2f} s"
