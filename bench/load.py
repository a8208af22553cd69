"""A realistic mix of staff and public users, driven by locust, against Fangan's production shape and its default.

Real servers in one run: production's shape, the embedded default and a bare Flask app beside each; throughput and
p50/p95 latency per request kind and overall.

Shapes (each a fresh instance folder, FANGAN_INSTANCE, set up with `fangan setup`, then served on a free port):

- **production**: a throwaway PostgreSQL cluster, durable as in production (fsync, synchronous commit), a
  `redis-server` for the rate-limit counters (RATELIMIT_STORAGE_URI), `fangan run --workers 4 --threads 8 --no-jobs`;
- **embedded**: what `make run` serves: SQLite in the instance folder, `fangan run` with its defaults (2 processes
  × 8 threads, with its job worker beside it);
- **bare**: a minimal Flask app (this file's `bare_app`) under gunicorn with the same settings as the shape it
  stands beside: on PostgreSQL with 4 × 8 (beside production) and on SQLite (WAL, a 30-second busy timeout, a write
  transaction started IMMEDIATE, as ours) with 2 × 8 (beside embedded). It answers the same URLs with the same
  forms and statuses, so the same users drive it; each request does one small database read, each POST one
  small insert (and the photo written to a file), with Flask's signed-cookie session and a CSRF check. Each shape's
  throughput is printed as a ratio to its bare twin: what Fangan's own work costs on the same server and database.

Staff accounts: one unit head (`unit_head`) per community of the demo district, each appointed community head of
that community's road, made with `fangan user create` / `user grant` / `post appoint`. The mix, locust user
classes with weights (the load comes from one address, 127.0.0.1):

- **public** (weight 3, anonymous, a new phone each time: no cookies): a road's notice board page (weight 8), or
  a report (weight 2): the report form from the board's QR code (`/p/lidu/report?area=<road>`), then its POST with
  a 640×480 JPEG made with Pillow, expecting 303 to the tracking page;
- **staff** (weight 2, logged in once through `/login` with the CSRF token from the page): the case queue of their
  unit (weight 4), a case page picked from the queue they last saw (weight 6), or a patrol log (weight 1): the form,
  then its POST with a photo (one in three with a problem not settled on the spot, which opens a case), expecting
  303 to the record.

Users wait `--think` seconds between tasks (0 by default: each user is one concurrent client, so the figures are
the server's capacity under that concurrency, and the ratio to the bare app means something). Each request goes on
a new connection (`Connection: close`), as nginx proxies by default (HTTP/1.0 to the upstream) and as a phone's
connection is after gunicorn's 2-second keep-alive; `--keep-alive` keeps each user's connection instead, and
then gunicorn pins it to one worker process for the whole run: without think time, the users whose connections
landed on a busy worker (in our runs, the staff's) wait several times longer than the rest.

The measured window follows a warm-up (`--warmup`, logins included). Every answer is checked for its exact status
(200 for a page, 303 for a sent form, 302 for a log-in; a report or patrol answered 200 was refused) and for the
tokens and links scraped from it; anything else, or a dropped connection, is a failure, counted in the warm-up
too and printed with the start of the answer, and the server logs' tracebacks are printed after the table.

For the bench only, the instance's `config.py` (in FANGAN_INSTANCE) raises FANGAN_PUBLIC_LIMIT, FANGAN_REPORT_LIMIT
and FANGAN_LOGIN_LIMIT to 1000000 per minute (the limiter still counts every request, in Redis for production, and
refuses none) and sets FANGAN_MIN_FILL_SECONDS to 0 (a report sent at once is not taken for a script).

locust runs in a child process of this script (`--drive`, gevent, FastHttpUser), on the same machine as the
servers and the database: the table says how much CPU it used, and how much other work on the machine took (a shared
machine's figures are then to be compared with care).

Run: .venv/bin/python bench/load.py [--seconds 60] [--users 40 | --users 20,80] [--warmup 10] [--think 0]
                                    [--keep-alive] [--only production|embedded|bare]
(exits 1 when any request failed; removes its processes and folders at the end, Ctrl+C included; as root the
database server runs as the postgres user)
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
FANGAN = Path(sys.executable).parent / "fangan"
SCHEME = "lidu"
ROADS = {"shilong": "shilong_old_street", "zhiyuan": "zhiyuan_road", "duanqiao": "duanqiao_street",
         "longqiao": "longqiao_road"}  # community → its road (the unit the road's cases go to)
HEADS = {"shilong": "李书记", "zhiyuan": "王书记", "duanqiao": "陈书记", "longqiao": "刘书记"}
CATEGORIES = ("random_piling", "piled_rubbish", "street_stalls", "random_parking", "illegal_ads", "manhole")
LIMIT = "1000000 per minute"
KINDS = ("board", "report form", "report POST", "login form", "login POST", "queue", "case", "patrol form",
         "patrol POST")
SHAPES = {  # name: (database, gunicorn processes, threads)
    "bare-postgresql": ("postgresql", 4, 8), "production": ("postgresql", 4, 8),
    "bare-sqlite": ("sqlite", 2, 8), "embedded": ("sqlite", 2, 8)}
TWIN = {"production": "bare-postgresql", "embedded": "bare-sqlite"}
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
TOKEN = re.compile(r'name="_token" value="([^"]+)"')
STAMP = re.compile(r'name="_stamp" value="([^"]+)"')
STARTED = re.compile(r'name="started_at"[^>]*value="([^"]+)"')
CASE_LINK = re.compile(r'href="/cases/case/(\d+)"')
PATROL_URL = f"/f/{SCHEME}/patrol_log/new"
REPORT_URL = f"/p/{SCHEME}/report"


def main() -> int:
    """Parse the options; drive the load (child) or run every shape and print the table (parent)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60, help="measured seconds per shape and user count")
    parser.add_argument("--users", default="40", help="concurrent users (a comma-separated list runs each in turn)")
    parser.add_argument("--warmup", type=float, default=10, help="unmeasured seconds first (log-ins happen here)")
    parser.add_argument("--think", type=float, default=0.0, help="seconds a user waits between tasks")
    parser.add_argument("--keep-alive", action="store_true",
                        help="keep each user's connection open (default: a new connection a request, as behind nginx)")
    parser.add_argument("--only", choices=("production", "embedded", "bare"), help="one shape only (bare: both twins)")
    parser.add_argument("--drive", metavar="SPEC", help=argparse.SUPPRESS)  # the locust child: a JSON spec file
    args = parser.parse_args()
    if args.drive:
        return drive(Path(args.drive))
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl+C, even when started with SIGINT ignored
    signal.signal(signal.SIGTERM, _interrupt)  # a plain `kill` cleans up as Ctrl+C does
    counts = [int(n) for n in args.users.split(",")]
    shapes = [s for s in SHAPES if not args.only or s == args.only or (args.only == "bare" and s.startswith("bare"))]
    results: list[Result] = []
    with ExitStack() as stack:
        try:
            run_shapes(stack, shapes, counts, args, results)
        except KeyboardInterrupt:
            print("\ninterrupted: stopping every server and removing the folders", file=sys.stderr)
            stack.close()
            report(results, args)
            return 130
    return report(results, args)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


