"""Backups of an instance: its database and its uploaded files in one archive, and back into an empty instance.

The database is copied as the database itself copies it: SQLite's online backup (a consistent copy while the
server runs) or `pg_dump` in its custom format. The archive is a gzipped tar:

    manifest.json          what it holds: the kind of database, the schema revision, counts, when it was made
    database.sqlite        (SQLite) or database.pgdump (PostgreSQL)
    uploads/ab/cd/….jpg    every uploaded file, under its path in the upload folder
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from flask import current_app
from sqlalchemy import JSON, Integer, bindparam, inspect, select, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import URL, make_url

from ..core.errors import DomainError
from ..extensions import db
from ..web.views import known_revisions

FORMAT = "fangan-backup"
VERSION = 1
PG_BIN_DIRS = [Path("/usr/lib/postgresql/15/bin"), *sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)]


class BackupError(DomainError):
    """A backup that cannot be made or restored; the message says why."""


@dataclass(frozen=True)
class BackupSummary:
    path: Path
    database: str
    revision: str | None
    uploads: int
    size: int


def upload_root() -> Path:
    return Path(current_app.config.get("FANGAN_UPLOAD_DIR") or Path(current_app.instance_path) / "uploads")


def _url() -> URL:
    return db.engine.url


def _backend() -> str:
    name = _url().get_backend_name()
    if name not in ("sqlite", "postgresql"):
        raise BackupError(f"backups of {name} databases are not supported")
    return name


def _revision() -> str | None:
    try:
        return db.session.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except Exception:  # noqa: BLE001 - a database without migrations has no revision to say
        db.session.rollback()
        return None


def _tool(name: str) -> str:
    """A PostgreSQL client program: the one on PATH, else the installed server's."""
    found = shutil.which(name)
    for folder in PG_BIN_DIRS:
        if found is None and (folder / name).exists():
            found = str(folder / name)
    if found is None:
        raise BackupError(f"{name} is not installed (apt-get install postgresql-client)")
    return found


def _libpq(url: URL) -> tuple[str, dict[str, str]]:
    """The URL as PostgreSQL's programs take it, the password passed in the environment (never on a command line)."""
    plain = url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    return plain, env


