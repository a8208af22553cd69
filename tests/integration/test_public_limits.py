"""A burst of 200 public reports from one address: the configured number gets through, the rest get a clear
429 with nothing stored, and the rest of the site keeps working for everyone else."""

from __future__ import annotations

import io
import re

from PIL import Image

from server.extensions import db
from server.public.models import PublicReport
from tests.conftest import make_app
from tests.support.factories import load_demo
from tests.support.postgres import create_database


def _limited_app(backend, request, tmp_path):  # noqa: ANN001, ANN202
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'limits.sqlite'}"
    else:
        url = create_database(request.getfixturevalue("postgres_admin_url"), "fangan_limits")
    app = make_app(url, tmp_path / "instance", RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI="memory://",
                   FANGAN_REPORT_LIMIT="5 per minute", FANGAN_PUBLIC_LIMIT="1000 per minute",
                   FANGAN_MIN_FILL_SECONDS=0)
    with app.app_context():
        load_demo()
    return app


def _photo() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), "grey").save(buffer, "JPEG")
    return buffer.getvalue()


def test_a_burst_of_200_reports_from_one_address_is_limited(backend, request, tmp_path):
    app = _limited_app(backend, request, tmp_path)
    try:
        client = app.test_client()
        html = client.get("/p/lidu/report?area=shilong_old_street").get_data(as_text=True)
        field = {name: re.search(rf'name="{name}"[^>]*value="([^"]*)"', html).group(1)
                 for name in ("csrf_token", "_stamp")}
        statuses, refused_text = [], ""
        for i in range(200):
            # Each report is its own form (its own token), as a script replaying the page would send.
            response = client.post("/p/lidu/report", content_type="multipart/form-data", data={
                **field, "_token": f"burst-{i}", "_action": "submit", "website": "", "category": "random_piling",
                "location-area": "shilong_old_street", "description": f"第{i}次举报",
                "photos_before": (io.BytesIO(_photo()), "p.jpg")})
            statuses.append(response.status_code)
            if response.status_code == 429:
                refused_text = response.get_data(as_text=True)
        assert statuses[:5] == [303] * 5
        assert statuses[5:] == [429] * 195
        assert "您在短时间内提交的举报过多" in refused_text  # the clear message, in the visitor's language
        with app.app_context():
            assert db.session.scalar(db.select(db.func.count()).select_from(PublicReport)) == 5
        # Reading stays open to this visitor, and another visitor may still report.
        assert client.get("/p/lidu/report").status_code == 200
        assert client.get("/b/lidu/shilong_old_street").status_code == 200
        other = app.test_client()
        html = other.get("/p/lidu/report").get_data(as_text=True)
        token = {name: re.search(rf'name="{name}"[^>]*value="([^"]*)"', html).group(1)
                 for name in ("csrf_token", "_stamp", "_token")}
        response = other.post("/p/lidu/report", content_type="multipart/form-data",
                              environ_base={"REMOTE_ADDR": "10.1.2.3"}, data={
                                  **token, "_action": "submit", "website": "", "category": "random_piling",
                                  "location-area": "shilong_old_street", "description": "另一个人",
                                  "photos_before": (io.BytesIO(_photo()), "p.jpg")})
        assert response.status_code == 303
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def test_open311_clients_with_a_key_have_their_own_limits(backend, request, tmp_path):
    """A big screen and a mini-program post through Open311 from the same address as an anonymous script: each
    keyed client counts against its own limit (set per client), never against the public's 5 a minute."""
    import pytest

    from server.public.engine import open311_clients

    app = _limited_app(backend, request, tmp_path)
    app.config["FANGAN_OPEN311_KEYS"] = {"big-screen-key": {"name": "big-screen", "limit": "12 per minute"},
                                         "mini-key": "mini-program"}
    app.config["FANGAN_OPEN311_CLIENT_LIMIT"] = "3 per minute"
    try:
        client = app.test_client()

        def post(key: str, i: int) -> int:
            return client.post("/open311/v2/requests.json", content_type="application/x-www-form-urlencoded",
                               data={"api_key": key, "jurisdiction_id": "lidu", "service_code": "random_piling",
                                     "address_id": "shilong_old_street", "description": f"第{i}条"}).status_code

        assert [post("no-such-key", i) for i in range(7)] == [403] * 5 + [429] * 2  # the public's 5 a minute
        assert [post("big-screen-key", i) for i in range(14)] == [200] * 12 + [429] * 2  # its own 12
        assert [post("mini-key", i) for i in range(4)] == [200] * 3 + [429]  # the default for clients
        # Two clients without names of their own are still two budgets.
        app.config["FANGAN_OPEN311_KEYS"] = {"big-screen-key": {"limit": "12 per minute"}, "mini-key": {},
                                             "app-key": {"limit": "100 per minute"}}
        assert post("app-key", 100) == 200  # its budget is its own, not the other nameless clients'
        # A key shipped inside an app: each phone (its device_id) is held to the public's 5 a minute.
        phone = [client.post("/open311/v2/requests.json", content_type="application/x-www-form-urlencoded",
                             data={"api_key": "app-key", "jurisdiction_id": "lidu", "service_code": "random_piling",
                                   "address_id": "shilong_old_street", "description": f"手机{i}",
                                   "device_id": "phone-1"}).status_code for i in range(6)]
        assert phone == [200] * 5 + [429]
        assert post("app-key", 200) == 200  # the app's other users are not held back
        # A keyed client's reads count against its own budget too, not the public's.
        assert client.get("/open311/v2/services.json?jurisdiction_id=lidu&api_key=mini-key").status_code == 429
        assert client.get("/open311/v2/services.json?jurisdiction_id=lidu").status_code == 200
        with app.app_context():
            assert db.session.scalar(db.select(db.func.count()).select_from(PublicReport)) == 22
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    with pytest.raises(ValueError, match="cannot be read"):  # a limit that would never take effect
        open311_clients({"k": {"name": "x", "limit": "lots"}})
    with pytest.raises(ValueError, match="only 'name' and 'limit'"):
        open311_clients({"k": {"name": "x", "limits": "5 per minute"}})
