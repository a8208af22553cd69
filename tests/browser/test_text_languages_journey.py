"""An imported form's labels in French and Tibetan survive the form editor: changing the Chinese label keeps them."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from server.definitions.models import SchemeVersion
from server.definitions.service import load_scheme
from server.extensions import db
from tests.support.factories import demo_files

pytestmark = pytest.mark.browser

FORM = """\
kind: form
id: visits
name: {zh: 社区走访, fr: Visites}
fields:
  - id: street
    type: single_choice
    label: {zh: 街道, en: Street, fr: Rue, bo: ལམ།}
    choices: [{value: s1, label: {zh: 东街街道, fr: Rue Est}}]
"""


def _draft_with_the_form(live) -> int:  # noqa: ANN001
    """A version (not in force) with a form whose texts have French and Tibetan too."""
    with live.app.app_context():
        try:
            files = demo_files()
            scheme = next(name for name in files if name.endswith("scheme.yaml"))
            files[scheme] = files[scheme].replace("forms: [patrol_log,", "forms: [visits, patrol_log,", 1)
            files[scheme.replace("scheme.yaml", "visits.yaml")] = FORM
            version, _created = load_scheme(files)
            db.session.commit()
            return version.id
        finally:
            db.session.remove()


def test_editing_the_chinese_label_keeps_the_other_languages(browser, live_server):
    live = live_server
    version = _draft_with_the_form(live)
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="zh-CN", service_workers="block")
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(live.url + "/login")
        page.get_by_label("用户名").fill("office")
        page.get_by_label("密码").fill(live.password)
        page.get_by_role("button", name="登录").click()
        page.wait_for_url(live.url + "/")
        page.goto(f"{live.url}/admin/schemes/versions/{version}/edit/form/visits")
        page.locator("[data-editor-root] .card").first.wait_for()
        label = page.locator("[data-path='fields[0].label']")
        expect(label).to_have_value("街道")
        label.fill("所在街道")
        page.locator("[data-path='fields[0].choices[0].label']").fill("东街")
        page.locator(".editor-save .live-errors .status-ok").wait_for()
        page.locator("#definition-editor button[type=submit]").click()
        page.wait_for_url(re.compile(r"/admin/schemes/versions/\d+$"))
        draft = int(page.url.rsplit("/", 1)[1])
        assert draft != version and not errors
        with live.app.app_context():
            try:
                files = {f.path: f.content.decode("utf-8") for f in db.session.get(SchemeVersion, draft).files}
            finally:
                db.session.remove()
        written = next(text for path, text in files.items() if path.endswith("visits.yaml"))
        assert "label: {zh: 所在街道, en: Street, fr: Rue, bo: ལམ།}" in written
        assert "{value: s1, label: {zh: 东街, fr: Rue Est}}" in written
        assert "name: {zh: 社区走访, fr: Visites}" in written
    finally:
        context.close()
