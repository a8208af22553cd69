"""Public pages under load over HTTP: the report form (its GET and its POST) and a road's board page, served
by gunicorn on PostgreSQL, against a bare Flask app doing the same database work, in the same run.

Starts a throwaway PostgreSQL cluster, migrates it and loads the demo district (Lidu, with a chief at three
tiers over Shilong Old Street, as bench/boards.py does) grown to a city's roads by bench/city.py: `--roads`
more roads (2,000 by default) with their segments, so that the form's place picker has a city to choose from;
with `--city`, the whole district of bench/city.py instead (units, staff, a year of cases and patrols, times
`--scale`). Then two gunicorn servers on free loopback ports with the same number of sync workers: ours
(`server:create_app()`) and the bare app of bench/_bare_public.py (SQLAlchemy Core: for the form the
definitions in force and the count of places its picker offers, and our page's HTML rendered from a template
compiled once, as a hand-written Flask app would: `bare_report_page`; for a report the area
lookup and the same rows inserted in one transaction; for a board the same SELECTs of the area, the areas and
units above it and the chiefs' posts, and a bare HTML list).

A load generator of client threads (http.client, one connection each, on 127.0.0.1) drives each figure:
requests per second, p50 and p95 latency, errors (the form and a board must answer 200, a report 303 to its
tracking page). A form GET comes without cookies, as from a phone that scans a board's QR code.
The measured seconds are split into rounds, ours and bare taking turns, after a warm-up, so that other work on
a shared machine weighs on both alike. Each report client first GETs the form once a round, as a phone would,
for its session cookie, CSRF token and signed stamp, then POSTs it again and again with a fresh `_token` (one
new report each); it keeps the cookies of that GET (the 303 adds a flash message to the session, which the
status page a browser follows to would clear). The target (issue 8): ours at least 0.5 of the bare requests
per second, for both figures. Beside each figure, CPU time a request (the server's workers, PostgreSQL, the
load generator) and the share of the machine other processes took; beside each ratio, the same ratio from
the CPU time a request, which holds when the machine is busy with other work. The rows each report wrote are
counted per table for both servers, to show that the bare one does the same inserts. `--profile N` then
runs N requests of each figure in-process (Flask's test client, same database): CPU and SQL statements a
request, by kind, and a cProfile of our code.

For the bench only, ours runs with FANGAN_REPORT_LIMIT and FANGAN_PUBLIC_LIMIT at 1000000 per minute (the
limiter still counts every request, in memory, and refuses none) and FANGAN_MIN_FILL_SECONDS at 0.

Run: .venv/bin/python bench/public.py [--seconds 20] [--rounds 4] [--warmup 5] [--clients 8] [--workers 4]
                                      [--roads 2000 | --city [--scale 0.1]] [--photo] [--profile 100]
(starts and removes its own PostgreSQL cluster and both servers; exits 1 when a figure misses the target or
a request failed; as root the database server runs as the postgres user)
"""

from __future__ import annotations

import argparse
import http.client
import io
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
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from sqlalchemy import create_engine, make_url, text  # noqa: E402

from server import create_app  # noqa: E402
from server.extensions import db  # noqa: E402
from tests.support.postgres import create_database, free_port, temporary_cluster  # noqa: E402