# -- the shapes ------------------------------------------------------------------------------------------------


@dataclass
class Result:
    """One shape at one user count: what the locust child measured."""

    shape: str
    users: int
    seconds: float = 0.0
    latencies: dict[str, list[float]] = field(default_factory=dict)
    failures: dict[str, dict[str, int]] = field(default_factory=dict)
    driver_cpu: float = 0.0
    cpu_warning: bool = False
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds in the window: app, database, redis, ...
    notes: list[str] = field(default_factory=list)

    def count(self, kind: str | None = None) -> int:
        """Answers measured, of one kind or of all."""
        return sum(len(v) for k, v in self.latencies.items() if kind in (None, k))

    def rate(self, kind: str | None = None) -> float:
        """Requests a second, of one kind or of all."""
        return self.count(kind) / self.seconds if self.seconds else 0.0

    def failed(self) -> int:
        """Failed requests, warm-up included."""
        return sum(sum(v.values()) for v in self.failures.values())


def run_shapes(stack: ExitStack, shapes: list[str], counts: list[int], args: argparse.Namespace,
               results: list[Result]) -> None:
    """Start what each shape needs, drive each user count against it, and stop it."""
    admin_url = None
    if any(SHAPES[s][0] == "postgresql" for s in shapes):
        from tests.support.postgres import temporary_cluster

        print("starting a throwaway PostgreSQL cluster (durable: fsync and synchronous commit on)", flush=True)
        admin_url = stack.enter_context(temporary_cluster(durable=True))
    postmaster = _postmaster(admin_url) if admin_url else None
    for shape in shapes:
        database, workers, threads = SHAPES[shape]
        with ExitStack() as inner:
            folder = Path(inner.enter_context(tempfile.TemporaryDirectory(prefix=f"fangan-load-{shape}-")))
            print(f"{shape}: setting up in {folder}", flush=True)
            if shape.startswith("bare"):
                served = start_bare(inner, folder, database, workers, threads, admin_url)
            else:
                served = start_fangan(inner, folder, shape, admin_url)
            if database == "postgresql" and postmaster:
                served.trees["database"] = postmaster
            for users in counts:
                print(f"{shape}: {users} users, {args.warmup:g} s warm-up + {args.seconds:g} s measured", flush=True)
                result = run_driver(folder, shape, served, users, args)
                result.notes += tracebacks(served.logs)
                results.append(result)
            results[-1].notes.append(data_volume(shape, folder, admin_url))


@dataclass
class Served:
    """A server ready for the load: its port, staff accounts, log files and the sessions of its processes."""

    port: int
    accounts: list[tuple[str, str, str]]
    logs: list[Path]
    sessions: dict[str, int] = field(default_factory=dict)  # app, redis: a session id each
    trees: dict[str, int] = field(default_factory=dict)  # database: the postmaster, whose children are its backends


