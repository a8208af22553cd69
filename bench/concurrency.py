"""Concurrent writers against `fangan run`, on the embedded SQLite default and on PostgreSQL, side by side.

For each database, a fresh instance folder (FANGAN_INSTANCE) with the demo district, a staff user and a JSON API
client; then `fangan run` exactly as `make run` starts it (gunicorn, gthread: --workers processes × --threads
threads) on a free loopback port. At 8, 32 and 64 concurrent writers, each writer is a thread with its own HTTP
connection that writes for --seconds without pause, one of three kinds in turn:

- **api**: a case opened through the JSON API (`POST /api/v1/schemes/lidu/cases`, with a photo), expecting 201;
- **report**: a public report through the web form (GET once for the session, CSRF token and stamp, then POSTs
  each with a fresh idempotency token), expecting 303;
- **login**: the log-in form (GET, then POST of the user's password), expecting 302.

Meanwhile `fangan tick` runs again and again beside the server (escalations, reminders), as cron would on a busy
day; a tick that exits non-zero is an error. Rate limits are raised for the bench only (instance/config.py of
the bench's instance), so every refusal left is a failure of the server, not of a limit.

The target (issue 14): **0 errors** at every level, on both databases. Throughput and p50/p95 latency are
printed beside the errors, the two databases in one table; they are for reading, not a target (SQLite
serialises writers by design; PostgreSQL's throwaway cluster keeps production's durability: fsync and
synchronous commit on).

Run: .venv/bin/python bench/concurrency.py [--seconds 6] [--levels 8,32,64] [--workers 2] [--threads 8]
                                           [--only sqlite|postgresql]
(exits 1 when any request or tick failed; as root the database server runs as the postgres user)
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from public import ReportScenario, _jpeg, _multipart  # noqa: E402  (bench/public.py: the report form's POST)

from tests.support.postgres import create_database, free_port, temporary_cluster  # noqa: E402

SCHEME, ROAD = "lidu", "shilong_old_street"
USER, PASSWORD = "bench_writer", "bench-" + secrets.token_hex(8)
FANGAN = Path(sys.executable).parent / "fangan"
LIMIT = "1000000 per minute"
KINDS = ("api", "report", "login")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6, help="seconds of writing at each level")
    parser.add_argument("--levels", default="8,32,64", help="numbers of concurrent writers")
    parser.add_argument("--workers", type=int, default=2, help="fangan run --workers (its default)")
    parser.add_argument("--threads", type=int, default=8, help="fangan run --threads (its default)")
    parser.add_argument("--only", choices=("sqlite", "postgresql"), help="one database only")
    args = parser.parse_args()
    levels = [int(n) for n in args.levels.split(",")]
    results: dict[str, dict[int, Level]] = {}
    with ExitStack() as stack:
        for backend in ("sqlite", "postgresql"):
            if args.only and backend != args.only:
                continue
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"fangan-conc-{backend}-")))
            if backend == "sqlite":
                url = f"sqlite:///{folder / 'fangan.sqlite'}"
            else:
                url = create_database(stack.enter_context(temporary_cluster(durable=True)), "fangan_concurrency")
            token = prepare(url, folder)
            with serve(url, folder, args.workers, args.threads) as port:
                results[backend] = {n: drive(port, token, n, args.seconds, url, folder) for n in levels}
    return report(results, args)


# -- set-up ------------------------------------------------------------------------------------------------------


def prepare(url: str, folder: Path) -> str:
    """Migrate, load the demo district, add a staff user and an API client; the client's token."""
    os.environ["FANGAN_INSTANCE"] = str(folder)
    from flask_migrate import upgrade

    from server import create_app
    from server.api import service as api
    from server.auth.service import create_user, grant_role
    from server.extensions import db
    from tests.support.factories import load_demo, unit_id

    app = create_app({"SQLALCHEMY_DATABASE_URI": url})
    with app.app_context():
        upgrade()
        load_demo()
        user, _ = create_user(USER, "Bench Writer", PASSWORD)
        grant_role(user, SCHEME, "staff", unit_id(SCHEME, "shilong"))
        db.session.commit()
        _client, token = api.create_client("bench-concurrency", USER)
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    (folder / "config.py").write_text(  # bench-only: no limit refuses anything, no fill-time check
        f"FANGAN_API_LIMIT = {LIMIT!r}\nFANGAN_LOGIN_LIMIT = {LIMIT!r}\nFANGAN_PUBLIC_LIMIT = {LIMIT!r}\n"
        f"FANGAN_REPORT_LIMIT = {LIMIT!r}\nFANGAN_MIN_FILL_SECONDS = 0\n")
    return token


