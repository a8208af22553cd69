"""The district's administrator changes the scheme in the browser, without writing YAML: a patrol frequency, a
form field with a visibility rule, a score item, a transition. Each edit is checked as it is typed, saved as a
draft, diffed and activated; the downloaded files differ from the originals by exactly those lines."""

from __future__ import annotations

import difflib
import io
import re
import zipfile
from pathlib import Path

import pytest
from playwright.sync_api import expect

from server.definitions import service
from server.extensions import db
from tests.support.factories import DEMO

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]


def _changes(old: str, new: str) -> list[str]:
    return [line for line in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0)
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def _version_in_force(live) -> int:  # noqa: ANN001
    with live.app.app_context():
        try:
            return service.current_version("lidu").id
        finally:
            db.session.remove()


def _save_and_activate(page, live) -> tuple[int, str]:  # noqa: ANN001
    """Save the editor's draft, see its diff, put it in force; the new version's id and the diff shown."""
    page.locator(".editor-save .live-errors .status-ok").wait_for()
    page.locator("#definition-editor button[type=submit]").click()
    page.wait_for_url(re.compile(r"/admin/schemes/versions/\d+$"))
    version = int(page.url.rsplit("/", 1)[1])
    assert page.locator(".tag.draft").is_visible()
    diff = page.locator("pre.diff").first.inner_text()
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("form[action$='/activate'] button").click()
    page.locator(".tag.in-force").wait_for()
    assert _version_in_force(live) == version
    return version, diff


def _edit(page, live, version: int, what: str) -> None:  # noqa: ANN001
    page.goto(f"{live.url}/admin/schemes/versions/{version}")
    page.locator(f"a[data-edit='{what}']").click()
    page.locator("[data-editor-root] .card").first.wait_for()


