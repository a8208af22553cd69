"""Irreversible actions ask first: blocking a user is sent only once the administrator says yes."""

from __future__ import annotations

import pytest

from server.auth.models import User
from server.extensions import db
from tests.browser.conftest import logged_in
from tests.support.factories import make_user

pytestmark = pytest.mark.browser


def _active(live, username: str) -> bool:  # noqa: ANN001
    with live.app.app_context():
        try:
            return db.session.scalar(db.select(User.active).filter_by(username=username))
        finally:
            db.session.remove()


def test_blocking_a_user_asks_first(browser, live_server):
    with live_server.app.app_context():
        if db.session.scalar(db.select(User).filter_by(username="to_block")) is None:
            make_user("to_block")
        db.session.remove()
    context, page = logged_in(browser, live_server, "admin")
    page.goto(live_server.url + "/admin/users")
    row = page.locator("tr", has_text="To_Block")
    asked: list[str] = []

    def answer(dialog, accept: bool) -> None:  # noqa: ANN001
        asked.append(dialog.message)
        dialog.accept() if accept else dialog.dismiss()

    page.once("dialog", lambda d: answer(d, False))
    row.get_by_role("button", name="停用").click()
    page.wait_for_timeout(300)
    assert asked and "To_Block" in asked[0] and _active(live_server, "to_block")  # said no: nothing sent
    page.once("dialog", lambda d: answer(d, True))
    row.get_by_role("button", name="停用").click()
    page.wait_for_load_state("load")
    page.locator("tr", has_text="To_Block").get_by_role("button", name="启用").wait_for()
    assert len(asked) == 2 and not _active(live_server, "to_block")
    context.close()