def _clean_environment() -> dict[str, str]:
    """This process's environment without any Fangan setting a shell may carry (each shape sets its own)."""
    drop = ("DATABASE_URL", "SECRET_KEY", "RATELIMIT_STORAGE_URI")
    return {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("FANGAN_")}


def start_fangan(stack: ExitStack, folder: Path, shape: str, admin_url: str | None) -> Served:
    """Set up an instance with `fangan setup` and staff accounts, serve it; its port, accounts and log files."""
    from tests.support.postgres import create_database, free_port

    port = free_port()
    env = {**_clean_environment(), "FANGAN_INSTANCE": str(folder), "SECRET_KEY": secrets.token_hex(32),
           "FANGAN_SECURE_COOKIES": "0"}
    command = [str(FANGAN), "run", "--port", str(port)]
    sessions = {}
    if shape == "production":
        assert admin_url
        env["DATABASE_URL"] = create_database(admin_url, "fangan_load")
        redis_port = free_port()
        redis = ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--dir", str(folder)]
        sessions["redis"] = stack.enter_context(service("redis", redis, folder, os.environ.copy(),
                                                        ready=lambda: _redis_ready(redis_port)))
        env["RATELIMIT_STORAGE_URI"] = f"redis://127.0.0.1:{redis_port}/0"
        command += ["--workers", "4", "--threads", "8", "--no-jobs"]
    (folder / "config.py").write_text(  # bench-only: no limit refuses the one address the load comes from
        "# Written by bench/load.py for the bench only: every request comes from 127.0.0.1.\n"
        f"FANGAN_PUBLIC_LIMIT = {LIMIT!r}\nFANGAN_REPORT_LIMIT = {LIMIT!r}\nFANGAN_LOGIN_LIMIT = {LIMIT!r}\n"
        "FANGAN_MIN_FILL_SECONDS = 0\n", encoding="utf-8")
    out = _fangan(env, "setup", "--url", f"http://127.0.0.1:{port}")
    assert "Password:" in out, f"fangan setup printed no administrator password:\n{out}"
    accounts = []
    for community, road in ROADS.items():
        name = f"head_{community}"
        created = _fangan(env, "user", "create", name, "--name", HEADS[community])
        password = re.search(r"Password \(shown once\): (\S+)", created)
        assert password, created
        _fangan(env, "user", "grant", name, SCHEME, "unit_head", "--unit", community)
        _fangan(env, "post", "appoint", SCHEME, "community_head", HEADS[community], "--area", road, "--user", name)
        accounts.append((name, password.group(1), community))
    sessions["app"] = stack.enter_context(service("fangan", command, folder, env, ready=lambda: _http_ready(port)))
    return Served(port, accounts, [folder / "fangan.log"], sessions)


def _fangan(env: dict[str, str], *arguments: str) -> str:
    """Run one `fangan` command in the shape's environment; its output (an error stops the bench)."""
    done = subprocess.run([str(FANGAN), *arguments], cwd=ROOT, env=env, capture_output=True, text=True,  # noqa: S603
                          timeout=300, check=False)
    if done.returncode:
        raise RuntimeError(f"fangan {' '.join(arguments)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def start_bare(stack: ExitStack, folder: Path, database: str, workers: int, threads: int,
               admin_url: str | None) -> Served:
    """Create the bare app's tables and accounts, serve it with gunicorn; its port, accounts and log files."""
    from sqlalchemy import create_engine, insert
    from werkzeug.security import generate_password_hash

    from tests.support.postgres import create_database, free_port

    if database == "postgresql":
        assert admin_url
        url = create_database(admin_url, "fangan_load_bare")
    else:
        url = f"sqlite:///{folder / 'bare.sqlite'}"
    accounts = [(f"head_{c}", secrets.token_urlsafe(12), c) for c in ROADS]
    engine = create_engine(url)
    metadata, areas, _items, users = bare_tables()
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(areas), [{"key": road, "name": road.replace("_", " ").title()} for road in ROADS.values()])
        conn.execute(insert(users), [{"name": n, "password_hash": generate_password_hash(p), "unit": c}
                                     for n, p, c in accounts])
    engine.dispose()
    (folder / "uploads").mkdir()
    port = free_port()
    env = {**_clean_environment(), "BARE_DATABASE_URL": url, "BARE_UPLOADS": str(folder / "uploads"),
           "BARE_SECRET": secrets.token_hex(32)}
    # The settings `fangan run` gives gunicorn (server/cli.py), access log included.
    command = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
               "--threads", str(threads), "--worker-class", "gthread", "--timeout", "120", "--graceful-timeout", "20",
               "--access-logfile", "-", "--error-logfile", "-", "--pythonpath", str(BENCH), "load:bare_app()"]
    app = stack.enter_context(service("bare", command, folder, env, ready=lambda: _http_ready(port)))
    return Served(port, accounts, [folder / "bare.log"], {"app": app})


