"""Printed notice boards: one board PDF and a batch of 200 distinct roads, against bare WeasyPrint on the same HTML.

Ours = the app's own: `/b/lidu/<road>.pdf` (one board) through the test client, and the batch as an
administrator prints every board of the district: the print form, the job run by a worker (here, in this
process), its file fetched from the job's page — the permission check, each board's data from the database, the
QR codes, the poster template, WeasyPrint behind the restricted URL fetcher, fifty posters at a time joined
into one PDF. Bare = WeasyPrint with its defaults on the very HTML they rendered (the batch's, batch by batch,
joined the same way). Target: ours under 1.3x bare for both; exit 1 on a miss.

The data live in a throwaway SQLite database: the demo district with `--batch` extra roads spread over its
four communities, a segment keeper (with a phone) on each, the street's main leader and each community head.
With `--city`, the demo district grown by bench/city.py instead (its roads with their segments, keepers,
community heads and street leaders, its units, staff and a year of cases, times `--scale`): the batch is then
every board of that district (about 200 at `--scale 0.1`).

The single board is timed warm: p50 and p95 of `--repeat` requests after a warm-up; the batch once each, after
the runs before (warm too).

Run: .venv/bin/python bench/boards.py [--batch 200] [--repeat 5] [--city [--scale 0.1]]   (about a minute)
"""

from __future__ import annotations

import argparse
import gc
import io
import secrets
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import median_seconds, p50_p95, timings  # noqa: E402
from pypdf import PdfReader, PdfWriter  # noqa: E402

from server import create_app  # noqa: E402
from server.extensions import db  # noqa: E402

TARGET = 1.3


def _empty_pdf() -> bytes:
    writer, out = PdfWriter(), io.BytesIO()
    writer.add_blank_page(10, 10)
    writer.write(out)
    return out.getvalue()


EMPTY_PDF = _empty_pdf()  # what "the drawing left out" hands back: a PDF the job can still join
COMMUNITIES = ("shilong", "zhiyuan", "duanqiao", "longqiao")
PASSWORD = secrets.token_urlsafe(16)  # the throwaway administrator's