def _run(command: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        raise BackupError(f"{Path(command[0]).name} failed: {result.stderr.strip()[-2000:]}")


def backup_instance(target: Path) -> BackupSummary:
    """Write the database and the uploads into `target` (a .tar.gz); the server may go on running meanwhile."""
    backend, revision = _backend(), _revision()
    db.session.rollback()  # hold no transaction (on SQLite, a write lock) while the copy is made
    target = Path(target)
    if target.exists():
        raise BackupError(f"{target} exists already: choose a new file")
    with tempfile.TemporaryDirectory(prefix="fangan-backup-") as work:
        if backend == "sqlite":
            dump = Path(work) / "database.sqlite"
            source = sqlite3.connect(_url().database or "")
            copy = sqlite3.connect(dump)
            try:
                source.backup(copy)  # SQLite's online backup: a consistent copy, whatever writes meanwhile
            finally:
                copy.close()
                source.close()
        else:
            dump = Path(work) / "database.pgdump"
            url, env = _libpq(_url())
            _run([_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges", f"--file={dump}",
                  f"--dbname={url}"], env)
        root = upload_root()
        files = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")) \
            if root.is_dir() else []
        manifest = {"format": FORMAT, "version": VERSION, "database": backend, "revision": revision,
                    "uploads": len(files), "made_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
        partial = target.with_name(target.name + ".partial")
        # Readable by its owner only: a backup holds password hashes, sealed contacts and every photo.
        handle = os.open(partial, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        try:
            with os.fdopen(handle, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as archive:
                data = json.dumps(manifest, indent=2).encode()
                info = tarfile.TarInfo("manifest.json")
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
                archive.add(dump, arcname=dump.name)
                for path in files:
                    try:
                        archive.add(path, arcname=f"uploads/{path.relative_to(root).as_posix()}")
                    except FileNotFoundError:
                        continue  # removed meanwhile (`fangan uploads gc`): nothing refers to it any more
            os.replace(partial, target)  # a backup is there whole, or not at all
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    return BackupSummary(target, backend, revision, len(files), target.stat().st_size)


def _rows_anywhere() -> tuple[str, int] | None:
    """A table of the target that holds rows (the migrations' own bookkeeping aside), or None."""
    inspector = inspect(db.session.connection())  # (another connection would wait on this one's lock)
    for table in inspector.get_table_names():
        if table == "alembic_version":
            continue
        count = db.session.execute(text(f'SELECT count(*) FROM "{table}"')).scalar()  # noqa: S608 - a table name
        if count:
            return table, count
    return None


def _member_path(name: str) -> PurePosixPath | None:
    """An upload's path inside the archive, if it is one that may be written (no absolute path, no `..`)."""
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or len(path.parts) < 2 or path.parts[0] != "uploads" \
            or any(part.startswith(".") or "\\" in part for part in path.parts):
        return None
    return PurePosixPath(*path.parts[1:])


def _swap_database(backend: str, dump: Path) -> tuple[Callable[[], None], Callable[[], None]]:
    """Put the backup's database in place of this instance's (empty) one; return (undo, forget the old one)."""
    if backend == "sqlite":
        target = Path(_url().database or "")
        for journal in ("-wal", "-shm", "-journal"):  # the empty database's, which would not match the copy
            target.with_name(target.name + journal).unlink(missing_ok=True)
        kept = target.with_name(target.name + ".before-restore")
        if target.exists():
            os.replace(target, kept)
        partial = target.with_name(target.name + ".restoring")
        shutil.copyfile(dump, partial)
        partial.chmod(kept.stat().st_mode & 0o777 if kept.exists() else 0o600)
        os.replace(partial, target)

        def undo() -> None:
            if kept.exists():
                os.replace(kept, target)
            else:
                target.unlink(missing_ok=True)

        return undo, lambda: kept.unlink(missing_ok=True)
    url, env = _libpq(_url())
    # The empty instance may have been migrated already (its tables, from any version): start from a bare schema,
    # and restore in one transaction, so that a failure leaves it bare rather than half-restored.
    _run([_tool("psql"), "--quiet", "--no-psqlrc", "--set=ON_ERROR_STOP=1", f"--dbname={url}", "--command",
          "DROP SCHEMA public CASCADE; CREATE SCHEMA public;"], env)
    _run([_tool("pg_restore"), "--single-transaction", "--no-owner", "--no-privileges", "--exit-on-error",
          f"--dbname={url}", str(dump)], env)

    def undo() -> None:
        _run([_tool("psql"), "--quiet", "--no-psqlrc", "--set=ON_ERROR_STOP=1", f"--dbname={url}", "--command",
              "DROP SCHEMA public CASCADE; CREATE SCHEMA public;"], env)

    return undo, lambda: None


def restore_instance(source: Path) -> BackupSummary:
    """Bring a backup back into this instance, which must be empty (a new database, migrated or not, and an empty
    upload folder); the schema is then brought up to this version's."""
    backend = _backend()
    source = Path(source)
    try:
        archive = tarfile.open(source, "r:gz")
    except (OSError, tarfile.TarError) as exc:
        raise BackupError(f"{source} is not a Fangan backup ({exc})") from exc
    with archive, tempfile.TemporaryDirectory(prefix="fangan-restore-") as work:
        members = {m.name: m for m in archive.getmembers()}
        try:
            manifest = json.loads(archive.extractfile(members["manifest.json"]).read())
        except (KeyError, AttributeError, ValueError) as exc:
            raise BackupError(f"{source} has no manifest: it is not a Fangan backup") from exc
        if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
            raise BackupError(f"{source} is not a Fangan backup of version {VERSION}")
        if manifest.get("database") != backend:
            raise BackupError(f"the backup is of a {manifest.get('database')} database; this instance uses "
                              f"{backend}: restore it into the same kind of database")
        if manifest.get("revision") not in known_revisions():
            raise BackupError(f"the backup's database is at revision {manifest.get('revision')}, which this version "
                              "of Fangan does not know (a newer one made it): restore it with that version")
        busy = _rows_anywhere()
        if busy is not None:
            raise BackupError(f"this instance is not empty ({busy[1]} rows in {busy[0]}): restore into a new database")
        root = upload_root()
        if root.is_dir() and any(p.is_file() for p in root.rglob("*")):
            raise BackupError(f"the upload folder {root} is not empty")
        dump_name = "database.sqlite" if backend == "sqlite" else "database.pgdump"
        member = members.get(dump_name)
        if member is None or not member.isfile():
            raise BackupError(f"{source} holds no {dump_name}")
        dump = Path(work) / dump_name
        with archive.extractfile(member) as stream, dump.open("wb") as out:
            shutil.copyfileobj(stream, out)
        root.parent.mkdir(parents=True, exist_ok=True)
        staged = Path(tempfile.mkdtemp(prefix=".restoring-", dir=root.parent))  # beside it: renamed into place
        count = 0
        for name, info in members.items():
            relative = _member_path(name)
            if relative is None or not info.isfile():
                continue
            path = staged.joinpath(*relative.parts)
            path.parent.mkdir(parents=True, exist_ok=True)
            with archive.extractfile(info) as stream, path.open("wb") as out:
                shutil.copyfileobj(stream, out)
            path.chmod(0o640)
            count += 1
        db.session.remove()
        db.engine.dispose()
        try:
            undo, forget = _swap_database(backend, dump)
        except BaseException:
            shutil.rmtree(staged, ignore_errors=True)
            raise
        try:
            from flask_migrate import upgrade

            upgrade()  # a backup made by an older version gets this version's schema
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - whatever stops it, the instance goes back to empty
            db.session.remove()
            db.engine.dispose()
            undo()
            shutil.rmtree(staged, ignore_errors=True)
            raise BackupError(f"the restored database could not be brought to this version's schema ({exc}); "
                              "the instance is empty again") from exc
        if root.is_dir():
            shutil.rmtree(root)  # no file in it, as checked
        os.replace(staged, root)
        forget()
    return BackupSummary(source, backend, manifest.get("revision"), count, source.stat().st_size)


# -- moving to another database -----------------------------------------------------------------------------------


_SQL_NULL_JSON = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


def _copy_table(source: Any, into: Any, table: Any) -> int:
    """Copy one table's rows. A column pointing into its own table (a unit's parent) is filled in afterwards, as a
    parent may come after its child in key order; SQL NULL in a JSON column stays SQL NULL."""
    order = list(table.primary_key.columns) or list(table.columns)
    own = [fk.parent.name for fk in table.foreign_keys if fk.column.table is table]
    json_columns = {c.name for c in table.columns if isinstance(c.type, JSON)}
    keys = [c.name for c in table.primary_key.columns]
    later: list[dict] = []
    count = 0
    # A JSON value that is SQL NULL (no shape) is written as SQL NULL, not as the JSON text `null`.
    insert = table.insert().values({name: bindparam(name, type_=_SQL_NULL_JSON) for name in json_columns}) \
        if json_columns else table.insert()
    result = source.execution_options(yield_per=COPY_BATCH).execute(select(table).order_by(*order))
    for batch in result.partitions(COPY_BATCH):
        values = []
        for row in batch:
            item = dict(row._mapping)
            if own and any(item.get(name) is not None for name in own):
                later.append({**{f"k_{k}": item[k] for k in keys}, **{f"v_{n}": item[n] for n in own}})
                item.update({name: None for name in own})
            values.append(item)
        into.execute(insert, values)
        count += len(batch)
    if later:
        statement = table.update().where(*[table.c[k] == bindparam(f"k_{k}") for k in keys]).values(
            {name: bindparam(f"v_{name}") for name in own})
        for start in range(0, len(later), COPY_BATCH):
            into.execute(statement, later[start:start + COPY_BATCH])
    return count

COPY_BATCH = 1_000


@dataclass(frozen=True)
class CopySummary:
    tables: int
    rows: int


def copy_database(target_url: str, progress: Callable[[str, int], None] | None = None) -> CopySummary:
    """Every row of this instance's database into another one (PostgreSQL when the embedded SQLite is outgrown).

    The target is brought to this version's schema first and must hold no rows. The rows are copied table by table
    (parents before children) in one transaction: the target gets all of them or none. Sequences then continue
    after the highest id copied. `progress(table, rows)` is told after each table."""
    from .. import create_app

    target = make_url(target_url)
    if target.get_backend_name() not in ("postgresql", "sqlite"):
        raise BackupError(f"cannot copy into a {target.get_backend_name()} database")
    if target.render_as_string(hide_password=False) == _url().render_as_string(hide_password=False):
        raise BackupError("the target is this instance's own database")
    revision = _revision()
    other = create_app({"SQLALCHEMY_DATABASE_URI": target.render_as_string(hide_password=False),
                        "FANGAN_JOBS_URL": "memory://"})
    try:
        return _copy_into(other, target, revision, progress)
    finally:
        with other.app_context():
            db.session.remove()
            db.engine.dispose()  # the target's connections, whatever happened


def _copy_into(other: Any, target: URL, revision: str | None,
               progress: Callable[[str, int], None] | None) -> CopySummary:
    with other.app_context():
        from flask_migrate import upgrade

        upgrade()
        if _revision() != revision:
            raise BackupError(f"this instance's database is at revision {revision}, the code at {_revision()}: "
                              "run `fangan db upgrade` first")
        busy = _rows_anywhere()
        if busy is not None:
            raise BackupError(f"the target is not empty ({busy[1]} rows in {busy[0]})")
        db.session.remove()
        engine = db.engine
    rows = 0
    tables = [t for t in db.metadata.sorted_tables if t.name != "alembic_version"]
    source = db.session.connection()
    known = {t.name for t in tables} | {"alembic_version"}
    for name in inspect(source).get_table_names():
        if name not in known and db.session.execute(text(f'SELECT count(*) FROM "{name}"')).scalar():  # noqa: S608
            raise BackupError(f"the table {name} holds rows this version does not know: nothing was copied")
    with engine.begin() as into:
        for table in tables:
            count = _copy_table(source, into, table)
            rows += count
            if progress is not None:
                progress(table.name, count)
        if target.get_backend_name() == "postgresql":
            for table in tables:
                keys = list(table.primary_key.columns)
                if len(keys) != 1 or not isinstance(keys[0].type, Integer):
                    continue
                column = keys[0].name
                # (a key without a sequence gives NULL, and setval of NULL does nothing)
                into.execute(text(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', '{column}'), "  # noqa: S608 - our names
                    f"COALESCE(MAX({column}), 1), MAX({column}) IS NOT NULL) FROM {table.name}"))
    return CopySummary(len(tables), rows)