@contextmanager
def service(name: str, command: list[str], folder: Path, env: dict[str, str], ready: Any) -> Iterator[int]:
    """A process in a session of its own, logged to FOLDER/NAME.log, for the block; yields its pid (= session)."""
    # Its own session: Ctrl+C reaches this script only, which stops it with SIGTERM, then kills what is left.
    log = folder / f"{name}.log"
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,  # noqa: S603
                                   start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not ready():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.2)
        yield process.pid
    finally:
        _stop(process)


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM to the process we started, a wait, then SIGKILL to what is left of its own process group."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)  # the group is the one it was started in (start_new_session)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)


def _http_ready(port: int) -> bool:
    import http.client  # here: the locust child must not load ssl before gevent patches it

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/healthz")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def _redis_ready(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def run_driver(folder: Path, shape: str, served: Served, users: int, args: argparse.Namespace) -> Result:
    """Run the locust child against one server; what it measured."""
    spec = folder / f"drive-{users}.json"
    out = folder / f"result-{users}.json"
    spec.write_text(json.dumps({"host": f"http://127.0.0.1:{served.port}", "users": users, "seconds": args.seconds,
                                "warmup": args.warmup, "think": args.think, "keep_alive": args.keep_alive,
                                "accounts": served.accounts,
                                "sessions": served.sessions, "trees": served.trees, "out": str(out)}), encoding="utf-8")
    log = folder / f"locust-{users}.log"
    with log.open("w") as err:
        child = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--drive", str(spec)],  # noqa: S603
                                 cwd=ROOT, stdout=err, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        code = child.wait(timeout=args.warmup + args.seconds + 300)
    finally:
        _stop(child)
    if code != 0 or not out.exists():
        raise RuntimeError(f"the locust driver failed ({code}):\n{log.read_text(errors='replace')[-3000:]}")
    data = json.loads(out.read_text(encoding="utf-8"))
    return Result(shape, users, data["seconds"], data["latencies"], data["failures"], data["driver_cpu"],
                  data["cpu_warning"], data["cpu"])


def _postmaster(admin_url: str) -> int | None:
    """The pid of the PostgreSQL server listening on the cluster's port (its backends are its children)."""
    from sqlalchemy import make_url

    marker = f"\0-p\0{make_url(admin_url).port}\0".encode()
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if entry.name.isdigit() and marker in (entry / "cmdline").read_bytes():
                return int(entry.name)
    return None


def _stat(pid: str) -> list[int]:
    """/proc/PID/stat after the command, as ints: ppid (1), session (3), utime, stime, cutime, cstime (11-14)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return [0, *(int(f) for f in fields[1:])]


def cpu_sample(sessions: dict[str, int], trees: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far: each named session's processes, each named process's tree, the whole machine busy."""
    ticks = os.sysconf("SC_CLK_TCK")
    out = dict.fromkeys([*sessions, *trees], 0.0)
    by_session = {sid: name for name, sid in sessions.items()}
    by_parent = {pid: name for name, pid in trees.items()}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = _stat(entry.name)
                name = by_session.get(stat[3]) or by_parent.get(int(entry.name)) or by_parent.get(stat[1])
                if name:
                    out[name] += (stat[11] + stat[12]) / ticks
                if int(entry.name) in by_parent:  # and its children that ended (a connection pool's overflow)
                    out[name] += (stat[13] + stat[14]) / ticks
    numbers = [int(n) for n in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    out["machine"] = (sum(numbers[:8]) - numbers[3] - numbers[4]) / ticks  # all but idle and iowait
    return out


def tracebacks(logs: list[Path], limit: int = 3) -> list[str]:
    """The first tracebacks (and the lines logged as errors) in the server's logs, new since the last look."""
    found = []
    for log in logs:
        if not log.exists():
            continue
        text = log.read_text(errors="replace")
        seen = log.with_suffix(".seen")
        start = int(seen.read_text()) if seen.exists() else 0
        seen.write_text(str(len(text)))
        lines = text[start:].splitlines()
        for i, line in enumerate(lines):
            if line.startswith("Traceback"):
                end = next((j for j in range(i + 1, len(lines)) if lines[j] and not lines[j].startswith(" ")), i)
                found.append(f"{log.name}:\n    " + "\n    ".join(lines[max(0, i - 1):end + 1]))
            elif re.search(r"\[(ERROR|CRITICAL)\]|WORKER TIMEOUT|database is locked", line) and not (
                    i + 1 < len(lines) and lines[i + 1].startswith("Traceback")):  # else shown with its traceback
                found.append(f"{log.name}: {line}")
            if len(found) >= limit:
                return found
    return found


def data_volume(shape: str, folder: Path, admin_url: str | None) -> str:
    """How many rows the run left in its database: cases, submissions, uploads, public reports (ours) or items."""
    tables = ("items",) if shape.startswith("bare") else ("cases", "submissions", "uploads", "public_reports")
    if SHAPES[shape][0] == "sqlite":
        path = folder / ("bare.sqlite" if shape.startswith("bare") else "fangan.sqlite")
        with contextlib.closing(sqlite3.connect(path)) as conn:
            counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}  # noqa: S608
    else:
        import psycopg

        assert admin_url
        name = "fangan_load_bare" if shape.startswith("bare") else "fangan_load"
        dsn = admin_url.replace("postgresql+psycopg://", "postgresql://").rsplit("/", 1)[0] + f"/{name}"
        with psycopg.connect(dsn) as conn:
            counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}  # noqa: S608
    return "rows at the end: " + ", ".join(f"{t} {n:,}" for t, n in counts.items())


