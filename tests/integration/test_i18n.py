"""Chinese by default, English on request; definition texts follow the chosen language."""

from __future__ import annotations

from tests.conftest import csrf_token
from tests.support.factories import load_demo, login, make_user


def test_chinese_by_default(client):
    page = client.get("/login").get_data(as_text=True)
    assert '<html lang="zh-CN">' in page and "登录" in page and "用户名" in page


def test_chinese_even_when_the_browser_asks_for_english(client):
    page = client.get("/login", headers={"Accept-Language": "en-US,en;q=0.9"}).get_data(as_text=True)
    assert "登录" in page and "Username" not in page


def test_switch_language_and_back(ctx, client):
    load_demo()
    make_user("admin1", admin=True)
    login(client, "admin1")
    token = csrf_token(client, "/")
    response = client.post("/lang/en", data={"csrf_token": token, "next": "/district/lidu"})
    assert response.headers["Location"] == "/district/lidu"
    english = client.get("/district/lidu").get_data(as_text=True)
    assert "Chief ladder" in english and "Deputy leader in charge" in english and "分管领导" not in english
    client.post("/lang/zh_CN", data={"csrf_token": token, "next": "/district/lidu"})
    chinese = client.get("/district/lidu").get_data(as_text=True)
    assert "路长层级" in chinese and "分管领导" in chinese


def test_unknown_language_is_ignored(client):
    token = csrf_token(client, "/login")
    client.post("/lang/xx", data={"csrf_token": token})
    assert "登录" in client.get("/login").get_data(as_text=True)


def test_every_ui_string_is_translated(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    from babel.messages.pofile import read_po

    root = Path(__file__).resolve().parents[2]
    pot = tmp_path / "messages.pot"
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", "extract", "-F", "babel.cfg", "-k", "_l",
                    "-k", "lazy_gettext", "-o", str(pot), "server", "themes"], cwd=root, check=True,
                   capture_output=True)
    with pot.open("rb") as handle:
        source_ids = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(handle) if m.id}
    path = root / "server/translations/zh_Hans_CN/LC_MESSAGES/messages.po"
    with path.open("rb") as handle:
        catalog = read_po(handle)
    catalog_ids = {m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id}
    assert not source_ids - catalog_ids, "run `make messages` and translate the new strings"
    import re

    def placeholders(text: str) -> list[str]:
        return sorted(re.findall(r"%\(\w+\)[sd]", text))

    for m in catalog:
        if m.id:
            ids = m.id if isinstance(m.id, tuple) else (m.id,)
            strings = m.string if isinstance(m.string, tuple) else (m.string,)
            assert all(placeholders(ids[0]) == placeholders(s) for s in strings if s), m.id
    untranslated = [m.id for m in catalog if m.id and not (all(m.string) if isinstance(m.string, tuple) else m.string)]
    fuzzy = [m.id for m in catalog if m.id and m.fuzzy]
    assert not untranslated and not fuzzy