def _environment(url: str, folder: Path) -> dict[str, str]:
    return {**os.environ, "FANGAN_INSTANCE": str(folder), "DATABASE_URL": url, "FANGAN_SECURE_COOKIES": "0"}


@contextmanager
def serve(url: str, folder: Path, workers: int, threads: int) -> Iterator[int]:
    """`fangan run` on a free port for the length of the block; the port."""
    port = free_port()
    log = folder / "server.log"
    command = [str(FANGAN), "run", "--port", str(port), "--workers", str(workers), "--threads", str(threads)]
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=_environment(url, folder), stdout=out,  # noqa: S603
                                   stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"fangan run did not start:\n{log.read_text()[-3000:]}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.2)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- the writers -------------------------------------------------------------------------------------------------


@dataclass
class Level:
    writers: int
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)
    first_error: str = ""
    ticks: int = 0

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def quantile(self, q: float) -> float:
        if len(self.latencies) < 2:
            return 0.0
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[round(q * 100) - 1] * 1000


def _cookies(response: http.client.HTTPResponse, jar: dict[str, str]) -> None:
    for header in response.headers.get_all("Set-Cookie") or []:
        name, _, value = header.split(";", 1)[0].partition("=")
        jar[name] = value


def _send(conn: http.client.HTTPConnection, method: str, path: str, body: bytes | None,
          headers: dict[str, str], jar: dict[str, str] | None = None) -> tuple[int, bytes]:
    if jar:
        headers = {**headers, "Cookie": "; ".join(f"{k}={v}" for k, v in jar.items())}
    conn.request(method, path, body, headers)
    response = conn.getresponse()
    data = response.read()
    if jar is not None:
        _cookies(response, jar)
    return response.status, data


class Writer:
    """One writer of one kind: `step()` writes once and answers (status, expected status, body)."""

    def __init__(self, kind: str, conn: http.client.HTTPConnection, token: str, photo: bytes) -> None:
        self.kind, self.conn, self.token, self.photo = kind, conn, token, photo
        self.report = ReportScenario(None)
        self.state: dict[str, Any] | None = None

    def step(self) -> tuple[int, int, bytes]:
        return getattr(self, f"_{self.kind}")()

    def _api(self) -> tuple[int, int, bytes]:
        body = {"values": {"category": "piled_rubbish", "area": ROAD, "description": "垃圾堆积", "size_m3": 1.0,
                           "photos_before": [{"name": "p.jpg",
                                              "content": base64.b64encode(self.photo).decode()}]}}
        status, data = _send(self.conn, "POST", f"/api/v1/schemes/{SCHEME}/cases", json.dumps(body).encode(),
                             {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})
        return status, 201, data

    def _report(self) -> tuple[int, int, bytes]:
        if self.state is None:
            self.state = self.report.prepare(self.conn)
        call = self.report.call(self.state)
        status, data = _send(self.conn, call.method, call.path, call.body, call.headers)
        return status, 303, data

    def _login(self) -> tuple[int, int, bytes]:
        jar: dict[str, str] = {}
        status, page = _send(self.conn, "GET", "/login", None, {}, jar)
        found = re.search(rb'name="csrf_token"[^>]*value="([^"]+)"', page)
        if status != 200 or not found:
            return status, 200, page
        body, content_type = _multipart({"csrf_token": found.group(1).decode(), "username": USER,
                                         "password": PASSWORD}, {})
        status, data = _send(self.conn, "POST", "/login", body, {"Content-Type": content_type}, jar)
        return status, 302, data


