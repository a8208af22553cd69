"""The `fangan` CLI: set-up, schemes and users, on a fresh database."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from server.cli import main
from server.definitions.models import DefinitionVersion, SchemeVersion
from server.extensions import db
from tests.conftest import make_app
from tests.support.factories import DEMO


@pytest.fixture
def fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """An app on its own new SQLite file, as `make run` would see it, and a CLI runner bound to it."""
    url = f"sqlite:///{tmp_path / 'fresh.sqlite'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("SECRET_KEY", "cli-test")
    app = make_app(url, tmp_path)
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(main, list(args), catch_exceptions=False)

    yield app, run
    with app.app_context():
        db.engine.dispose()


def test_setup_twice_keeps_data_and_never_reprints_password(fresh):
    app, run = fresh
    first = run("setup")
    assert first.exit_code == 0, first.output
    password = re.search(r"Password: (\S+)", first.output).group(1)
    assert len(password) >= 12
    assert "http://127.0.0.1:5000" in first.output
    second = run("setup")
    assert second.exit_code == 0
    assert password not in second.output and "Password:" not in second.output
    assert "fangan user reset-password admin" in second.output
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(SchemeVersion.id))) == 1
    client = app.test_client()
    from tests.support.factories import login

    assert login(client, "admin", password).status_code == 302
    assert "李渡" in client.get("/").get_data(as_text=True)


def test_setup_passwords_differ_between_installs(tmp_path, monkeypatch):
    outputs = []
    for name in ("a", "b"):
        url = f"sqlite:///{tmp_path / name}.sqlite"
        monkeypatch.setenv("DATABASE_URL", url)
        app = make_app(url, tmp_path / name)
        outputs.append(CliRunner().invoke(main, ["setup"], catch_exceptions=False).output)
        with app.app_context():
            db.engine.dispose()
    first, second = (re.search(r"Password: (\S+)", o).group(1) for o in outputs)
    assert first != second


def test_reset_password(fresh):
    _, run = fresh
    run("setup")
    result = run("user", "reset-password", "admin")
    assert result.exit_code == 0 and "shown once" in result.output


def test_scheme_validate_load_list_diff_activate(fresh, tmp_path):
    app, run = fresh
    assert run("scheme", "validate", str(DEMO)).output.startswith("OK: scheme 'lidu'")
    loaded = run("scheme", "load", str(DEMO), "--activate")
    assert "stored as version 1" in loaded.output and "now in force" in loaded.output
    again = run("scheme", "load", str(DEMO))
    assert "already stored as version 1" in again.output

    copy = tmp_path / "lidu2"
    shutil.copytree(DEMO, copy)
    scheme = copy / "scheme.yaml"
    scheme.write_text(scheme.read_text("utf-8").replace("at_least: 2", "at_least: 3"), "utf-8")
    assert "stored as version 2" in run("scheme", "load", str(copy), "--note", "deputies 3 a week").output
    listing = run("scheme", "list").output
    assert re.search(r"^\*\s+1\s+lidu", listing, re.M) and re.search(r"^ \s+2\s+lidu .*deputies", listing, re.M)
    diff = run("scheme", "diff", "1", "2").output
    assert "-    at_least: 2" in diff and "+    at_least: 3" in diff
    assert "changed: scheme lidu" in diff
    assert "form" not in diff.split("changed: scheme lidu")[0]  # unchanged definitions are not listed
    assert "is now in force" in run("scheme", "activate", "2").output
    with app.app_context():
        # the unchanged forms are shared between both versions, not stored twice
        assert db.session.scalar(db.select(db.func.count(DefinitionVersion.id)).filter_by(kind="scheme")) == 2
        members = len(db.session.get(SchemeVersion, 1).members)
        assert db.session.scalar(db.select(db.func.count(DefinitionVersion.id))) == members + 1


def test_load_with_errors_stores_nothing(fresh, tmp_path):
    app, run = fresh
    copy = tmp_path / "broken"
    shutil.copytree(DEMO, copy)
    scheme = copy / "scheme.yaml"
    scheme.write_text(scheme.read_text("utf-8").replace("per: week", "per: fortnight", 1), "utf-8")
    result = CliRunner().invoke(main, ["scheme", "load", str(copy)])
    assert result.exit_code == 1
    assert "'fortnight' is not one of" in result.output
    assert "nothing was stored" in result.output
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(DefinitionVersion.id))) == 0
        assert db.session.scalar(db.select(db.func.count(SchemeVersion.id))) == 0


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_export_writes_the_loaded_folder_back_byte_for_byte(fresh, tmp_path):
    app, run = fresh
    folder = tmp_path / "lidu"
    shutil.copytree(DEMO, folder)
    # What an editor on another machine may leave: a byte-order mark, Windows line ends, a subfolder.
    board = folder / "board.yaml"
    board.write_bytes(b"\xef\xbb\xbf" + board.read_bytes().replace(b"\n", b"\r\n"))
    (folder / "sheets").mkdir()
    (folder / "score_sheet.yaml").rename(folder / "sheets" / "score_sheet.yaml")
    assert "stored as version 1" in run("scheme", "load", str(folder)).output
    out = tmp_path / "out"
    assert "Wrote 3 files of version 1" in run("scheme", "export", "1", str(out)).output
    assert _tree(out) == _tree(folder)

    # A second export into the same folder is refused, unless asked to overwrite.
    refused = CliRunner().invoke(main, ["scheme", "export", "1", str(out)])
    assert refused.exit_code != 0 and "--overwrite" in refused.output
    assert run("scheme", "export", "1", str(out), "--overwrite").exit_code == 0

    # A comment changed is a version of its own: the files are what the administrator gets back.
    scheme = folder / "scheme.yaml"
    scheme.write_bytes(scheme.read_bytes().replace(b"\n", b"\n# a note for the next administrator\n", 1))
    assert "stored as version 2" in run("scheme", "load", str(folder)).output
    assert "already stored as version 2" in run("scheme", "load", str(folder)).output
    out2 = tmp_path / "out2"
    run("scheme", "export", "2", str(out2))
    assert _tree(out2) == _tree(folder)
    with app.app_context():
        one, two = db.session.get(SchemeVersion, 1), db.session.get(SchemeVersion, 2)
        assert one.content_hash == two.content_hash and one.files_hash != two.files_hash
    missing = CliRunner().invoke(main, ["scheme", "export", "99", str(tmp_path / "none")])
    assert missing.exit_code != 0 and "99" in missing.output
