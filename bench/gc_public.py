"""Full garbage collections a request of the public report form's GET, in a district of 2,000 roads.

A page that builds thousands of objects on every request (every road of the district as an option, as the
report form did) makes Python's collector run a full collection every few requests: at 2,000 roads, one every
3.5 requests and 110 ms a request. The form now counts the roads in the database and reads only the one
picked. This counts the collections of each generation over the requests, in-process (Flask's test client,
a temporary SQLite file), warm (20 untimed requests first), and the time a request (p50 and p95).

Run: .venv/bin/python bench/gc_public.py [--roads 2000] [--requests 300]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from server import create_app  # noqa: E402
from server.extensions import db  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--roads", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="fangan-bench-"))
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder / 'bench.sqlite'}", "SECRET_KEY": "bench",
                      "TESTING": True, "FANGAN_PUBLIC_LIMIT": "1000000 per minute"})
    app.instance_path = str(folder)
    with app.app_context():
        from flask_migrate import upgrade

        from tests.support.factories import add_roads, load_demo

        upgrade()
        load_demo()
        add_roads([f"第{i}号路" for i in range(args.roads)])
        db.session.commit()
    client = app.test_client()
    for _ in range(20):
        assert client.get("/p/lidu/report").status_code == 200
    counts = {0: 0, 1: 0, 2: 0}

    def counted(phase: str, info: dict) -> None:
        if phase == "start":
            counts[info["generation"]] += 1

    samples = []
    gc.callbacks.append(counted)
    try:
        for _ in range(args.requests):
            start = time.perf_counter()
            client.get("/p/lidu/report")
            samples.append(time.perf_counter() - start)
    finally:
        gc.callbacks.remove(counted)
    ordered = sorted(samples)
    every = f"one every {args.requests / counts[2]:.1f} requests" if counts[2] else "none"
    print(f"the public report form's GET, {args.roads:,} roads more than the demo's, {args.requests} warm requests: "
          f"p50 {statistics.median(ordered) * 1000:.1f} ms p95 {ordered[int(len(ordered) * 0.95) - 1] * 1000:.1f} ms; "
          f"collections: generation 0 {counts[0]}, 1 {counts[1]}, full {counts[2]} ({every})")


if __name__ == "__main__":
    main()