SCHEME, ROAD, CATEGORY = "lidu", "shilong_old_street", "random_piling"
REPORT_PATH, BOARD_PATH = f"/p/{SCHEME}/report", f"/b/{SCHEME}/{ROAD}"
TARGET = 0.5
LATENCY_TARGET = 1.5  # issue 18: the report form's page at most this times the bare page's latency (p95)
LIMIT = "1000000 per minute"
SECRET = secrets.token_hex(16)  # a throwaway key for this run
CLOCK = os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20, help="measured seconds per figure and server")
    parser.add_argument("--rounds", type=int, default=4,
                        help="the measured seconds are split into rounds, ours and bare in turn (a shared "
                             "machine's other load then weighs on both alike)")
    parser.add_argument("--warmup", type=float, default=5, help="unmeasured seconds before a server's first round")
    parser.add_argument("--clients", type=int, default=8, help="client threads (concurrent requests)")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers per server")
    parser.add_argument("--photo", action="store_true", help="send a 64x48 JPEG with each report (default: none)")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="then profile N requests of each figure in-process (test client, same database)")
    parser.add_argument("--roads", type=int, default=2_000, help="roads added to the demo district (bench/city.py)")
    parser.add_argument("--city", action="store_true",
                        help="add bench/city.py's whole district (units, staff, a year of cases) instead of roads")
    parser.add_argument("--scale", type=float, default=1.0, help="with --city: its size, times this")
    args = parser.parse_args()
    photo = _jpeg() if args.photo else None
    figures: list[Figure] = []
    with temporary_cluster(durable=True) as admin_url, tempfile.TemporaryDirectory(prefix="fangan-bench-") as folder:
        url = create_database(admin_url, "fangan_bench")
        settings, pg_version, volume = prepare(url, folder, args)
        counter = create_engine(url)
        database = make_url(url).port
        ours = Server("ours", f"server:create_app({_ours_config(folder)!r})", ROOT, url, args.workers, folder)
        bare = Server("bare", f"_bare_public:create_app({settings!r})", ROOT / "bench", url, args.workers, folder)
        with ours, bare:
            for scenario in scenarios(photo):
                pair = [Figure(scenario.name, server.name) for server in (ours, bare)]
                for round_ in range(args.rounds):
                    for server, figure in zip((ours, bare), pair, strict=True):
                        before = _rows(counter)
                        done = figure.done
                        drive(server, scenario, figure, args.clients, args.warmup if round_ == 0 else 1.0,
                              args.seconds / args.rounds, database)
                        after = _rows(counter)
                        for table in after:
                            figure.rows[table] = figure.rows.get(table, 0) + after[table] - before.get(table, 0)
                        figure.rows["_requests"] = figure.rows.get("_requests", 0) + figure.done - done
                figures += pair
        counter.dispose()
        failed = report(figures, args, pg_version, photo, volume)
        print_statements(url, folder, settings, photo)
        if args.profile:
            profile(url, folder, photo, args.profile)
    return failed


# -- set-up --------------------------------------------------------------------------------------------------


def prepare(url: str, folder: str, args: argparse.Namespace) -> tuple[dict[str, Any], str, str]:
    """Migrate, load the demo district, appoint chiefs over the road, grow it to a city's size; the ids the bare
    app needs, PostgreSQL's version and what the district holds."""
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": SECRET, "TESTING": True})
    app.instance_path = folder
    with app.app_context():
        from city import Size, seed_city
        from flask_migrate import upgrade

        from server.boards import service as boards
        from server.org.posts import appoint
        from server.public import service as public
        from server.workflow import engine as workflow_engine
        from server.workflow import service as workflow
        from tests.support.factories import load_demo

        upgrade()
        load_demo()
        appoint(SCHEME, "main_leader", "王主任", unit_key="lidu_street")
        appoint(SCHEME, "community_head", "李书记", area_key="shilong_town")
        appoint(SCHEME, "segment_keeper", "张三", area_key=ROAD, phone="13900000002")
        db.session.commit()
        size = Size().scaled(args.scale) if args.city else Size(roads=args.roads, units=0, staff=0, cases_per_day=0)
        city = seed_city(SCHEME, roads=size.roads, units=size.units, staff=size.staff,
                         cases_per_day=size.cases_per_day, days=size.days)
        areas = db.session.scalar(text("SELECT count(*) FROM areas WHERE scheme_key = :s"), {"s": SCHEME})
        volume = f"{areas:,} areas in all; added by bench/city.py: {city.volume()}"
        form_version, spec = public.report_form(SCHEME)
        row = workflow.workflow_version(SCHEME, workflow.workflow_for_category(SCHEME, CATEGORY))
        flow = workflow_engine.workflow_spec(row.data)
        board = boards.board_definition(SCHEME, boards.get_area(SCHEME, ROAD))
        pg_version = db.session.scalar(text("SHOW server_version"))
        db.session.remove()
    # The bare app's form page: ours as a hand-written app would write it (see bare_report_page).
    page = app.test_client().get(f"/p/{SCHEME}/report")
    assert page.status_code == 200, page.status_code
    template, categories = bare_report_page(page.get_data(as_text=True))
    (Path(folder) / "bare_report.html").write_text(template, encoding="utf-8")
    settings = {"database_url": url, "secret": SECRET, "form_key": spec.id, "form_version_id": form_version.id,
                "workflow_key": flow.id, "workflow_version_id": row.id, "initial_state": flow.initial,
                "initial_kind": flow.kind_of(flow.initial), "tiers": list(board.get("tiers", [])),
                "categories": categories, "report_template": str(Path(folder) / "bare_report.html")}
    with app.app_context():
        db.engine.dispose()
    return settings, pg_version, volume


