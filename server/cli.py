"""The `fangan` command group: the one entry point for administrators."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess  # noqa: S404 - the job worker beside `fangan run`
import sys
import tempfile
from pathlib import Path
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext

from .extensions import db


def _create_app() -> Flask:
    from . import create_app

    return create_app()


class _Group(FlaskGroup):
    """Shows a service's refusal (unknown user, missing version…) as one line, not a traceback."""

    def invoke(self, ctx: click.Context):  # noqa: ANN201
        from .core.errors import DomainError

        try:
            return super().invoke(ctx)
        except DomainError as exc:
            raise click.ClickException(str(exc.message)) from None


@click.group(cls=_Group, create_app=_create_app, add_version_option=False, load_dotenv=False,
             add_default_commands=False)
def main() -> None:
    """Fangan administration: schemes, users, set-up, serving."""


@main.command("run")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64), help="Processes.")
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 256), help="Threads a process.")
@click.option("--jobs/--no-jobs", default=True, show_default=True, help="Run a job worker beside the server.")
def run_server(host: str, port: int, workers: int, threads: int, jobs: bool) -> None:
    """Serve Fangan with gunicorn: a production WSGI server, several processes of several threads each.

    The embedded SQLite database takes concurrent writers (they wait their turn); behind a reverse proxy set
    FANGAN_PROXIES. Production on PostgreSQL runs gunicorn the same way (docs: README, Configuration).
    """
    from gunicorn.app.base import BaseApplication

    from .core.redact import RedactingLogger

    metrics_dir = _metrics_folder()
    json_logs = str(_create_app().config.get("FANGAN_LOG_FORMAT", "text")).lower() == "json"
    options = {"bind": f"{host}:{port}", "workers": workers, "threads": threads, "worker_class": "gthread",
               "timeout": 120, "graceful_timeout": 20, "accesslog": "-", "errorlog": "-",
               "logger_class": RedactingLogger, "child_exit": _forget_metrics_of,
               # No control socket: nothing here uses it, and two servers on one machine would share its path.
               "control_socket_disable": True}
    if json_logs:  # the app writes one JSON access line a request itself, with the request id and the user
        from .web.observe import JsonGunicornLogger

        options.update(accesslog=None, logger_class=JsonGunicornLogger)

    class Server(BaseApplication):
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self):  # noqa: ANN202 - the WSGI app, made in each worker
            return _create_app()

    # With JSON logs every line is JSON (the app has set the process's logging up): said through the log.
    say = logging.getLogger("fangan.run").info if json_logs else click.echo
    say(f"Serving on http://{host}:{port} ({workers} processes × {threads} threads, gunicorn)")
    worker = _embedded_worker(say) if jobs else None
    try:
        Server().run()
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
        if worker is not None:  # SIGINT: Huey's graceful stop, the job at hand finished first
            worker.send_signal(signal.SIGINT)
            try:
                worker.wait(timeout=120)
            except subprocess.TimeoutExpired:
                worker.kill()