def drive(port: int, token: str, writers: int, seconds: float, url: str, folder: Path) -> Level:
    """`writers` threads writing for `seconds`, with `fangan tick` running beside them."""
    level, lock = Level(writers), threading.Lock()
    ready = threading.Barrier(writers + 1)
    stop_at: list[float] = []
    photo = _jpeg()

    def write(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        writer = Writer(KINDS[i % len(KINDS)], conn, token, photo)
        mine: list[float] = []
        errors: Counter = Counter()
        first = ""
        ready.wait()
        while (start := time.perf_counter()) < stop_at[0]:
            try:
                status, expected, body = writer.step()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                status, expected, body = type(exc).__name__, 0, str(exc).encode()  # type: ignore[assignment]
            if status == expected:
                mine.append(time.perf_counter() - start)
            else:
                errors[f"{writer.kind} {status}"] += 1
                first = first or f"{writer.kind} {status}: {body[:300].decode(errors='replace')}"
        conn.close()
        with lock:
            level.latencies += mine
            level.errors.update(errors)
            level.first_error = level.first_error or first

    def tick() -> None:
        while time.perf_counter() < stop_at[0]:
            done = subprocess.run([str(FANGAN), "tick"], cwd=ROOT, env=_environment(url, folder),  # noqa: S603
                                  capture_output=True, text=True, timeout=300, check=False)
            with lock:
                level.ticks += 1
                if done.returncode != 0:
                    level.errors["tick"] += 1
                    level.first_error = level.first_error or f"tick: {(done.stderr or done.stdout)[-300:]}"

    threads = [threading.Thread(target=write, args=(i,), daemon=True) for i in range(writers)]
    for thread in threads:
        thread.start()
    start = time.perf_counter()
    stop_at.append(start + seconds)
    ticker = threading.Thread(target=tick, daemon=True)
    ticker.start()
    ready.wait()
    for thread in [*threads, ticker]:
        thread.join()
    level.seconds = time.perf_counter() - start
    return level


# -- report ------------------------------------------------------------------------------------------------------


def report(results: dict[str, dict[int, Level]], args: argparse.Namespace) -> int:
    """Print the table; 1 when anything failed."""
    from importlib.metadata import version

    print(f"concurrent writers over HTTP on 127.0.0.1: `fangan run` (gunicorn {version('gunicorn')}, gthread, "
          f"{args.workers} processes × {args.threads} threads), {os.cpu_count()} CPUs shared with the writers, "
          f"{args.seconds:g} s a level; writers in turn: {', '.join(KINDS)}; `fangan tick` in a loop beside them")
    backends = list(results)
    header = "writers | " + " | ".join(f"{b}: writes/s  p50 ms  p95 ms  ticks  errors" for b in backends)
    print(header)
    print("-" * len(header))
    failed = 0
    for n in next(iter(results.values())):
        cells = []
        for backend in backends:
            lv = results[backend][n]
            errors = sum(lv.errors.values())
            failed += errors
            cells.append(f"{backend}: {lv.rate:8.1f}  {lv.quantile(0.5):6.0f}  {lv.quantile(0.95):6.0f}  "
                         f"{lv.ticks:5d}  {errors:6d}")
        print(f"{n:7d} | " + " | ".join(cells))
    for backend in backends:
        for n, lv in results[backend].items():
            if lv.errors:
                print(f"  {backend} at {n}: {dict(lv.errors)}; first: {lv.first_error}")
    print("target: 0 errors at every level on both databases —", "met" if not failed else "MISSED")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
