"""Cases at city scale on PostgreSQL: seed N cases over 500 units, then time the inbox, the ledger and transitions.

Each figure is printed beside a bare baseline measured in the same run (the plainest SQL that returns the
same rows, or a bare UPDATE for transitions), with the ratio. Targets (issue 5): inbox p95 under 50 ms,
a district's monthly metrics under 1 s.

Run: .venv/bin/python bench/cases.py [--cases 1000000]   (starts and removes its own PostgreSQL cluster)
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402
from werkzeug.datastructures import MultiDict  # noqa: E402

from server import create_app  # noqa: E402
from server.extensions import db  # noqa: E402
from tests.support.postgres import create_database, temporary_cluster  # noqa: E402


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[int(len(ordered) * 0.95) - 1] * 1000


def timed(fn, runs: int) -> list[float]:  # noqa: ANN001
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


SEED = """
INSERT INTO cases (scheme_key, workflow_key, definition_version_id, state, state_kind, outcome, data, category,
                   unit_id, created_at, updated_at, closed_at, overdue, rework_count, extension_count,
                   reopen_count, version)
SELECT 'lidu', 'discover_assign_rectify_close', :wf,
       CASE WHEN g % 10 = 0 THEN 'assigned' ELSE 'closed' END,
       CASE WHEN g % 10 = 0 THEN 'open' ELSE 'final' END,
       CASE WHEN g % 10 = 0 THEN NULL ELSE 'resolved' END,
       '{}'::jsonb, 'piled_rubbish',
       (array(SELECT id FROM units WHERE scheme_key = 'lidu' ORDER BY id))[1 + g % :units],
       now() - (g % 900) * interval '1 day' - (g % 86400) * interval '1 second',
       now(), CASE WHEN g % 10 = 0 THEN NULL ELSE now() END, g % 37 = 0,
       (g % 13 = 0)::int, (g % 29 = 0)::int, (g % 97 = 0)::int, 1
FROM generate_series(1, :n) AS g
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--units", type=int, default=500)
    args = parser.parse_args()
    with temporary_cluster() as admin_url, tempfile.TemporaryDirectory() as folder:
        url = create_database(admin_url, "fangan_bench")
        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench", "TESTING": True})
        app.instance_path = folder
        with app.app_context():
            run(app, args.cases, args.units)
            db.session.remove()
            db.engine.dispose()


