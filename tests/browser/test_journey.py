"""The first journey of a new user: log in with the printed password, see the demo district, switch language."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


def test_admin_logs_in_and_sees_the_demo_district(live_server, page):
    page.goto(live_server.url + "/")  # the public's way in, with the staff's log-in below
    assert page.get_by_role("link", name="我要举报").count() >= 1
    assert page.get_by_role("link", name="查询进度").is_visible()
    page.get_by_role("link", name="工作人员登录").click()
    assert "/login" in page.url
    page.get_by_label("用户名").fill(live_server.admin)
    page.get_by_label("密码").fill("wrong password!")
    page.get_by_role("button", name="登录").click()
    assert page.get_by_text("用户名或密码错误").is_visible()
    assert page.get_by_label("用户名").input_value() == live_server.admin  # kept after the error
    page.get_by_label("密码").fill(live_server.password)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(live_server.url + "/")
    assert page.get_by_role("heading", name="李渡街道城镇管理“马路办公”").is_visible()

    page.get_by_role("link", name="方案概览").first.click()
    assert page.get_by_role("cell", name="分管领导").first.is_visible()
    assert page.get_by_text("分管领导每周不少于2次").is_visible()

    page.get_by_role("link", name="首页").click()
    page.get_by_role("link", name="单位", exact=True).click()
    assert page.get_by_role("link", name="石龙社区").is_visible()

    page.get_by_role("button", name="English").click()
    assert page.get_by_role("link", name="Shilong Community").is_visible()
    page.get_by_role("button", name="中文").click()
    assert page.get_by_role("link", name="石龙社区").is_visible()


def test_scheme_admin_sees_version_in_force(live_server, page, tmp_path):
    page.goto(live_server.url + "/login")
    page.get_by_label("用户名").fill(live_server.admin)
    page.get_by_label("密码").fill(live_server.password)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(live_server.url + "/")
    page.get_by_role("link", name="方案管理").click()
    assert page.get_by_text("生效中").is_visible()
    page.screenshot(path=str(tmp_path / "schemes.png"), full_page=True)