# -- the report ------------------------------------------------------------------------------------------------


def _quantiles(samples: list[float]) -> tuple[float, float]:
    sys.path.insert(0, str(BENCH))
    from common import p50_p95

    return p50_p95(samples) if samples else (0.0, 0.0)


def report(results: list[Result], args: argparse.Namespace) -> int:
    """Print the tables; 1 when any request failed."""
    from importlib.metadata import version

    if not results:
        return 1
    print()
    print(f"load over HTTP on 127.0.0.1 with locust {version('locust')} (FastHttpUser, in a child process on the same "
          f"machine), gunicorn {version('gunicorn')} gthread, {os.cpu_count()} CPUs shared by the load generator, "
          "the servers and the database")
    connections = "each keeping its connection open" if args.keep_alive else "each request on a new connection"
    print(f"{args.warmup:g} s warm-up, then {args.seconds:g} s measured; users wait {args.think:g} s between tasks, "
          f"{connections}; mix: public 3 (board 8, report form + POST 2), staff 2 (queue 4, case 6, patrol form + "
          f"POST 1); each POST with a {len(_jpeg()) // 1024} kB 640×480 JPEG (a patrol with a problem: two)")
    print(f"bench-only settings in each instance's config.py: FANGAN_PUBLIC_LIMIT, FANGAN_REPORT_LIMIT and "
          f"FANGAN_LOGIN_LIMIT = {LIMIT} (limits counted, none refused), FANGAN_MIN_FILL_SECONDS = 0")
    for name, (database, workers, threads) in SHAPES.items():
        if any(r.shape == name for r in results):
            extra = {"production": ", Redis rate-limit counters, --no-jobs", "embedded": ", job worker beside it"}
            print(f"  {name:<16} {database}, {workers} processes × {threads} threads{extra.get(name, '')}")
    print()
    print(f"  {'shape':<16} {'users':>5}  {'kind':<12} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} "
          f"{'failed':>7}")
    for r in results:
        kinds = [k for k in KINDS if k in r.latencies or k in r.failures]
        if not kinds:
            continue
        for kind in [*kinds, None]:
            samples = sorted(r.latencies.get(kind, [])) if kind else sorted(x for v in r.latencies.values() for x in v)
            p50, p95 = _quantiles(samples)
            failed = sum(r.failures.get(kind, {}).values()) if kind else r.failed()
            label = kind or "OVERALL"
            print(f"  {r.shape if kind == kinds[0] else '':<16} {r.users if kind == kinds[0] else '':>5}  {label:<12} "
                  f"{len(samples):>9,} {r.rate(kind):8.1f} {p50 * 1000:8.0f} {p95 * 1000:8.0f} {failed:>7}")
        print()
    print("summary (overall; vs bare: the shape's requests a second over its bare twin's at the same user count;")
    print("  CPU ms a request: the server's processes (app), PostgreSQL, Redis and locust, over the measured answers;")
    print("  other load: the machine's CPU used by none of these, as a share of all its CPUs):")
    print(f"  {'shape':<16} {'users':>5} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'POST p95':>9} {'failed':>7} "
          f"{'vs bare':>8}   {'CPU ms/req: app':>15} {'db':>5} {'redis':>5} {'locust':>6}   {'other load':>10}")
    cpus, busy = os.cpu_count() or 1, 0.0
    for r in results:
        p50, p95 = _quantiles(sorted(x for v in r.latencies.values() for x in v))
        writes = _quantiles(sorted(x for k, v in r.latencies.items() if k.endswith("POST") and k != "login POST"
                                   for x in v))[1]
        twin = next((t for t in results if t.shape == TWIN.get(r.shape) and t.users == r.users), None)
        ratio = f"{r.rate() / twin.rate():8.2f}" if twin and twin.rate() else f"{'-':>8}"
        per = {k: r.cpu.get(k, 0.0) / max(r.count(), 1) * 1000 for k in ("app", "database", "redis", "driver")}
        other = (r.cpu.get("machine", 0.0) - sum(v for k, v in r.cpu.items() if k != "machine")) / (r.seconds * cpus)
        busy = max(busy, other)
        print(f"  {r.shape:<16} {r.users:>5} {r.rate():8.1f} {p50 * 1000:8.0f} {p95 * 1000:8.0f} {writes * 1000:9.0f} "
              f"{r.failed():>7} {ratio}   {per['app']:15.1f} {per['database']:5.1f} {per['redis']:5.1f} "
              f"{per['driver']:6.1f}   {max(other, 0.0):10.0%}"
              + ("   (locust warned: its CPU above 90%)" if r.cpu_warning else ""))
    if busy > 0.1:
        print(f"  NOTE: other work took up to {busy:.0%} of the machine during a measurement: compare those rows with "
              "care (run again on a quiet machine)")
    failed = sum(r.failed() for r in results)
    for r in results:
        for kind, messages in r.failures.items():
            for message, n in sorted(messages.items(), key=lambda item: -item[1])[:5]:
                print(f"  FAILED {r.shape} at {r.users} users, {kind}: {n} × {message}")
        for note in r.notes:
            print(f"  {r.shape} at {r.users} users: {note}")
    if failed:
        print(f"\n!!! {failed} REQUESTS FAILED: the figures above are not clean (see FAILED lines and server logs) !!!")
    else:
        print("\nno request failed (every answer had its expected status and content)")
    return 1 if failed else 0