def run(app, cases: int, units: int) -> None:  # noqa: ANN001
    from flask_migrate import upgrade

    from server.auth.service import create_user, grant_role
    from server.definitions.bundle import read_source
    from server.definitions.service import activate_scheme_version, load_scheme
    from server.org.models import Unit
    from server.workflow import inboxes, ledger, service

    upgrade()
    version, _ = load_scheme(read_source(ROOT / "schemes" / "lidu"))
    activate_scheme_version(version.id)
    root = db.session.scalar(db.select(Unit).filter_by(scheme_key="lidu", key="lidu_street"))
    existing = db.session.scalar(db.select(db.func.count(Unit.id)).filter_by(scheme_key="lidu"))
    for i in range(units - existing):
        db.session.add(Unit(scheme_key="lidu", key=f"bench_{i}", kind="community", name=f"社区{i}", parent=root,
                            path=f"{root.path}b{i}/"))
    db.session.flush()
    for unit in db.session.scalars(db.select(Unit).filter_by(scheme_key="lidu")):
        unit.path = f"{root.path}{unit.id}/" if unit.id != root.id else root.path
    db.session.commit()
    workflow = version.member("workflow", "discover_assign_rectify_close").id
    start = time.perf_counter()
    db.session.execute(text("SET LOCAL synchronous_commit = off"))
    db.session.execute(text(SEED), {"wf": workflow, "n": cases, "units": units})
    db.session.execute(text("ANALYZE cases"))
    db.session.commit()
    print(f"seeded {cases:,} cases over {units} units in {time.perf_counter() - start:.1f} s")

    unit_ids = list(db.session.scalars(db.select(Unit.id).filter_by(scheme_key="lidu")))
    user, _ = create_user("bench_head", "Bench", "bench-password-1")
    db.session.commit()
    chosen = random.Random(1).choice(unit_ids)  # noqa: S311 - a benchmark's choice, not a secret
    grant_role(user, "lidu", "unit_head", chosen)
    office, _ = create_user("bench_office", "Office", "bench-password-2")
    grant_role(office, "lidu", "office_admin", None)
    db.session.commit()

    with app.test_request_context():
        def inbox() -> None:
            from flask import g

            g.pop("_scopes", None)
            service.case_queue(user, "lidu", inboxes.QueueQuery(box="unit"))

        def bare_inbox() -> None:
            db.session.execute(text("SELECT count(*) FROM cases WHERE unit_id = :u AND state_kind <> 'final'"),
                               {"u": chosen}).scalar()
            db.session.execute(text("SELECT id FROM cases WHERE unit_id = :u AND state_kind <> 'final' "
                                    "ORDER BY created_at DESC LIMIT 50"), {"u": chosen}).all()

        inbox()
        ours, base = percentiles(timed(inbox, 100)), percentiles(timed(bare_inbox, 100))
        print(f"case queue (one unit's open cases, with every tab's count): p50 {ours[0]:6.1f} ms  "
              f"p95 {ours[1]:6.1f} ms   bare SQL p50 {base[0]:5.1f} ms   ratio p95 {ours[1] / base[1]:4.1f}x   "
              "target p95 < 50 ms")

        today = dt.date.today()
        first = (today.replace(day=1) - dt.timedelta(days=1)).replace(day=1)
        last = today.replace(day=1) - dt.timedelta(days=1)

        def metrics() -> None:
            ledger.case_metrics(office, "lidu", first, last)

        def bare_metrics() -> None:
            db.session.execute(text("SELECT unit_id, count(*) FROM cases WHERE created_at >= :a AND created_at < :b "
                                    "GROUP BY unit_id"), {"a": first, "b": last + dt.timedelta(days=1)}).all()

        month = db.session.execute(text("SELECT count(*) FROM cases WHERE created_at >= :a AND created_at < :b"),
                                   {"a": first, "b": last + dt.timedelta(days=1)}).scalar()
        ours, base = percentiles(timed(metrics, 10)), percentiles(timed(bare_metrics, 10))
        print(f"monthly metrics, whole district ({month:,} cases in {first:%Y-%m}): p50 {ours[0]:6.1f} ms   "
              f"bare count p50 {base[0]:6.1f} ms   ratio {ours[0] / base[0]:4.1f}x   target < 1000 ms")

        open_ids = list(db.session.scalars(text("SELECT id FROM cases WHERE state = 'assigned' LIMIT 300")))
        db.session.execute(text("UPDATE cases SET state = 'reported', unit_id = :u WHERE id = ANY(:ids)"),
                           {"u": chosen, "ids": open_ids})
        db.session.commit()

        def transitions() -> None:
            for case_id in open_ids[:150]:
                case = db.session.get(service.Case, case_id)
                service.fire(office, case_id, "reject", case.version, MultiDict({"reason": "重复上报"}))
                db.session.commit()

        def bare_updates() -> None:
            for case_id in open_ids[150:300]:
                db.session.execute(text("UPDATE cases SET state = 'rejected', version = version + 1 WHERE id = :i"),
                                   {"i": case_id})
                db.session.commit()

        ours, base = sum(timed(transitions, 1)), sum(timed(bare_updates, 1))
        print(f"transitions (reject, with timeline, audit, notifications): {150 / ours:6.0f}/s on one core   "
              f"bare UPDATE+commit {150 / base:6.0f}/s   ratio {ours / base:4.1f}x")


if __name__ == "__main__":
    main()