OPTIONS = re.compile(r'(<select id="category"[^>]*>\s*<option value="">[^<]*</option>)(.*?)(\s*</select>)', re.S)
OPTION = re.compile(r'(<optgroup label="([^"]*)">)|(</optgroup>)|<option value="([^"]*)"(?: data-full="([^"]*)")?>'
                    r'([^<]*)</option>')
TOKENS = [(re.compile(r'(name="(?:csrf_token|_token|_stamp)" value=")[^"]*(")'), "token"),
          (re.compile(r'(data-csrf=")[^"]*(")'), "token")]
PLACES = re.compile(r'(<p class="hint" id="location-area-places">[^<0-9]*)(\d+)')


def bare_report_page(page: str) -> tuple[str, list[list[Any]]]:
    """Our report form's page as the template a hand-written Flask app would render for it: the same HTML
    (layout, words, fields, the offline outbox's texts), compiled once, with what changes per request in Jinja —
    the tokens, the count of places, and the category options drawn by a loop over the same (group, value,
    full name, short name) rows, unescaped once and escaped again as the template writes them. What ours adds
    (the form engine reading the definition, permissions, sessions, rate limits, translations) is what the
    comparison measures."""
    import html as html_module

    assert "{{" not in page and "{%" not in page and "{#" not in page, "the page reads as Jinja"
    found = OPTIONS.search(page)
    assert found, "the category list was not found on our page"
    categories, group = [], None
    for opening, label, closing, value, full, shown in OPTION.findall(found.group(2)):
        if opening:
            group = html_module.unescape(label)
        elif closing:
            group = None
        else:
            unescape = html_module.unescape
            categories.append([group, unescape(value), unescape(full) if full else None, unescape(shown)])
    loop = ("{% set ns = namespace(group=none) %}{% for group, value, full, shown in categories %}"
            "{% if group != ns.group %}{% if ns.group %}</optgroup>{% endif %}"
            "{% if group %}<optgroup label=\"{{ group }}\">{% endif %}{% set ns.group = group %}{% endif %}"
            "<option value=\"{{ value }}\"{% if full %} data-full=\"{{ full }}\"{% endif %}>{{ shown }}</option>"
            "{% endfor %}{% if ns.group %}</optgroup>{% endif %}")
    template = page[:found.start(2)] + loop + page[found.end(2):]
    for pattern, name in TOKENS:
        template, n = pattern.subn(rf"\g<1>{{{{ {name}() }}}}\g<2>", template)
        assert n, pattern.pattern
    template, n = PLACES.subn(r"\g<1>{{ places }}", template)
    assert n == 1, "the count of places was not found on our page"
    return template, categories


def _ours_config(folder: str) -> dict[str, Any]:
    """Bench-only settings, passed to the app factory (the rest comes from the environment, as in production)."""
    return {"FANGAN_REPORT_LIMIT": LIMIT, "FANGAN_PUBLIC_LIMIT": LIMIT, "FANGAN_MIN_FILL_SECONDS": 0,
            "FANGAN_UPLOAD_DIR": str(Path(folder) / "uploads")}


def _rows(engine: Any) -> dict[str, int]:
    """Rows in every table of the database."""
    with engine.connect() as conn:
        tables = conn.scalars(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).all()
        return {t: conn.scalar(text(f'SELECT count(*) FROM "{t}"')) for t in tables}  # noqa: S608 - its own names


