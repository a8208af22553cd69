"""Scheme administration in the browser-less web: upload, errors next to lines, diff, activate."""

from __future__ import annotations

import io
import zipfile

import pytest

from server.audit.models import AuditEntry
from server.definitions.models import SchemeRecord, SchemeVersion
from server.extensions import db
from tests.conftest import csrf_token
from tests.support.factories import demo_files, load_demo, login, make_user


@pytest.fixture
def admin_client(ctx, client):
    make_user("root", admin=True)
    login(client, "root")
    return client


def _upload(client, files: dict[str, bytes], note: str = ""):
    token = csrf_token(client, "/admin/schemes/upload")
    data = {"csrf_token": token, "note": note,
            "files": [(io.BytesIO(content), name) for name, content in files.items()]}
    return client.post("/admin/schemes/upload", data=data, content_type="multipart/form-data")


def _zip(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def test_upload_zip_then_activate(admin_client):
    response = _upload(admin_client, {"lidu.zip": _zip(demo_files())}, note="first")
    assert response.status_code == 302
    version_page = admin_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "scheme_version" not in version_page  # rendered, not an error
    version = db.session.scalar(db.select(SchemeVersion))
    assert "lidu_monthly" in version_page and version.note == "first"
    token = csrf_token(admin_client, f"/admin/schemes/versions/{version.id}")
    activated = admin_client.post(f"/admin/schemes/versions/{version.id}/activate", data={"csrf_token": token})
    assert activated.status_code == 302
    db.session.expire_all()
    assert db.session.get(SchemeRecord, "lidu").current_version_id == version.id
    assert db.session.scalar(db.select(AuditEntry).filter_by(action="scheme.activate")).user.username == "root"
    home = admin_client.get("/").get_data(as_text=True)
    assert "李渡街道城镇管理" in home


def test_upload_with_errors_shows_them_next_to_lines_and_stores_nothing(admin_client):
    files = {name.rsplit("/", 1)[-1]: text for name, text in demo_files().items()}
    files["scheme.yaml"] = files["scheme.yaml"].replace("per: week", "per: fortnight", 1)
    response = _upload(admin_client, {name: text.encode() for name, text in files.items()})
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "&#39;fortnight&#39; 不是可用的值，可用：&#39;day&#39;" in page  # in the page's language
    line = files["scheme.yaml"].splitlines().index("    per: fortnight") + 1
    assert f'id="scheme.yaml-L{line}"' in page
    assert 'class="ln bad"' in page and "annotation" in page
    assert db.session.scalar(db.select(db.func.count(SchemeVersion.id))) == 0


def test_diff_against_current_before_activation(admin_client):
    load_demo()
    files = dict(demo_files())
    key = next(k for k in files if k.endswith("scheme.yaml"))
    files[key] = files[key].replace("at_least: 2", "at_least: 4")
    response = _upload(admin_client, {"lidu.zip": _zip(files)})
    page = admin_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "+    at_least: 4" in page and "-    at_least: 2" in page


def test_upload_refuses_other_file_types(admin_client):
    response = _upload(admin_client, {"evil.exe": b"MZ\x90\x00"})
    assert response.status_code == 400
    assert "Only YAML, JSON or zip" in response.get_data(as_text=True) or "只能上传" in response.get_data(as_text=True)


def test_admin_text_is_escaped(admin_client):
    files = dict(demo_files())
    key = next(k for k in files if k.endswith("scheme.yaml"))
    files[key] = files[key].replace("name: {zh: 李渡街道城镇管理“马路办公”",
                                    "name: {zh: \"<script>alert(1)</script>\"", 1)
    response = _upload(admin_client, {"lidu.zip": _zip(files)})
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    page = admin_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_definition_errors_speak_the_pages_language(admin_client):
    """The same broken files: Chinese on the Chinese page, English on the English one — schema, reference and
    expression problems alike."""
    files = {name.rsplit("/", 1)[-1]: text for name, text in demo_files().items()}
    scheme = files["scheme.yaml"].replace("per: week", "per: fortnight", 1)
    scheme = scheme.replace("default_workflow: discover_assign_rectify_close", "default_workflow: no_such_flow")
    scheme = scheme.replace("    at_least: 1\n", "    at_least: 1\n    colour: red\n", 1)
    files["scheme.yaml"] = scheme
    payload = {name: text.encode() for name, text in files.items()}
    chinese = _upload(admin_client, payload).get_data(as_text=True)
    assert "不是可用的值" in chinese and "未知字段“colour”" in chinese
    assert "未知的流程“no_such_flow”" in chinese
    admin_client.post("/lang/en", data={"csrf_token": csrf_token(admin_client, "/"), "next": "/"})
    english = _upload(admin_client, payload).get_data(as_text=True)
    assert "is not one of" in english and "unknown field &#39;colour&#39;" in english
    assert "unknown workflow &#39;no_such_flow&#39;" in english and "未知" not in english


def test_expression_problems_in_chinese():
    from server.definitions.errors import expression_problem_zh

    assert expression_problem_zh("unknown name 'zz'") == "未知名称“zz”"
    assert expression_problem_zh("unknown function 'foo' (did you mean 'floor'?)") == (
        "未知函数“foo”（是否应为“floor”？）")
    assert expression_problem_zh("syntax error: invalid syntax").startswith("语法错误")
    assert expression_problem_zh("something new") == "something new"  # unknown kinds are said as they are
