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
from sqlalchemy import Integer, inspect, select, text
from sqlalchemy.engine import URL, make_url

from ..core.errors import DomainError
from ..extensions import db

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
        with tarfile.open(partial, "w:gz") as archive:
            data = json.dumps(manifest, indent=2).encode()
            info = tarfile.TarInfo("manifest.json")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
            archive.add(dump, arcname=dump.name)
            for path in files:
                archive.add(path, arcname=f"uploads/{path.relative_to(root).as_posix()}")
        os.replace(partial, target)  # a backup is there whole, or not at all
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
        db.session.remove()
        db.engine.dispose()
        if backend == "sqlite":
            target = Path(_url().database or "")
            for journal in ("-wal", "-shm", "-journal"):  # the empty database's, which would not match the copy
                target.with_name(target.name + journal).unlink(missing_ok=True)
            partial = target.with_name(target.name + ".restoring")
            shutil.copyfile(dump, partial)
            os.replace(partial, target)
        else:
            url, env = _libpq(_url())
            _run([_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", "--no-privileges", "--exit-on-error",
                  f"--dbname={url}", str(dump)], env)
        count = 0
        for name, info in members.items():
            relative = _member_path(name)
            if relative is None or not info.isfile():
                continue
            path = root.joinpath(*relative.parts)
            path.parent.mkdir(parents=True, exist_ok=True)
            with archive.extractfile(info) as stream, path.open("wb") as out:
                shutil.copyfileobj(stream, out)
            path.chmod(0o640)
            count += 1
    from flask_migrate import upgrade

    upgrade()  # a backup made by an older version gets this version's schema
    return BackupSummary(source, backend, manifest.get("revision"), count, source.stat().st_size)


# -- moving to another database -----------------------------------------------------------------------------------

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
    with engine.begin() as into:
        for table in tables:
            order = list(table.primary_key.columns) or list(table.columns)
            result = source.execution_options(yield_per=COPY_BATCH).execute(select(table).order_by(*order))
            count = 0
            for batch in result.partitions(COPY_BATCH):
                into.execute(table.insert(), [dict(row._mapping) for row in batch])
                count += len(batch)
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
