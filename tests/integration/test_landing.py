"""The public's way in: `/` offers reporting, following a report and the public lists of each district that
opens them, with the staff's log-in; a board's first screen offers the same two buttons."""

from __future__ import annotations

from tests.support.factories import load_demo, load_shipped, login, make_user


def test_the_public_finds_where_to_start(ctx, client):
    load_demo()
    load_shipped("chengguan")
    page = client.get("/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "/login" in html
    assert 'href="/p/lidu/report"' in html and 'href="/p/track"' in html
    assert 'href="/p/lidu/exposed"' in html and 'href="/assess/lidu/scores"' in html
    assert "/p/chengguan/report" not in html  # Chengguan opens nothing to the public
    make_user("zhang", roles=(("lidu", "staff", "shilong"),))
    login(client, "zhang")
    home = client.get("/").get_data(as_text=True)
    assert "/login\"" not in home and "/cases/lidu/" in home  # a person logged in gets their home


def test_a_board_offers_reporting_and_following_first(ctx, client):
    load_demo()
    html = client.get("/b/lidu/shilong_old_street").get_data(as_text=True)
    report, follow, chiefs = html.index("/p/lidu/report"), html.index('href="/p/track"'), html.index("board-tier")
    assert report < chiefs and follow < chiefs