def _jpeg() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), "orange").save(buffer, "JPEG")
    return buffer.getvalue()


class Server:
    """A gunicorn server with sync workers on a free loopback port, for the length of a `with` block."""

    def __init__(self, name: str, app_spec: str, path: Path, database_url: str, workers: int, folder: str) -> None:
        self.name, self.app_spec, self.path, self.workers = name, app_spec, path, workers
        self.port = free_port()
        self.log = Path(folder) / f"gunicorn-{name}.log"
        self.env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": SECRET, "FANGAN_SECURE_COOKIES": "0"}
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Server:
        command = [sys.executable, "-m", "gunicorn", "--workers", str(self.workers), "--worker-class", "sync",
                   "--bind", f"127.0.0.1:{self.port}", "--pythonpath", str(self.path), "--log-level", "warning",
                   self.app_spec]
        with self.log.open("w") as log:
            # Our own interpreter and arguments: nothing here comes from outside the bench.
            self.process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log,  # noqa: S603
                                            stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn ({self.name}) stopped:\n{self.log.read_text()[-3000:]}")
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            try:
                conn.request("GET", BOARD_PATH)
                if conn.getresponse().status == 200:
                    return self
            except OSError:
                pass
            finally:
                conn.close()
            time.sleep(0.2)
        self.__exit__()
        raise RuntimeError(f"gunicorn ({self.name}) did not answer:\n{self.log.read_text()[-3000:]}")

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def worker_pids(self) -> list[int]:
        return [pid for pid, parent in _processes() if parent == self.process.pid]


# -- load ------------------------------------------------------------------------------------------------------


@dataclass
class Call:
    method: str
    path: str
    body: bytes | None
    headers: dict[str, str]


class FormScenario:
    """The report form's page, as a phone that scanned a board's QR code asks for it: no cookies."""

    name, expect = "report GET", 200

    def prepare(self, conn: http.client.HTTPConnection) -> dict[str, Any]:
        return {}

    def call(self, state: dict[str, Any]) -> Call:
        return Call("GET", REPORT_PATH, None, {})


class BoardScenario:
    name, expect = "board GET", 200

    def prepare(self, conn: http.client.HTTPConnection) -> dict[str, Any]:
        return {}

    def call(self, state: dict[str, Any]) -> Call:
        return Call("GET", BOARD_PATH, None, {})


class ReportScenario:
    name, expect = "report POST", 303

    def __init__(self, photo: bytes | None) -> None:
        self.photo = photo

    def prepare(self, conn: http.client.HTTPConnection) -> dict[str, Any]:
        """GET the form once, as a phone would: its session and device cookies, CSRF token and signed stamp."""
        conn.request("GET", REPORT_PATH)
        response = conn.getresponse()
        html = response.read().decode()
        if response.status != 200:
            raise RuntimeError(f"GET {REPORT_PATH}: {response.status}")
        return self.state(html, response.headers.get_all("Set-Cookie") or [])

    @staticmethod
    def state(html: str, set_cookies: list[str]) -> dict[str, Any]:
        fields = {name: re.search(rf'name="{name}"[^>]*value="([^"]*)"', html).group(1)
                  for name in ("csrf_token", "_stamp")}
        return {"cookies": "; ".join(c.split(";", 1)[0] for c in set_cookies), "fields": fields}

    def call(self, state: dict[str, Any]) -> Call:
        # What a browser sends for this form, without a photo unless asked: a fresh _token makes a new report.
        fields = {**state["fields"], "_token": secrets.token_urlsafe(24), "_action": "submit", "website": "",
                  "category": CATEGORY, "location-area": ROAD, "location-lat": "", "location-lng": "",
                  "location-accuracy": "", "address": "", "description": "商户占道堆放货物，影响通行",
                  "reporter_name": "", "reporter_phone": ""}
        files = {"photos_before": ("p.jpg", self.photo)} if self.photo else {}
        body, content_type = _multipart(fields, files)
        headers = {"Content-Type": content_type}
        if state["cookies"]:
            headers["Cookie"] = state["cookies"]
        return Call("POST", REPORT_PATH, body, headers)


