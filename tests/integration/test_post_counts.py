"""A tier's `covers` and `holders`: the posts page and `fangan scheme validate` warn about posts that break
them; a rule no number of posts can meet is refused."""

from __future__ import annotations

from server.definitions.errors import DefinitionsInvalid
from server.definitions.service import activate_scheme_version, check_scheme_files, load_scheme
from server.extensions import db
from server.org.posts import appoint
from tests.support.clock import TODAY
from tests.support.factories import demo_files, login, make_user

KEEPER = "  - id: segment_keeper\n"


def _lidu(rule: str) -> dict[str, str]:
    files = dict(demo_files())
    name = next(n for n in files if n.endswith("scheme.yaml"))
    assert KEEPER in files[name]
    files[name] = files[name].replace(KEEPER, KEEPER + f"    {rule}\n", 1)
    return files


def test_the_posts_page_and_validate_warn_about_a_holder_over_too_many_areas(app, ctx, tmp_path):
    version, _ = load_scheme(_lidu("covers: {max: 1}"))
    activate_scheme_version(version.id)
    appoint("lidu", "segment_keeper", "张三", area_key="shilong_old_street_north", since=TODAY)
    appoint("lidu", "segment_keeper", "张三", area_key="shilong_old_street_south", since=TODAY)
    make_user("office", roles=(("lidu", "office_admin", None),))
    db.session.commit()
    client = app.test_client()
    login(client, "office")
    page = client.get("/org/lidu/posts").get_data(as_text=True)
    assert "张三" in page and "segment_keeper" in page and "≤ 1" in page
    folder = tmp_path / "lidu"
    folder.mkdir()
    for name, text in demo_files().items():
        (folder / name.rsplit("/", 1)[-1]).write_text(text, "utf-8")
    result = app.test_cli_runner().invoke(args=["scheme", "validate", str(folder)])
    assert result.exit_code == 0 and "warning" not in result.output  # the shipped Lidu says nothing of it
    scheme = folder / "scheme.yaml"
    scheme.write_text(scheme.read_text("utf-8").replace(KEEPER, KEEPER + "    covers: {max: 1}\n", 1), "utf-8")
    result = app.test_cli_runner().invoke(args=["scheme", "validate", str(folder)])
    assert result.exit_code == 0 and "warning:" in result.output and "张三" in result.output, result.output


def test_a_rule_no_number_of_posts_can_meet_is_refused(ctx):
    try:
        check_scheme_files(_lidu("holders: {min: 3, max: 2}"))
    except DefinitionsInvalid as exc:
        assert any(e.path == "tiers[4].holders" and "no number of posts" in e.message for e in exc.errors), \
            exc.errors
    else:
        raise AssertionError("min above max was accepted")
