"""Printed notice boards: one board PDF and a batch of 200, against WeasyPrint rendering the same HTML bare.

Ours = gather the board's data, render the poster template, render through the restricted URL fetcher.
Bare = WeasyPrint on the same final HTML with its defaults. Target: our overhead under 1.3x.

Run: .venv/bin/python bench/boards.py [--batch 200]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import median_seconds  # noqa: E402

from server import create_app  # noqa: E402
from server.extensions import db  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=200)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="fangan-bench-"))
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder / 'b.sqlite'}", "SECRET_KEY": "bench",
                      "TESTING": True, "SERVER_NAME": "fangan.example"})
    with app.app_context():
        from flask import render_template
        from flask_migrate import upgrade
        from weasyprint import HTML

        from server.boards import service
        from server.definitions.bundle import read_source
        from server.definitions.service import activate_scheme_version, load_scheme
        from server.org.posts import appoint
        from server.pdf.engine import render_pdf

        upgrade()
        version, _ = load_scheme(read_source(ROOT / "schemes" / "lidu"))
        activate_scheme_version(version.id)
        appoint("lidu", "main_leader", "王主任", unit_key="lidu_street")
        appoint("lidu", "community_head", "李书记", area_key="shilong_town")
        appoint("lidu", "segment_keeper", "张三", area_key="shilong_old_street", phone="13900000002")
        db.session.commit()
        with app.test_request_context():
            area = service.get_area("lidu", "shilong_old_street")

            def page_html(count: int) -> str:
                data = service.board_for("lidu", area)
                qr = service.qr_svg("http://fangan.example/b/lidu/shilong_old_street")
                return render_template("boards/poster.html", boards=[(data, qr)] * count, size=data["sizes"][0],
                                       printed=dt.date.today())

            def ours(count: int) -> bytes:
                return render_pdf(page_html(count))

            html_one, html_batch = page_html(1), page_html(args.batch)
            one_ours = median_seconds(lambda: ours(1), 5)
            one_bare = median_seconds(lambda: HTML(string=html_one).write_pdf(), 5)
            start = time.perf_counter()
            ours(args.batch)
            batch_ours = time.perf_counter() - start
            start = time.perf_counter()
            HTML(string=html_batch).write_pdf()
            batch_bare = time.perf_counter() - start
    print(f"one board (600x900 mm): ours {one_ours * 1000:7.1f} ms   bare WeasyPrint {one_bare * 1000:7.1f} ms   "
          f"ratio {one_ours / one_bare:4.2f}x   target < 1.3x")
    print(f"batch of {args.batch}:        ours {batch_ours:7.2f} s    bare WeasyPrint {batch_bare:7.2f} s    "
          f"ratio {batch_ours / batch_bare:4.2f}x")


if __name__ == "__main__":
    main()