def scenarios(photo: bytes | None) -> tuple[Any, ...]:
    """The figures, in the order they run."""
    return (FormScenario(), ReportScenario(photo), BoardScenario())


def _multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = secrets.token_hex(12)
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
             for k, v in fields.items()]
    for key, (filename, content) in files.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"; filename="{filename}"\r\n'
                     f"Content-Type: image/jpeg\r\n\r\n".encode() + content + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


@dataclass
class Figure:
    """One scenario against one server: the measured window, and every request for the row counts."""

    scenario: str
    server: str
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)
    first_error: str = ""
    done: int = 0  # expected answers, warm-up included
    cpu: dict[str, float] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)  # rows added per table, and "_requests" answered

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds

    def quantile(self, q: float) -> float:
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[round(q * 100) - 1] * 1000


def drive(server: Server, scenario: Any, figure: Figure, clients: int, warmup: float, seconds: float,
          database_port: int) -> None:
    """Run `clients` threads for `warmup` + `seconds`; add what starts inside the measured window to `figure`."""
    lock = threading.Lock()
    ready, go = threading.Barrier(clients + 1), threading.Event()
    window: list[float] = []  # [start, end] of the measured part, set once every client is ready

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        state = scenario.prepare(conn)
        ready.wait()
        go.wait()
        mine: list[float] = []
        errors: Counter = Counter()
        first, done = "", 0
        while (start := time.perf_counter()) < window[1]:
            call = scenario.call(state)
            try:
                conn.request(call.method, call.path, call.body, call.headers)
                response = conn.getresponse()
                body = response.read()
                status: int | str = response.status
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                status, body = type(exc).__name__, str(exc).encode()
            elapsed = time.perf_counter() - start
            if status == scenario.expect:
                done += 1
                if start >= window[0]:
                    mine.append(elapsed)
            else:  # in the warm-up too: every failure is an error
                errors[status] += 1
                first = first or f"{status}: {body[:300].decode(errors='replace')}"
        conn.close()
        with lock:
            figure.latencies += mine
            figure.errors.update(errors)
            figure.done += done
            figure.first_error = figure.first_error or first

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    ready.wait()
    now = time.perf_counter()
    window += [now + warmup, now + warmup + seconds]
    go.set()
    time.sleep(warmup)
    before = _cpu_sample(server, database_port)
    time.sleep(seconds)
    after = _cpu_sample(server, database_port)
    for thread in threads:
        thread.join()
    figure.seconds += seconds
    for key in after:
        figure.cpu[key] = figure.cpu.get(key, 0.0) + after[key] - before[key]


# -- CPU time (Linux /proc) ------------------------------------------------------------------------------------


def _processes() -> list[tuple[int, int]]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                out.append((int(entry.name), int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])))
            except (OSError, IndexError, ValueError):
                continue
    return out


def _process_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK  # utime + stime


def _database_pids(port: int) -> list[int]:
    """The PostgreSQL server listening on `port` and its processes (backends, writers)."""
    marker = f"\0-p\0{port}\0".encode()
    processes = _processes()
    for pid, _parent in processes:
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if command.split(b"\0", 1)[0].endswith(b"/postgres") and marker in command:
            return [pid, *(child for child, parent in processes if parent == pid)]
    return []