# -- the locust child ------------------------------------------------------------------------------------------


def _jpeg() -> bytes:
    """A 640×480 JPEG of a gradient with some noise (tens of kB), as a phone's photo scaled down."""
    from PIL import Image, ImageDraw

    image = Image.effect_noise((640, 480), 40).convert("RGB")
    draw = ImageDraw.Draw(image)
    for x in range(0, 640, 16):
        draw.rectangle((x, 0, x + 8, 480), fill=(x % 256, 120, 255 - x % 256))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


def multipart(fields: dict[str, str], files: dict[str, bytes]) -> tuple[bytes, str]:
    """A multipart/form-data body as a browser sends it; the body and its Content-Type."""
    boundary = "----bench" + secrets.token_hex(12)
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
             for k, v in fields.items()]
    for key, content in files.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"; filename="{key}.jpg"\r\n'
                     "Content-Type: image/jpeg\r\n\r\n".encode() + content + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def drive(spec_path: Path) -> int:
    """The locust child: run the mix against spec's host, write what it measured as JSON."""
    from gevent import monkey

    monkey.patch_all()
    import gevent
    from locust import FastHttpUser, constant, task
    from locust.env import Environment

    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    photo = _jpeg()
    latencies: dict[str, list[float]] = defaultdict(list)
    failures: dict[str, Counter] = defaultdict(Counter)
    window = [float("inf"), float("inf")]
    accounts = list(spec["accounts"])

    def on_request(request_type: str, name: str, response_time: float, response_length: int,
                   exception: BaseException | None = None, **_: Any) -> None:
        now = time.perf_counter()
        if now > window[1]:
            return  # the stop interrupts requests in flight: not the server's doing
        if exception is not None:
            failures[name][str(exception)[:300]] += 1  # warm-up included
        elif now >= window[0]:
            latencies[name].append(response_time / 1000)

    class Client(FastHttpUser):
        abstract = True
        wait_time = constant(spec["think"])
        network_timeout = connection_timeout = 180.0

        def call(self, kind: str, path: str, expect: int, method: str = "GET", body: bytes | None = None,
                 headers: dict[str, str] | None = None, pattern: re.Pattern | None = None) -> str | None:
            """One request; its page (or Location) when the status and `pattern` are as expected, else None."""
            if not spec["keep_alive"]:
                headers = {**(headers or {}), "Connection": "close"}
            with self.client.request(method, path, name=kind, data=body, headers=headers, catch_response=True,
                                     allow_redirects=False) as response:
                status, location = response.status_code, (response.headers or {}).get("Location") or ""
                text = (response.text or "") if status == 200 else location
                if status != expect:
                    detail = re.sub(r"\s+", " ", (response.text or "") if status else str(response.error))[:200]
                    response.failure(f"{status} (expected {expect}) {location} {detail}".replace("  ", " "))
                    return None
                if pattern is not None and not pattern.search(text):
                    flat = re.sub(r"\s+", " ", text)[:200]
                    response.failure(f"{status} without {pattern.pattern!r}: {flat}")
                    return None
                response.success()
                return text

    class Public(Client):
        weight = 3

        @task(8)
        def board(self) -> None:
            self.client.cookiejar.clear()  # a new phone scanning a board's QR code
            self.call("board", f"/b/{SCHEME}/{secrets.choice(list(ROADS.values()))}", 200)

        @task(2)
        def report(self) -> None:
            self.client.cookiejar.clear()
            road = secrets.choice(list(ROADS.values()))
            page = self.call("report form", f"{REPORT_URL}?area={road}", 200, pattern=STAMP)
            if page is None:
                return
            fields = {"csrf_token": CSRF.search(page).group(1), "_token": TOKEN.search(page).group(1),
                      "_stamp": STAMP.search(page).group(1), "_action": "submit", "website": "",
                      "category": secrets.choice(CATEGORIES), "location-area": road, "location-lat": "",
                      "location-lng": "", "location-accuracy": "", "address": "门口", "description": "商户占道堆放货物",
                      "reporter_name": "", "reporter_phone": ""}
            body, content_type = multipart(fields, {"photos_before": photo})
            self.call("report POST", REPORT_URL, 303, "POST", body, {"Content-Type": content_type},
                      re.compile(r"/p/track/\w+"))

    class Staff(Client):
        weight = 2

        def on_start(self) -> None:
            self.name, self.password, self.community = accounts[0]
            accounts.append(accounts.pop(0))
            self.cases: list[str] = []
            page = self.call("login form", "/login", 200, pattern=CSRF)
            if page is None:
                raise RuntimeError("no log-in form")
            body = urllib.parse.urlencode({"csrf_token": CSRF.search(page).group(1), "username": self.name,
                                           "password": self.password}).encode()
            if self.call("login POST", "/login", 302, "POST", body,
                         {"Content-Type": "application/x-www-form-urlencoded"}, re.compile(r"^(?!.*/login)")) is None:
                raise RuntimeError("not logged in")

        @task(4)
        def queue(self) -> None:
            page = self.call("queue", f"/cases/{SCHEME}/?box=unit", 200)
            if page is not None:
                self.cases = CASE_LINK.findall(page) or self.cases

        @task(6)
        def case(self) -> None:
            if not self.cases:
                return self.queue()
            self.call("case", f"/cases/case/{secrets.choice(self.cases)}", 200)

        @task(1)
        def patrol(self) -> None:
            page = self.call("patrol form", PATROL_URL, 200, pattern=STARTED)
            if page is None:
                return
            road = ROADS[self.community]
            fields = {"csrf_token": CSRF.search(page).group(1), "_token": TOKEN.search(page).group(1),
                      "_action": "submit", "area": road, "started_at": STARTED.search(page).group(1),
                      "ended_at": "", "location-lat": "", "location-lng": "", "location-accuracy": "",
                      "location-area": "", "route": "", "participants": "2", "findings": "巡查路段，路面整洁"}
            files = {"photos": photo}
            if secrets.randbelow(3) == 0:  # a problem not settled on the spot: the patrol opens a case
                fields |= {"has_problems": "yes", "problems-0-problem_category": secrets.choice(CATEGORIES),
                           "problems-0-problem_description": "占道堆放杂物", "problems-0-problem_size_m3": "",
                           "problems-0-problem_fixed_on_spot": "no"}
                files["problems-0-problem_photos"] = photo
            else:
                fields["has_problems"] = "no"
            body, content_type = multipart(fields, files)
            self.call("patrol POST", PATROL_URL, 303, "POST", body, {"Content-Type": content_type},
                      re.compile(r"/f/records/\d+"))

    env = Environment(user_classes=[Public, Staff], host=spec["host"])
    env.events.request.add_listener(on_request)
    runner = env.create_local_runner()
    runner.start(spec["users"], spawn_rate=max(spec["users"], 1))
    gevent.sleep(spec["warmup"])
    window[0] = time.perf_counter()
    window[1] = window[0] + spec["seconds"]
    sessions = {**spec["sessions"], "driver": os.getsid(0)}
    before, cpu = cpu_sample(sessions, spec["trees"]), time.process_time()
    gevent.sleep(spec["seconds"])
    after, cpu = cpu_sample(sessions, spec["trees"]), time.process_time() - cpu
    end = time.perf_counter()
    runner.quit()
    Path(spec["out"]).write_text(json.dumps({
        "seconds": end - window[0], "latencies": latencies, "failures": {k: dict(v) for k, v in failures.items()},
        "driver_cpu": cpu / (end - window[0]), "cpu_warning": bool(runner.cpu_warning_emitted),
        "cpu": {k: after[k] - before[k] for k in after}}), encoding="utf-8")
    return 0