def _metrics_folder() -> Path | None:
    """Where gunicorn's processes keep their metrics for /metrics to add up (prometheus_client's multiprocess
    mode): PROMETHEUS_MULTIPROC_DIR if set (emptied: a new server starts its counts at zero), else a folder of
    this run's, removed when it stops (returned)."""
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        Path(given).mkdir(parents=True, exist_ok=True)
        for old in Path(given).glob("*.db"):
            old.unlink()
        return None
    folder = tempfile.mkdtemp(prefix="fangan-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
    return Path(folder)


def _forget_metrics_of(_server: Any, worker: Any) -> None:
    """gunicorn's child_exit: a process that ended leaves its counts (kept) but no live gauges."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def _embedded_worker(say: Any = click.echo) -> subprocess.Popen:
    """A job worker beside the server (`fangan worker`), stopped with it. A deployment may instead run
    `fangan run --no-jobs` and `fangan worker` as services of their own."""
    command = Path(sys.argv[0]).with_name("fangan")
    say("Starting a job worker beside the server (fangan worker)")
    return subprocess.Popen([str(command) if command.exists() else "fangan", "worker"])  # noqa: S603, S607


@main.command("backup")
@click.argument("target", type=click.Path(dir_okay=False, path_type=Path))
@with_appcontext
def backup(target: Path) -> None:
    """Write the database and the uploaded files into one archive (TARGET.tar.gz); the server may run meanwhile."""
    from .backup.service import BackupError, backup_instance

    try:
        done = backup_instance(target)
    except BackupError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"Backed up the {done.database} database (revision {done.revision}) and {done.uploads} uploaded "
               f"files into {done.path} ({done.size:,} bytes)")


@main.command("restore")
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_appcontext
def restore(source: Path) -> None:
    """Bring a backup back into this instance, which must be empty (a new database and upload folder)."""
    from .backup.service import BackupError, restore_instance

    try:
        done = restore_instance(source)
    except BackupError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"Restored the {done.database} database (revision {done.revision}) and {done.uploads} uploaded "
               f"files from {done.path}")


@main.command("worker")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 32), help="Threads.")
@click.option("--once", is_flag=True, help="Run what is queued now, then stop.")
@with_appcontext
def worker(workers: int, once: bool) -> None:
    """Run jobs (batch notice boards, …) from the job queue; jobs a stopped worker left running run again."""
    from .jobs import queue
    from .jobs.service import requeue_interrupted

    app = current_app._get_current_object()
    again = requeue_interrupted()
    if again:
        click.echo(f"{again} interrupted job(s) queued again")
    if once:
        click.echo(f"ran {queue.run_queued(app)} job(s)")
        return
    queue.consumer(app, workers).run()


def _fail_with_errors(errors: list) -> None:
    for error in errors:
        click.echo(str(error), err=True)
    click.secho(f"{len(errors)} error(s); nothing was stored.", fg="red", err=True)
    sys.exit(1)


# -- schemes --------------------------------------------------------------------

@click.group("scheme")
def scheme_cli() -> None:
    """Check, load, list, compare and activate schemes."""


@scheme_cli.command("validate")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@with_appcontext
def scheme_validate(path: Path) -> None:
    """Check a scheme folder, file or zip and report every error."""
    from .definitions.bundle import read_source
    from .definitions.errors import DefinitionsInvalid
    from .definitions.service import check_scheme_files

    try:
        bundle = check_scheme_files(read_source(path))
    except DefinitionsInvalid as exc:
        _fail_with_errors(exc.errors)
    click.echo(f"OK: scheme '{bundle.id}' with {len(bundle.members) + 1} definitions ({bundle.hash[:10]})")
    _warn_about_posts(bundle)


def _warn_about_posts(bundle: Any) -> None:
    """When this instance runs the district, the posts held today measured against the definitions checked."""
    from sqlalchemy.exc import SQLAlchemyError

    from .definitions.service import current_version
    from .org.service import post_count_warnings

    try:
        if current_version(bundle.id) is None:
            return
        warnings = post_count_warnings(bundle.id, bundle.scheme.data)
    except SQLAlchemyError:  # an instance without a database yet: nothing to measure
        return
    for warning in warnings:
        click.secho(f"warning: {warning.message()}", fg="yellow", err=True)


@scheme_cli.command("load")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--activate", is_flag=True, help="Make the loaded version current.")
@click.option("--note", default=None, help="What changed.")
@with_appcontext
def scheme_load(path: Path, activate: bool, note: str | None) -> None:
    """Check and store a scheme as a new version (nothing is stored if there is any error)."""
    from .definitions.bundle import read_source
    from .definitions.errors import DefinitionsInvalid
    from .definitions.service import activate_scheme_version, load_scheme

    try:
        version, created = load_scheme(read_source(path), note=note)
        if activate:
            activate_scheme_version(version.id)
        db.session.commit()
    except DefinitionsInvalid as exc:
        db.session.rollback()
        _fail_with_errors(exc.errors)
    state = "stored as" if created else "already stored as"
    click.echo(f"Scheme '{version.scheme_key}' {state} version {version.id} ({version.short_hash})"
               + (", now in force" if activate else ""))


@scheme_cli.command("export")
@click.argument("version_id", type=int)
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--overwrite", is_flag=True, help="Replace files already in the folder.")
@with_appcontext
def scheme_export(version_id: int, folder: Path, overwrite: bool) -> None:
    """Write a stored version's files into FOLDER exactly as they were loaded."""
    from .core.errors import NotFound
    from .definitions.drafts import export_scheme_version
    from .definitions.service import get_scheme_version

    try:
        written = export_scheme_version(get_scheme_version(version_id), folder, overwrite=overwrite)
    except NotFound as exc:
        raise click.ClickException(exc.message) from exc
    except FileExistsError as exc:
        raise click.ClickException(f"these files exist already (use --overwrite to replace them): {exc}") from exc
    click.echo(f"Wrote {len(written)} files of version {version_id} into {folder}")


@scheme_cli.command("list")
@with_appcontext
def scheme_list() -> None:
    """List stored scheme versions; * marks the one in force."""
    from .definitions.service import list_scheme_versions, list_schemes

    current = {r.key: r.current_version_id for r in list_schemes()}
    for v in list_scheme_versions():
        mark = "*" if current.get(v.scheme_key) == v.id else " "
        click.echo(f"{mark} {v.id:>4}  {v.scheme_key:<20} {v.short_hash}  {v.loaded_at:%Y-%m-%d %H:%M}  "
                   f"{len(v.members)} definitions{'  ' + v.note if v.note else ''}")


@scheme_cli.command("diff")
@click.argument("old_id", type=int)
@click.argument("new_id", type=int)
@with_appcontext
def scheme_diff(old_id: int, new_id: int) -> None:
    """Show what changed between two scheme versions."""
    from .definitions.service import diff_scheme_versions, get_scheme_version

    for d in diff_scheme_versions(get_scheme_version(old_id), get_scheme_version(new_id)):
        if d.status == "same":
            continue
        click.secho(f"== {d.status}: {d.kind} {d.key}", bold=True)
        for line in d.lines:
            color = "green" if line.startswith("+") else "red" if line.startswith("-") else None
            click.secho(line, fg=color)


@scheme_cli.command("activate")
@click.argument("version_id", type=int)
@with_appcontext
def scheme_activate(version_id: int) -> None:
    """Make a stored version the one in force."""
    from .definitions.service import activate_scheme_version

    version = activate_scheme_version(version_id)
    db.session.commit()
    click.echo(f"Version {version.id} of '{version.scheme_key}' is now in force.")


# -- users ----------------------------------------------------------------------

@click.group("user")
def user_cli() -> None:
    """Create users, reset passwords, grant roles."""


@user_cli.command("create")
@click.argument("username")
@click.option("--name", default="", help="Display name.")
@click.option("--admin", is_flag=True, help="System administrator (every scheme).")
@with_appcontext
def user_create(username: str, name: str, admin: bool) -> None:
    """Create a user with a generated password, shown once."""
    from .auth.service import create_user

    _, password = create_user(username, name or username, is_admin=admin)
    db.session.commit()
    click.echo(f"User '{username}' created. Password (shown once): {password}")


@user_cli.command("reset-password")
@click.argument("username")
@with_appcontext
def user_reset_password(username: str) -> None:
    """Give a user a new generated password, shown once."""
    from .auth.service import reset_password

    password = reset_password(username)
    db.session.commit()
    click.echo(f"New password for '{username}' (shown once): {password}")


@user_cli.command("grant")
@click.argument("username")
@click.argument("scheme_key")
@click.argument("role")
@click.option("--unit", "unit_key", default=None, help="Unit id in the scheme the role applies from.")
@with_appcontext
def user_grant(username: str, scheme_key: str, role: str, unit_key: str | None) -> None:
    """Give a user a role of a scheme, from a unit."""
    from .auth.service import get_user_by_username, grant_role
    from .org.models import Unit

    user = get_user_by_username(username)
    if user is None:
        raise click.ClickException(f"No user '{username}'.")
    unit_id = None
    if unit_key:
        unit = db.session.scalar(db.select(Unit).filter_by(scheme_key=scheme_key, key=unit_key))
        if unit is None:
            raise click.ClickException(f"No unit '{unit_key}' in '{scheme_key}'.")
        unit_id = unit.id
    grant_role(user, scheme_key, role, unit_id)
    db.session.commit()
    click.echo(f"'{username}' now holds '{role}' in '{scheme_key}'" + (f" from '{unit_key}'." if unit_key else "."))


# -- posts ----------------------------------------------------------------------

@click.group("post")
def post_cli() -> None:
    """Who holds which tier over what."""


@post_cli.command("appoint")
@click.argument("scheme_key")
@click.argument("tier")
@click.argument("holder_name")
@click.option("--area", "area_key", default=None, help="Area id (a road, segment or grid).")
@click.option("--unit", "unit_key", default=None, help="Unit id, for a post over a whole unit.")
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d"]), default=None, help="First day (default today).")
@click.option("--title", default=None)
@click.option("--phone", default=None)
@click.option("--user", "username", default=None, help="Their account, if they have one.")
@click.option("--key", default=None, help="A name for the post that patrol rules can bind (`who: {posts: [...]}`); "
              "a successor keeps it.")
@with_appcontext
def post_appoint(scheme_key: str, tier: str, holder_name: str, area_key: str | None, unit_key: str | None,
                 since, title: str | None, phone: str | None, username: str | None,  # noqa: ANN001
                 key: str | None) -> None:
    """Appoint someone; the previous holder of that tier there stays in the history until the day before."""
    from .org.posts import appoint

    post = appoint(scheme_key, tier, holder_name, area_key=area_key, unit_key=unit_key,
                   since=since.date() if since else None, title=title, phone=phone, username=username, key=key)
    db.session.commit()
    click.echo(f"{holder_name} holds {tier} from {post.started_on} (post {post.id}).")


# -- patrols -------------------------------------------------------------------

@click.group("patrol")
def patrol_cli() -> None:
    """Patrol-rule compliance."""


@patrol_cli.command("compliance")
@click.argument("scheme_key")
@click.option("--on", "on", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="A day in the periods to show (default today).")
@click.option("--rule", "rule_ids", multiple=True, help="Only this rule (repeatable).")
@click.option("--all", "show_all", is_flag=True, help="Everyone bound, not only those short.")
@with_appcontext
def patrol_compliance(scheme_key: str, on, rule_ids: tuple[str, ...], show_all: bool) -> None:  # noqa: ANN001
    """Who met and who missed each rule in the period containing a day, with counts (tab-separated)."""
    from .definitions.clock import district_today
    from .patrols import engine
    from .patrols.service import compliance, rules_of

    day = on.date() if on else district_today(scheme_key)
    click.echo("rule\tperiod\tsubject\trecords\towed\tstatus")
    for rule in rules_of(scheme_key):
        if rule_ids and rule.id not in rule_ids:
            continue
        period = engine.period_of(rule.per, day)
        for v in compliance(scheme_key, rule, period.start, period.end):
            if v.due and (show_all or not v.met):
                who = v.subject.get("name") or v.subject["unit"].key
                where = f" @ {v.subject['focus'].key}" if v.subject.get("focus") else ""
                click.echo(f"{rule.id}\t{period.key}\t{who}{where}\t{v.count}\t{v.required}\t"
                           f"{'met' if v.met else 'short'}")


# -- assessment -----------------------------------------------------------------

@click.group("assess")
def assess_cli() -> None:
    """Score sheets."""


@assess_cli.command("score")
@click.argument("scheme_key")
@click.argument("sheet_id")
@click.option("--on", "on", type=click.DateTime(formats=["%Y-%m-%d"]), required=True,
              help="A day in the period to score, e.g. 2026-10-01 for October.")
@with_appcontext
def assess_score(scheme_key: str, sheet_id: str, on) -> None:  # noqa: ANN001
    """Score every assessed unit from the data as it stands (a dry run: nothing is stored), tab-separated.

    Items that assessors enter count as nothing lost until they are entered.
    """
    from .assessment.scoring import score_period

    period, results = score_period(scheme_key, sheet_id, on.date())
    click.echo(f"# {sheet_id} {period.key} ({period.start} – {period.end})")
    click.echo("unit\ttotal\tgrade\tranks\tflags")
    for r in results:
        ranks = ",".join(f"{group}:{rank}" for group, rank in r.ranks.items())
        click.echo(f"{r.unit.key}\t{r.total}\t{r.grade.id if r.grade else ''}\t{ranks}\t"
                   f"{','.join(f.id for f in r.flags)}")


@assess_cli.command("combine")
@click.argument("scheme_key")
@click.argument("sheet_id")
@click.argument("combine_id")
@click.option("--on", "on", type=click.DateTime(formats=["%Y-%m-%d"]), required=True,
              help="A day in the longer period, e.g. 2026-12-31 for the year.")
@with_appcontext
def assess_combine(scheme_key: str, sheet_id: str, combine_id: str, on) -> None:  # noqa: ANN001
    """A sheet's combined score over a longer period (e.g. monthly average 60 % + year-end 40 %), per unit."""
    from .assessment.engine import shown
    from .assessment.scoring import combined_scores

    span, rows = combined_scores(scheme_key, sheet_id, combine_id, on.date())
    click.echo(f"# {combine_id} {span.key} ({span.start} – {span.end})")
    names = list(rows[0].averages) if rows else []
    click.echo("\t".join(["unit", *names, "score", "grade"]))
    for r in rows:
        cells = [str(shown(v)) if v is not None else "" for v in r.averages.values()]
        click.echo("\t".join([r.unit.key, *cells, str(shown(r.score)) if r.score is not None else "",
                              r.grade.id if r.grade else ""]))


# -- organisation ---------------------------------------------------------------

@click.group("org")
def org_cli() -> None:
    """Units, areas and posts to and from spreadsheets."""


@org_cli.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--scheme", "scheme_key", required=True, help="The district (scheme id).")
@click.option("--sheet", type=click.Choice(["units", "areas", "posts"]), default=None,
              help="For a CSV file: which sheet it is (default: from the file name).")
@with_appcontext
def org_import(path: Path, scheme_key: str, sheet: str | None) -> None:
    """Import a workbook (.xlsx) or one sheet (.csv); every problem is listed and nothing changes if there is one."""
    from .org.spreadsheet import ImportInvalid, import_org

    try:
        result = import_org(None, scheme_key, path.read_bytes(), path.name, sheet=sheet)
        db.session.commit()
    except ImportInvalid as exc:
        db.session.rollback()
        _fail_with_errors(exc.errors)
    click.echo(", ".join(f"{name.replace('_', ' ')}: {count}" for name, count in result.counts.items()))


@org_cli.command("export")
@click.option("--scheme", "scheme_key", required=True, help="The district (scheme id).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="A .xlsx file (every sheet) or a .csv file (one sheet).")
@click.option("--sheet", type=click.Choice(["units", "areas", "posts"]), default=None,
              help="For a .csv file: which sheet (default: from the file name).")
@with_appcontext
def org_export(scheme_key: str, output: Path, sheet: str | None) -> None:
    """Export units, areas and posts in exactly the format the import reads."""
    from .org.spreadsheet import SHEETS, export_org

    fmt = "csv" if output.suffix.lower() == ".csv" else "xlsx"
    if fmt == "csv" and sheet is None:
        sheet = output.stem.lower() if output.stem.lower() in SHEETS else None
        if sheet is None:
            raise click.ClickException("Say which sheet goes into the CSV file: --sheet units, areas or posts.")
    content, _, _ = export_org(None, scheme_key, fmt, sheet)
    output.write_bytes(content)
    click.echo(f"Wrote {output}")


# -- forms ----------------------------------------------------------------------

@click.group("form")
def form_cli() -> None:
    """Form tools."""


@form_cli.command("import-xlsform")
@click.argument("workbook", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--id", "form_id", default=None, help="Form id (default: from the settings sheet or file name).")
@click.option("--attach", "attached", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A file the workbook names (select_one_from_file); files in WORKBOOK-media/ are attached too.")
@click.option("--strict", is_flag=True, help="Refuse the workbook if anything would be left out.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the YAML here instead of printing it.")
def form_import_xlsform(workbook: Path, form_id: str | None, attached: tuple[Path, ...], strict: bool,
                        output: Path | None) -> None:
    """Convert an XLSForm workbook (.xlsx or .xls) into a form definition; what cannot be converted is left out
    and named by sheet and row (with --strict, nothing is written)."""
    from .forms.xlsform import XlsformError, import_xlsform, to_yaml

    media_folder = workbook.with_name(f"{workbook.stem}-media")
    files = [*(sorted(media_folder.iterdir()) if media_folder.is_dir() else []), *attached]
    attachments = {path.name: path.read_bytes() for path in files if path.is_file()}
    try:
        result = import_xlsform(workbook.read_bytes(), workbook.name, form_id=form_id, attachments=attachments,
                                strict=strict)
    except XlsformError as exc:
        for issue in exc.issues:
            click.echo(f"{workbook.name}: {issue}", err=True)
        refused = " (--strict: without it, the rest would have been converted)" if exc.strict else ""
        click.secho(f"{len(exc.issues)} problem(s); nothing was written{refused}.", fg="red", err=True)
        sys.exit(1)
    for note in result.notes:
        click.echo(f"{workbook.name}: {note}", err=True)
    for issue in result.dropped:
        click.echo(f"{workbook.name}: left out: {issue}", err=True)
    if result.dropped:
        click.secho(f"{len(result.dropped)} problem(s): each row named is left out whole, each column for all rows "
                    "(--strict refuses instead).", fg="yellow", err=True)
    text = to_yaml(result.definition)
    if output:
        output.write_text(text, "utf-8")
        click.echo(f"Wrote {output}")
    else:
        click.echo(text, nl=False)


@click.group("case")
def case_cli() -> None:
    """Case tools."""


@case_cli.command("migrate")
@click.argument("scheme_key")
@click.argument("workflow_key")
@click.option("--map", "mappings", multiple=True, metavar="OLD=NEW",
              help="State of the old version → state of the new.")
@click.option("--apply", "apply_", is_flag=True, help="Migrate (without it: only show what would happen).")
@with_appcontext
def case_migrate(scheme_key: str, workflow_key: str, mappings: tuple[str, ...], apply_: bool) -> None:
    """Preview, then move open cases of a workflow to the version in force."""
    from .auth.models import User
    from .workflow.migration import migrate_cases, migration_preview

    mapping = dict(m.split("=", 1) for m in mappings if "=" in m)
    target, rows = migration_preview(scheme_key, workflow_key, mapping)
    for row in rows:
        click.echo(f"case {row['case'].id}: {row['old']} -> {row['new'] or '?? (needs --map)'}")
    click.echo(f"{len(rows)} open case(s) would move to version {target.id} of '{workflow_key}'.")
    if apply_:
        admin = db.session.scalar(db.select(User).filter_by(is_admin=True).order_by(User.id))
        count = migrate_cases(admin, scheme_key, workflow_key, mapping)
        db.session.commit()
        click.echo(f"Migrated {count} case(s).")


@click.command("tick")
@with_appcontext
def tick() -> None:
    """Apply due escalations (mark overdue, notify, reassign, count); safe from cron on many hosts at once."""
    from .workflow.escalation import tick as run_tick

    total = {"checked": 0, "applied": 0}
    last_id = 0
    while True:
        counts = run_tick(after_id=last_id)
        db.session.commit()  # one batch at a time: locks are held briefly
        total = {k: total[k] + counts[k] for k in total}
        last_id = counts["last_id"]
        if counts["checked"] < 200:
            break
    click.echo(f"checked {total['checked']} deadlines, applied {total['applied']} escalations")
    from .events.service import deliver_events

    sent = deliver_events()
    if any(sent.values()):
        click.echo(f"events: {sent['delivered']} delivered, {sent['retry']} to try again later, "
                   f"{sent['failed']} given up")
    from .jobs.service import forget_old_results, requeue_interrupted

    again, forgotten = requeue_interrupted(), forget_old_results()
    if again or forgotten:
        click.echo(f"jobs: {again} interrupted queued again, {forgotten} old results removed")
    from .public.retention import erase_expired_contacts

    erased = erase_expired_contacts()
    db.session.commit()
    for scheme_key, count in erased.items():
        click.echo(f"{scheme_key}: the contacts of {count} reporters erased (kept as long as the scheme says)")


@click.group("reporter")
def reporter_cli() -> None:
    """A public reporter's personal data: export it or erase it on request (the Personal Information Protection Law)."""


def _named_user(username: str) -> Any:
    from .auth.service import get_user_by_username

    user = get_user_by_username(username)
    if user is None:
        raise click.ClickException(f"no user {username}")
    return user


def _reporter_args(func: Any) -> Any:
    func = click.option("--code", default=None, help="One of their tracking codes.")(func)
    func = click.option("--phone", default=None, help="Their phone number.")(func)
    func = click.option("--as", "username", default="admin", show_default=True,
                        help="The administrator asking (written in the audit log).")(func)
    return click.argument("scheme_key")(func)


@reporter_cli.command("export")
@_reporter_args
@with_appcontext
def reporter_export(scheme_key: str, username: str, phone: str | None, code: str | None) -> None:
    """Print, as JSON, every report of one reporter in a district with what is kept of them."""
    from .public.retention import find_reporter

    if not (phone or code):
        raise click.UsageError("give --phone or --code")
    found = find_reporter(_named_user(username), scheme_key, phone=phone, code=code)
    db.session.commit()
    click.echo(json.dumps({"district": found.scheme_key, "phone": found.phone, "reports": found.reports},
                          ensure_ascii=False, indent=2))


@reporter_cli.command("erase")
@_reporter_args
@with_appcontext
def reporter_erase(scheme_key: str, username: str, phone: str | None, code: str | None) -> None:
    """Erase one reporter's name, phone and fingerprints from every report of theirs in a district."""
    from .public.retention import erase_reporter

    if not (phone or code):
        raise click.UsageError("give --phone or --code")
    count = erase_reporter(_named_user(username), scheme_key, phone=phone, code=code)
    db.session.commit()
    click.echo(f"Erased the contacts of {count} reports")


# -- set-up and docs -------------------------------------------------------------

@click.command("setup")
@click.option("--admin", "admin_name", default="admin", show_default=True)
@click.option("--url", default="http://127.0.0.1:5000", show_default=True, help="URL to print.")
@with_appcontext
def setup(admin_name: str, url: str) -> None:
    """Migrate the database, load the demo district once, create the admin once and print the login."""
    from flask_migrate import upgrade

    from .auth.service import create_user, get_user_by_username
    from .definitions.bundle import read_source
    from .definitions.service import activate_scheme_version, list_schemes, load_scheme

    upgrade()
    if not list_schemes():
        from flask_babel import gettext

        note = gettext("demo district")  # stored once, in the default language (Chinese)
        version, _ = load_scheme(read_source(current_app.config["FANGAN_DEMO_SCHEME"]), note=note)
        activate_scheme_version(version.id)
        db.session.commit()
        click.echo(f"Loaded the demo district '{version.scheme_key}' (version {version.id}).")
    click.echo("")
    if get_user_by_username(admin_name) is None:
        _, password = create_user(admin_name, admin_name, is_admin=True)
        db.session.commit()
        click.secho("Administrator login (the password is shown only this once):", bold=True)
        click.echo(f"  URL:      {url}")
        click.echo(f"  Username: {admin_name}")
        click.echo(f"  Password: {password}")
    else:
        click.secho(f"The database is kept. Log in at {url} as '{admin_name}'.", bold=True)
        click.echo(f"Forgot the password? Run:  .venv/bin/fangan user reset-password {admin_name}")
    click.echo("")


@click.command("docs")
@click.option("--check", is_flag=True, help="Fail if the generated docs are out of date instead of writing them.")
@with_appcontext
def docs(check: bool) -> None:
    """Write docs/reference/*.md from the JSON Schemas, and the tables of registered field types, choice sources
    and metric sources in docs/*.md."""
    from .definitions.docs import write_reference, write_registry_tables

    docs_root = Path(current_app.config["FANGAN_ROOT"]) / "docs"
    root = docs_root / "reference"
    stale = write_reference(root, check=check) + write_registry_tables(docs_root, check=check)
    if check and stale:
        raise click.ClickException("the generated docs are out of date: run `fangan docs`. Stale: " + ", ".join(stale))
    click.echo("docs/reference and the registry tables are up to date." if check else f"Wrote {root} and the registry "
               "tables in docs/.")


# -- API clients --------------------------------------------------------------------------------------------------

@click.group("api")
def api_cli() -> None:
    """Clients of the JSON API: each has a token and acts as one user."""


@api_cli.command("create-client")
@click.argument("name")
@click.option("--user", "username", required=True, help="The user the client acts as (its roles decide its reach).")
@with_appcontext
def api_create_client(name: str, username: str) -> None:
    """Create a client; its token is shown once."""
    from .api.service import create_client

    _client, token = create_client(name, username)
    db.session.commit()
    click.echo(f"Client '{name}' acts as '{username}'. Token (shown once): {token}")


@api_cli.command("revoke-client")
@click.argument("name")
@with_appcontext
def api_revoke_client(name: str) -> None:
    """Refuse a client's token from now on."""
    from .api.service import revoke_client

    client = revoke_client(name)
    db.session.commit()
    click.echo(f"Client '{client.name}' revoked at {client.revoked_at:%Y-%m-%d %H:%M} UTC.")


@api_cli.command("list-clients")
@with_appcontext
def api_list_clients() -> None:
    """Every client: the user it acts as, when it was created and last used, and whether it is revoked."""
    from .api.service import list_clients

    for client in list_clients():
        used = f"{client.last_used_at:%Y-%m-%d %H:%M}" if client.last_used_at else "never"
        state = f"revoked {client.revoked_at:%Y-%m-%d %H:%M}" if client.revoked_at else "active"
        click.echo(f"{client.name}\t{client.user.username}\tcreated {client.created_at:%Y-%m-%d %H:%M}\t"
                   f"last used {used}\t{state}")


# -- the working-day calendar -----------------------------------------------------------------------


@click.group("calendar")
def calendar_cli() -> None:
    """The working-day calendar: holidays and makeup workdays per year."""


@calendar_cli.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Show what would change; store nothing.")
@with_appcontext
def calendar_import(path: Path, dry_run: bool) -> None:
    """Import a year's holidays and makeup workdays (CSV, XLSX, YAML or iCalendar); the years it covers are
    replaced and marked complete, and open cases' deadlines move to the new calendar."""
    from .calendar.service import import_calendar, preview_calendar_import

    data = path.read_bytes()
    result = preview_calendar_import(None, data, path.name) if dry_run else import_calendar(None, data, path.name)
    if not result.ok:
        _fail_with_errors(result.errors)
    for change in result.years:
        click.echo(f"{change.year}: {change.holidays} holidays, {change.workdays} makeup workdays; "
                   f"{len(change.added)} added, {len(change.changed)} changed, {len(change.removed)} removed"
                   + (" (was complete)" if change.was_complete else ""))
    if dry_run:
        click.echo("dry run: nothing was stored")
        return
    db.session.commit()
    click.echo(f"{len(result.years)} year(s) marked complete; {result.moved_cases} open case(s) got new deadlines")


@calendar_cli.command("list")
@with_appcontext
def calendar_list() -> None:
    """The years of the table, how many rows each has, and whether it is complete."""
    from .calendar.service import calendar_state

    overrides, complete = calendar_state()
    years = sorted({o.day.year for o in overrides} | complete)
    for year in years:
        rows = [o for o in overrides if o.day.year == year]
        click.echo(f"{year}	{sum(not o.working for o in rows)} holidays	{sum(o.working for o in rows)} workdays	"
                   + ("complete" if year in complete else "incomplete: deadlines warn"))


# -- uploaded files ---------------------------------------------------------------------------------------------


@click.group("uploads")
def uploads_cli() -> None:
    """Uploaded photos and PDFs under the upload folder."""


@uploads_cli.command("gc")
@click.option("--dry-run", is_flag=True, help="List what would be removed; remove nothing.")
@click.option("--older-than", "older_than", type=click.IntRange(min=1), default=60, show_default=True,
              metavar="MINUTES", help="Only files at least this old: a request writing files now has not committed "
                                      "their rows yet.")
@click.option("--pending-hours", "pending_hours", type=click.IntRange(min=9), default=24, show_default=True,
              help="Photos kept for a refused page's next try, and evidence of marks never saved, are let go after "
                   "this many hours (at least 9: a page's form stays valid for 8).")
@with_appcontext
def uploads_gc(dry_run: bool, older_than: int, pending_hours: int) -> None:
    """Remove files that no upload row refers to (left by requests that failed before they were kept), and
    pending uploads abandoned for --pending-hours."""
    import datetime as dt

    from .forms.service import remove_orphan_files

    sweep = remove_orphan_files(dt.timedelta(minutes=older_than), dry_run=dry_run,
                                pending_older_than=dt.timedelta(hours=pending_hours))
    for orphan in sweep.orphans:
        click.echo(f"{orphan.relative}\t{orphan.size}")
    done = "would be removed (dry run)" if dry_run else "removed"
    click.echo(f"{sweep.abandoned} abandoned pending upload(s) {done}; "
               f"{len(sweep.orphans)} orphan file(s), {sweep.freed} bytes ({sweep.freed / 2**20:.1f} MB) {done}; "
               f"{sweep.in_use} in use; {sweep.young} younger than {older_than} min not looked at")


@click.command("copy")
@click.option("--to", "target", required=True, metavar="URL", envvar="FANGAN_COPY_TO",
              help="The database to copy into: postgresql+psycopg://user@host/name (empty, created beforehand); "
                   "or FANGAN_COPY_TO. Give the password in PGPASSWORD or ~/.pgpass, not on the command line.")
@with_appcontext
def db_copy(target: str) -> None:
    """Copy every row of this instance's database into another one (from SQLite to PostgreSQL)."""
    from .backup.service import BackupError, copy_database

    try:
        done = copy_database(target, progress=lambda table, rows: click.echo(f"  {table}: {rows:,} rows"))
    except BackupError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"Copied {done.rows:,} rows of {done.tables} tables. Point DATABASE_URL at the new database and "
               "restart; the uploaded files stay where they are.")


def _add_flask_commands() -> None:
    from flask.cli import routes_command, shell_command
    from flask_migrate.cli import db as migrations

    main.add_command(shell_command)
    main.add_command(routes_command)
    migrations.add_command(db_copy)  # `fangan db copy`, beside Flask-Migrate's `fangan db upgrade`


_add_flask_commands()


def register(app: Flask) -> None:
    for command in (scheme_cli, user_cli, post_cli, patrol_cli, assess_cli, org_cli, form_cli, case_cli, api_cli, setup,
                    docs, tick, calendar_cli, uploads_cli, reporter_cli):
        app.cli.add_command(command)