def with_roads(files: dict[str, str], count: int) -> tuple[dict[str, str], int]:
    """The demo scheme's files with roads appended to its areas until it has `count`; and how many were added."""
    name = next(n for n in files if n.endswith("scheme.yaml"))
    added = max(0, count - files[name].count("kind: road\n"))
    roads = "".join(
        f"  - id: bench_road_{n:03d}\n"
        f"    kind: road\n"
        f"    name: {{zh: 测试{n}路, en: Bench Road {n}}}\n"
        f"    unit: {COMMUNITIES[n % len(COMMUNITIES)]}\n"
        f"    from: {{zh: 测试{n}路东口, en: East end of Bench Road {n}}}\n"
        f"    to: {{zh: 测试{n}路西口, en: West end of Bench Road {n}}}\n"
        f"    length_m: {300 + n}\n"
        for n in range(1, added + 1))
    head, _, tail = files[name].partition("\nroles:")
    return {**files, name: f"{head.rstrip()}\n{roads}\nroles:{tail}"}, added


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=200, help="boards in the batch (roads added up to it)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs of the single board (p50, p95)")
    parser.add_argument("--city", action="store_true", help="the demo district grown by bench/city.py instead")
    parser.add_argument("--scale", type=float, default=0.1, help="with --city: its size, times this")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="fangan-bench-"))
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder / 'b.sqlite'}", "SECRET_KEY": "bench",
                      "TESTING": True, "RATELIMIT_ENABLED": False, "WTF_CSRF_ENABLED": False,
                      "SESSION_COOKIE_SECURE": False, "FANGAN_JOBS_URL": "memory://"})
    with app.app_context():
        from flask_migrate import upgrade
        from weasyprint import HTML

        import server.boards.views as views
        from server.auth.service import create_user
        from server.boards import printing
        from server.definitions.bundle import read_source
        from server.definitions.service import activate_scheme_version, load_scheme
        from server.jobs import queue
        from server.org.models import Area
        from server.org.posts import appoint

        upgrade()
        files, added = with_roads(read_source(ROOT / "schemes" / "lidu"), 0 if args.city else args.batch)
        version, _ = load_scheme(files)
        activate_scheme_version(version.id)
        appoint("lidu", "main_leader", "王主任", unit_key="lidu_street")
        for n, community in enumerate(COMMUNITIES):
            appoint("lidu", "community_head", f"社区书记{n}", unit_key=community, phone=f"1380000000{n}")
        for n in range(1, added + 1):
            appoint("lidu", "segment_keeper", f"路段长{n}", area_key=f"bench_road_{n:03d}", phone=f"139{n:08d}")
        create_user("bench_admin", "Bench", PASSWORD, is_admin=True)
        db.session.commit()
        one_road = "bench_road_001"
        if args.city:
            from city import Size, seed_city

            size = Size().scaled(args.scale)
            city = seed_city("lidu", roads=size.roads, units=size.units, staff=size.staff,
                             cases_per_day=size.cases_per_day, days=size.days)
            one_road = city.roads[0]
            print(f"district: the demo's grown by bench/city.py at scale {args.scale:g}: {city.volume()}")
        else:
            print(f"district: the demo's with {added} roads added, a segment keeper on each")
        roads = db.session.scalar(db.select(db.func.count()).select_from(Area).where(
            Area.scheme_key == "lidu", Area.kind == "road", Area.active.is_(True)))

    client = app.test_client()
    login = client.post("/login", data={"username": "bench_admin", "password": PASSWORD})
    assert login.status_code == 302, login.status_code

    rendered: list[str] = []
    real_render = views.render_pdf

    def keep_html(html: str) -> bytes:
        rendered.append(html)
        return real_render(html)

    def fetch(url: str) -> bytes:
        response = client.get(url)
        assert response.status_code == 200 and response.data.startswith(b"%PDF"), (url, response.status_code)
        return response.data

    def print_batch() -> bytes:
        """The batch as an administrator asks for it: the print form, the job run by a worker, its file."""
        response = client.post("/b/lidu/print", data={"size": "standard"})
        assert response.status_code == 302, response.status_code
        job_id = int(response.headers["Location"].rstrip("/").rsplit("/", 1)[-1])
        assert queue.run_queued(app) == 1
        with client.get(f"/jobs/{job_id}/result") as result:
            assert result.status_code == 200 and result.data.startswith(b"%PDF"), result.status_code
            return result.data

    one_url = f"/b/lidu/{one_road}.pdf"
    views.render_pdf = printing.render_pdf = keep_html  # once, to keep the HTML each renders for the bare runs
    print_batch()
    chunks = list(rendered)
    fetch(one_url)
    views.render_pdf = printing.render_pdf = real_render
    html_one = rendered[-1]
    boards = sum(html.count('<section class="poster">') for html in chunks)
    assert boards == roads and html_one.count('<section class="poster">') == 1, (boards, roads)

    def bare_batch() -> bytes:
        """WeasyPrint on the very HTML the job drew, batch by batch, joined as the job joins them."""
        writer = PdfWriter()
        for html in chunks:
            writer.append(PdfReader(io.BytesIO(HTML(string=html).write_pdf())))
        out = io.BytesIO()
        writer.write(out)
        return out.getvalue()

    # What the routes and the job spend outside WeasyPrint: the same work with the drawing left out.
    views.render_pdf = printing.render_pdf = lambda html: EMPTY_PDF
    one_app = median_seconds(lambda: fetch(one_url), args.repeat)
    batch_app = median_seconds(print_batch, 3)
    views.render_pdf = printing.render_pdf = real_render

    one_ours, one_ours_p95 = p50_p95(timings(lambda: fetch(one_url), args.repeat))
    one_bare, one_bare_p95 = p50_p95(timings(lambda: HTML(string=html_one).write_pdf(), args.repeat))
    # One timed run each, the bare one first; the garbage of the runs before is collected first.
    gc.collect()
    start = time.perf_counter()
    bare_batch()
    batch_bare = time.perf_counter() - start
    gc.collect()
    start = time.perf_counter()
    print_batch()
    batch_ours = time.perf_counter() - start

    misses = 0
    print(f"one board: p50 of {args.repeat} warm requests (p95 ours {one_ours_p95 * 1000:.1f} ms, bare "
          f"{one_bare_p95 * 1000:.1f} ms); the batch: one run each, warm")
    for label, ours, bare, outside in (("one board (600x900 mm)", one_ours, one_bare, one_app),
                                       (f"batch of {boards} boards", batch_ours, batch_bare, batch_app)):
        ratio = ours / bare
        misses += ratio >= TARGET
        print(f"{label:24} ours {ours * 1000:9.1f} ms   bare WeasyPrint {bare * 1000:9.1f} ms   "
              f"ratio {ratio:4.2f}x   target < {TARGET}x   {'ok' if ratio < TARGET else 'MISSED'}   "
              f"(outside WeasyPrint {outside * 1000:.1f} ms)")
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