def _cpu_sample(server: Server, database_port: int) -> dict[str, float]:
    """CPU seconds so far: the server's workers, the database server, this process (the load generator), and
    the whole machine busy (with whatever else runs on it)."""
    numbers = [int(n) for n in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = numbers[3] + numbers[4]  # idle + iowait
    return {"app": sum(_process_cpu(pid) for pid in server.worker_pids()),
            "database": sum(_process_cpu(pid) for pid in _database_pids(database_port)),
            "client": time.process_time(), "busy": (sum(numbers[:8]) - idle) / CLOCK}


# -- report ------------------------------------------------------------------------------------------------------


def report(figures: list[Figure], args: argparse.Namespace, pg_version: str, photo: bytes | None,
           volume: str) -> int:
    """Print the figures; 1 when a ratio misses the target or a request failed."""
    cpus = os.cpu_count() or 1
    print(f"public pages over HTTP on 127.0.0.1: gunicorn {version('gunicorn')}, {args.workers} sync workers per "
          f"server, PostgreSQL {pg_version.split()[0]} (throwaway cluster, durable as in production: fsync on); "
          f"{cpus} CPUs shared by "
          "the load generator, the servers and the database")
    print(f"district: the demo's (Lidu) with {volume}")
    print(f"load: {args.clients} client threads (http.client; a sync worker closes the connection after each "
          f"answer); {args.seconds:g} s measured per figure and server, in {args.rounds} round"
          f"{'s' if args.rounds != 1 else ''} taking turns "
          f"(ours, bare, ours, ...), after a {args.warmup:g} s warm-up (1 s in later rounds)")
    print("report GET: the form's page without cookies (a new visitor each time); warm, as every figure")
    print(f"report POST: multipart, a fresh _token each (one new report each), "
          f"{f'a {len(photo)}-byte 64x48 JPEG photo' if photo else 'no photo'}; each client GETs the form once "
          "a round for its cookies, CSRF token and stamp (not timed)")
    print(f"ours runs with FANGAN_REPORT_LIMIT and FANGAN_PUBLIC_LIMIT = {LIMIT} (limits counted in memory, none "
          "refused) and FANGAN_MIN_FILL_SECONDS = 0")
    print()
    print(f"  {'figure':<12} {'server':<6} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'errors':>7}"
          f"   {'CPU ms a request: app':>21} {'database':>9} {'client':>7}   {'other load':>10}")
    for f in figures:
        n = max(len(f.latencies), 1)
        app, database, client = (f.cpu[k] / n * 1000 for k in ("app", "database", "client"))
        other = (f.cpu["busy"] - f.cpu["app"] - f.cpu["database"] - f.cpu["client"]) / (f.seconds * cpus)
        p50, p95 = (f.quantile(0.5), f.quantile(0.95)) if len(f.latencies) > 1 else (0.0, 0.0)
        print(f"  {f.scenario:<12} {f.server:<6} {len(f.latencies):>9,} {f.rate:8.1f} {p50:8.1f} {p95:8.1f} "
              f"{sum(f.errors.values()):>7}   {app:21.2f} {database:9.2f} {client:7.2f}   {other:10.0%}")
    print("  (other load: the machine's CPU used by neither the server, the database nor the load generator)")
    print()
    for f in figures:
        written = {t: n for t, n in f.rows.items() if n and t != "_requests"}
        if f.scenario == ReportScenario.name or written:
            per = max(f.rows.get("_requests", 0), 1)
            print(f"rows written per {f.scenario}, {f.server}: "
                  + (", ".join(f"{t} {n / per:.2f}".rstrip("0").rstrip(".") for t, n in sorted(written.items()))
                     or "none"))
    print()
    failed = False
    print(f"ratio of requests per second, ours / bare (target: at least {TARGET}); beside it, for a machine busy with "
          "other work, the inverse ratio of CPU time a request (app + database + client):")
    for name in dict.fromkeys(f.scenario for f in figures):
        ours, bare = (next(f for f in figures if f.scenario == name and f.server == s) for s in ("ours", "bare"))
        ratio = ours.rate / bare.rate if bare.rate else 0.0
        failed |= ratio < TARGET
        print(f"  {name:<12} {ratio:5.2f}   {'PASS' if ratio >= TARGET else 'FAIL'}   by CPU time "
              f"{_cpu_per_request(bare) / max(_cpu_per_request(ours), 1e-9):.2f}")
    # Issue 18: the form's page, whole, at most LATENCY_TARGET times the bare page's latency.
    gets = {f.server: f for f in figures if f.scenario == FormScenario.name and len(f.latencies) > 1}
    if len(gets) == 2:
        p50, p95 = (gets["ours"].quantile(q) / max(gets["bare"].quantile(q), 1e-9) for q in (0.5, 0.95))
        met = p95 <= LATENCY_TARGET
        failed |= not met
        print(f"latency of the report form's page, ours / bare (target: at most {LATENCY_TARGET}): p50 {p50:.2f}, "
              f"p95 {p95:.2f}   {'PASS' if met else 'FAIL'}")
    for f in figures:
        if f.errors:
            failed = True
            print(f"ERROR: {f.scenario} on {f.server}: {dict(f.errors)}; first: {f.first_error}")
    return 1 if failed else 0


def _cpu_per_request(f: Figure) -> float:
    return (f.cpu["app"] + f.cpu["database"] + f.cpu["client"]) / max(len(f.latencies), 1)


# -- statements ------------------------------------------------------------------------------------------------


def _statement_kind(statement: str) -> str:
    table = re.search(r"\b(?:FROM|INTO|UPDATE)\s+(\w+)", statement)
    return f"{statement.split(None, 1)[0]} {table.group(1) if table else ''}".strip()


def print_statements(url: str, folder: str, settings: dict[str, Any], photo: bytes | None, requests: int = 10) -> None:
    """The SQL statements a request runs, by kind, for both servers (in-process, same database): the bare app
    is meant to do the same database work as ours, and this shows whether it does."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    sys.path.insert(0, str(ROOT / "bench"))
    from _bare_public import create_app as create_bare

    ours = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": SECRET, "SESSION_COOKIE_SECURE": False,
                       **_ours_config(folder)})
    ours.instance_path = folder
    page = ours.test_client(use_cookies=False).get(REPORT_PATH)
    state = ReportScenario.state(page.get_data(as_text=True), page.headers.getlist("Set-Cookie"))
    statements: Counter = Counter()

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements[_statement_kind(statement)] += 1

    event.listen(Engine, "before_cursor_execute", count)
    print("\nSQL statements a request (in-process, the same database):")
    try:
        for scenario in scenarios(photo):
            for name, app in (("ours", ours), ("bare", create_bare(settings))):
                client = app.test_client(use_cookies=False)
                for _ in range(3):
                    _one(client, scenario, state)
                statements.clear()
                for _ in range(requests):
                    _one(client, scenario, state)
                print(f"  {scenario.name:<12} {name:<5} {statements.total() / requests:4.1f}: "
                      + ", ".join(f"{kind} {n / requests:g}" for kind, n in sorted(statements.items())))
    finally:
        event.remove(Engine, "before_cursor_execute", count)
    with ours.app_context():
        db.session.remove()
        db.engine.dispose()


def _one(client: Any, scenario: Any, state: dict[str, Any]) -> None:
    call = scenario.call(state)
    response = client.open(call.path, method=call.method, data=call.body, headers=call.headers)
    assert response.status_code == scenario.expect, response.status_code


# -- profile ---------------------------------------------------------------------------------------------------


def profile(url: str, folder: str, photo: bytes | None, requests: int) -> None:
    """Where our time goes: CPU and SQL statements per request in-process, then a cProfile of our code."""
    import cProfile
    import pstats

    from sqlalchemy import event

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": SECRET, "SESSION_COOKIE_SECURE": False,
                      **_ours_config(folder)})
    app.instance_path = folder
    client = app.test_client(use_cookies=False)
    page = client.get(REPORT_PATH)
    state = ReportScenario.state(page.get_data(as_text=True), page.headers.getlist("Set-Cookie"))
    statements: Counter = Counter()

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements[_statement_kind(statement)] += 1

    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", count)
    for scenario in scenarios(photo):
        def one(scenario: Any = scenario) -> None:
            _one(client, scenario, state)

        for _ in range(20):
            one()
        statements.clear()
        cpu = time.process_time()
        for _ in range(requests):
            one()
        cpu = (time.process_time() - cpu) / requests
        print(f"\n-- {scenario.name}, ours in-process: {cpu * 1000:.1f} ms CPU and "
              f"{statements.total() / requests:.0f} SQL statements a request:")
        print("   " + ", ".join(f"{kind} {n / requests:g}" for kind, n in statements.most_common()))
        print(f"   cProfile of {requests} requests, our code by cumulative time:")
        profiler = cProfile.Profile()
        profiler.runcall(lambda: [one() for _ in range(requests)])
        pstats.Stats(profiler, stream=sys.stdout).sort_stats("cumulative").print_stats(r"/server/", 25)
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