# -- the bare app ------------------------------------------------------------------------------------------------


def bare_tables() -> tuple[Any, Any, Any, Any]:
    """The bare app's tables: metadata, areas, items (reports and patrols), users."""
    from sqlalchemy import Column, Integer, MetaData, String, Table, Text

    metadata = MetaData()
    areas = Table("areas", metadata, Column("key", String(64), primary_key=True), Column("name", String(200)))
    items = Table("items", metadata, Column("id", Integer, primary_key=True, autoincrement=True),
                  Column("kind", String(20), nullable=False), Column("unit", String(64)), Column("area", String(64)),
                  Column("body", Text), Column("photo", String(300)))
    users = Table("users", metadata, Column("name", String(64), primary_key=True),
                  Column("password_hash", String(300)), Column("unit", String(64)))
    return metadata, areas, items, users


def bare_app() -> Any:
    """The bare baseline (gunicorn `load:bare_app()`): our URLs, forms and statuses, one small read or insert each."""
    from flask import Flask, abort, redirect, request, session
    from markupsafe import escape
    from sqlalchemy import create_engine, event, func, insert, select
    from werkzeug.security import check_password_hash

    url = os.environ["BARE_DATABASE_URL"]
    uploads = Path(os.environ["BARE_UPLOADS"])
    engine = create_engine(url, pool_pre_ping=True)
    if url.startswith("sqlite"):
        @event.listens_for(engine, "connect")
        def _connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # as ours: SQLAlchemy emits BEGIN itself
            dbapi_connection.execute("PRAGMA journal_mode=WAL")
            dbapi_connection.execute("PRAGMA busy_timeout=30000")

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE" if request.method == "POST" else "BEGIN")

    _metadata, areas, items, users = bare_tables()
    app = Flask(__name__)
    app.secret_key = os.environ["BARE_SECRET"]

    def page(title: str, body: str) -> str:
        return f"<!doctype html><html><head><title>{escape(title)}</title></head><body>{body}</body></html>"

    def csrf() -> str:
        session.setdefault("csrf", secrets.token_hex(16))
        return session["csrf"]

    def hidden(name: str, value: str) -> str:
        return f'<input type="hidden" name="{name}" value="{escape(value)}">'

    def checked() -> None:
        if not request.form.get("csrf_token") or request.form.get("csrf_token") != session.get("csrf"):
            abort(400)

    def staff() -> Any:
        if "user" not in session:
            abort(redirect("/login"))
        return session["user"]

    def add(kind: str, area: str | None, body: str, photo: bytes | None) -> int:
        path, unit = "", {road: community for community, road in ROADS.items()}.get(area or "")
        if photo:
            path = str(uploads / secrets.token_hex(16))
            Path(path).write_bytes(photo)
        with engine.begin() as conn:
            return conn.execute(insert(items).values(kind=kind, unit=unit, area=area, body=body,
                                                     photo=path).returning(items.c.id)).scalar_one()

    @app.get("/healthz")
    def healthz() -> Any:
        with engine.connect() as conn:
            conn.execute(select(1))
        return {"status": "ok"}

    @app.route("/login", methods=["GET", "POST"])
    def login() -> Any:
        if request.method == "GET":
            return page("login", f'<form method="post">{hidden("csrf_token", csrf())}</form>')
        checked()
        with engine.connect() as conn:
            user = conn.execute(select(users).where(users.c.name == request.form.get("username"))).first()
        if user is None or not check_password_hash(user.password_hash, request.form.get("password", "")):
            return page("login", "wrong password"), 200
        session["user"], session["unit"] = user.name, user.unit
        return redirect("/", 302)

    @app.get("/b/<scheme>/<road>")
    def board(scheme: str, road: str) -> Any:
        with engine.connect() as conn:
            name = conn.execute(select(areas.c.name).where(areas.c.key == road)).scalar()
        return page(name or abort(404), f"<h1>{escape(name)}</h1>")

    @app.route("/p/<scheme>/report", methods=["GET", "POST"])
    def report(scheme: str) -> Any:
        if request.method == "GET":
            with engine.connect() as conn:
                options = conn.execute(select(areas.c.key, areas.c.name)).all()
            fields = "".join(f'<option value="{escape(k)}">{escape(n)}</option>' for k, n in options)
            return page("report", f'<form method="post" enctype="multipart/form-data">{hidden("csrf_token", csrf())}'
                                  f'{hidden("_token", secrets.token_urlsafe(24))}{hidden("_stamp", "0")}'
                                  f'<select name="location-area">{fields}</select></form>')
        checked()
        photo = request.files.get("photos_before")
        add("report", request.form.get("location-area"), request.form.get("description", ""),
            photo.read() if photo else None)
        return redirect(f"/p/track/{secrets.token_hex(5).upper()}", 303)

    @app.get("/cases/<scheme>/")
    def queue(scheme: str) -> Any:
        staff()
        with engine.connect() as conn:
            ids = conn.scalars(select(items.c.id).where(items.c.unit == session.get("unit"))
                               .order_by(items.c.id.desc()).limit(50)).all()
        return page("queue", "".join(f'<a href="/cases/case/{i}">#{i}</a>' for i in ids))

    @app.get("/cases/case/<int:case_id>")
    def case(case_id: int) -> Any:
        staff()
        with engine.connect() as conn:
            row = conn.execute(select(items).where(items.c.id == case_id)).first()
        return page(f"#{case_id}", f"<p>{escape(row.body)}</p>" if row else abort(404))

    @app.route("/f/<scheme>/patrol_log/new", methods=["GET", "POST"])
    def patrol(scheme: str) -> Any:
        staff()
        if request.method == "GET":
            with engine.connect() as conn:
                n = conn.execute(select(func.count()).select_from(areas)).scalar()
            return page("patrol", f'<form method="post">{hidden("csrf_token", csrf())}'
                                  f'{hidden("_token", secrets.token_urlsafe(24))}'
                                  f'<input name="started_at" value="2026-11-20T09:00"><p>{n} areas</p></form>')
        checked()
        photo = request.files.get("photos")
        # Ours adds the patrol's problem as a case for the unit, in the same transaction: one insert here.
        record = add("patrol", request.form.get("area"), request.form.get("findings", ""),
                     photo.read() if photo else None)
        return redirect(f"/f/records/{record}", 303)

    return app


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