def test_an_administrator_changes_the_scheme_without_yaml(browser, live_server):
    live = live_server
    original = _version_in_force(live)
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="zh-CN", service_workers="block")
    page = context.new_page()
    page.set_default_timeout(20_000)
    try:
        page.goto(live.url + "/login")
        page.get_by_label("用户名").fill("office")
        page.get_by_label("密码").fill(live.password)
        page.get_by_role("button", name="登录").click()
        page.wait_for_url(live.url + "/")

        # 1. A patrol frequency: deputy leaders patrol three times a week, not two.
        _edit(page, live, original, "scheme:lidu")
        rule = page.locator("tr[data-rule='deputy_leader_weekly']")
        rule.locator("input[data-path$='.at_least']").fill("0")
        expect(rule.locator(".field-error")).to_be_visible()  # checked as typed: at least 1
        rule.locator("input[data-path$='.at_least']").fill("3")
        expect(rule.locator(".field-error")).to_have_count(0)
        version, diff = _save_and_activate(page, live)
        assert "-    at_least: 2" in diff and "+    at_least: 3" in diff

        # 2. A field in the patrol log, shown only when more than five people patrol together.
        _edit(page, live, version, "form:patrol_log")
        cards = page.locator("section.form-fields > div > ol.field-list > li.field-card")
        position = cards.count()
        page.locator("section.form-fields > div > div.add-field > button").click()
        card = cards.nth(position)
        card.locator(f"[data-path='fields[{position}].id']").fill("team_leader")
        card.locator(f"[data-path='fields[{position}].label']").fill("带队人员")
        preview = page.frame_locator("iframe[name=form-preview]")
        expect(preview.get_by_text("带队人员")).to_be_visible()
        picker = card.locator(".rule-editor").first
        picker.locator(".rule-picker select").first.select_option("participants")
        picker.locator(".rule-picker select").nth(1).select_option(">")
        picker.locator(".rule-picker input").fill("5")
        picker.locator(".rule-picker button").click()
        expect(card.locator(f"[data-path='fields[{position}].visible_if']")).to_have_value("participants > 5")
        expect(preview.get_by_text("带队人员")).to_be_hidden()  # one person patrols by default
        version, _diff = _save_and_activate(page, live)

        # 3. A score item: 台账规范 takes 5 of the leadership item's 15 points; the totals are checked as typed.
        _edit(page, live, version, "score_sheet:lidu_monthly")
        section = page.locator("fieldset[data-section='mechanism']")
        items = section.locator("ol.item-list > li.item-card")
        count = items.count()
        section.locator(":scope > button").click()
        item = items.nth(count)
        item.locator(f"[data-path='sections[0].items[{count}].name']").fill("台账规范")
        item.locator(f"[data-path='sections[0].items[{count}].points']").fill("5")
        expect(page.locator("p.totals")).to_have_class(re.compile("status-bad"))
        expect(section.locator("input[data-path='sections[0].points'] + .field-error")).to_be_visible()
        section.locator("[data-path='sections[0].items[0].points']").fill("10")
        expect(page.locator("p.totals")).to_have_class(re.compile("status-ok"))
        version, _diff = _save_and_activate(page, live)

        # 4. A transition renamed: 不予交办 becomes 不予受理, and the diagram follows.
        _edit(page, live, version, "workflow:discover_assign_rectify_close")
        page.locator(".workflow-diagram svg").wait_for()
        page.locator("tr[data-transition='reject'] .i18n input").first.fill("不予受理")
        expect(page.locator(".workflow-diagram svg")).to_contain_text("不予受理")
        version, _diff = _save_and_activate(page, live)

        # The files, downloaded: each differs from what was loaded by exactly those lines, comments intact.
        with page.expect_download() as download:
            page.locator(f"a[href$='/versions/{version}/download']").click()
        files = zipfile.ZipFile(io.BytesIO(Path(download.value.path()).read_bytes()))
        got = {name: files.read(name).decode("utf-8") for name in files.namelist()}
        assert sorted(got) == ["board.yaml", "discover_assign_rectify_close.yaml", "patrol_log.yaml",
                               "scheme.yaml", "score_sheet.yaml"]
        assert got["board.yaml"] == (DEMO / "board.yaml").read_text("utf-8")
        assert _changes((DEMO / "scheme.yaml").read_text("utf-8"), got["scheme.yaml"]) == [
            "-    at_least: 2", "+    at_least: 3"]
        assert _changes((ROOT / "form_definitions/patrol_log.yaml").read_text("utf-8"), got["patrol_log.yaml"]) == [
            "+  - id: team_leader", "+    type: text", "+    label: 带队人员", "+    visible_if: participants > 5"]
        sheet = _changes((DEMO / "score_sheet.yaml").read_text("utf-8"), got["score_sheet.yaml"])
        assert sheet[:2] == ["-        points: 15", "+        points: 10"]
        assert sheet[2:] == ["+      - id: item_" + sheet[2].rsplit("_", 1)[1], "+        name: 台账规范",
                             "+        points: 5"]
        workflow = (ROOT / "workflow_definitions/discover_assign_rectify_close.yaml").read_text("utf-8")
        assert _changes(workflow, got["discover_assign_rectify_close.yaml"]) == [
            "-    name: {zh: 不予交办, en: Reject}", "+    name: {zh: 不予受理, en: Reject}"]
    finally:
        context.close()
        with live.app.app_context():  # the other journeys run on the demo as shipped
            service.activate_scheme_version(original)
            db.session.commit()
            db.session.remove()


def test_opening_an_editor_and_saving_changes_nothing(browser, live_server):
    """Every editor draws a definition without changing it: saved untouched, nothing is stored."""
    live = live_server
    version = _version_in_force(live)
    with live.app.app_context():
        try:
            row = service.current_version("lidu")
            members = [(m.kind, m.key) for m in row.members]
        finally:
            db.session.remove()
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
        seen = 0
        for kind, key in members:
            page.goto(f"{live.url}/admin/schemes/versions/{version}/edit/{kind}/{key}")
            if not page.url.split("?")[0].endswith(f"/edit/{kind}/{key}"):
                continue  # a kind edited as its source
            page.locator("[data-editor-root] .card").first.wait_for()
            page.locator("#definition-editor button[type=submit]").click()
            page.wait_for_url(re.compile(rf"/admin/schemes/versions/{version}$"))
            expect(page.locator(".flash-info")).to_contain_text("没有改动")
            seen += 1
        assert seen >= 8 and not errors
    finally:
        context.close()
