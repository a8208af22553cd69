"""Database set-up shared by every package: the engine tweaks SQLite needs, and model mixins."""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

import sqlalchemy
from flask import Flask, has_request_context, request
from sqlalchemy import JSON, DateTime, TypeDecorator, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .clock import utcnow

# JSON everywhere, JSONB on PostgreSQL (indexable, compact).
JsonType = JSON().with_variant(JSONB(), "postgresql")


class UtcDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on both databases (SQLite hands back naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime stored; use an aware UTC datetime")
        return value.astimezone(dt.UTC) if value is not None else None

    def process_result_value(self, value: dt.datetime | None, dialect) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value


@event.listens_for(Engine, "connect")
def _sqlite_connect(dbapi_connection, _record) -> None:
    # pysqlite's own transaction handling breaks SAVEPOINT; let SQLAlchemy emit BEGIN itself.
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")  # a writer waits its turn (seconds), never fails at once
        cursor.close()


@event.listens_for(Engine, "begin")
def _sqlite_begin(conn) -> None:
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE" if _writes_expected() else "BEGIN")


def _writes_expected() -> bool:
    """Whether this transaction is likely to write: anything but a page read (GET, HEAD, OPTIONS).

    A write transaction takes SQLite's write lock at BEGIN (IMMEDIATE): concurrent writers then queue behind
    it for up to the busy timeout. Started with a plain BEGIN, a transaction that read and then writes
    cannot wait for the lock — SQLite answers "database is locked" at once — which is what 30 of 32
    simultaneous API reports met. Page reads stay deferred, so they never wait for writers (WAL).
    """
    if not has_request_context():
        return True  # the CLI, `fangan tick`, background threads: they are there to write
    return request.method not in ("GET", "HEAD", "OPTIONS")


_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def insert_unless_taken(model: Any, *unique: str) -> Any:
    """INSERT … ON CONFLICT (unique columns) DO NOTHING RETURNING the object, on the session's database, to
    execute with a list of rows: a row whose key is taken is skipped (nothing returned for it) with no error,
    so no savepoint is needed around it."""
    return _insert_unless_taken(db.session.get_bind().dialect.name, model, unique)


@functools.cache
def insert_returning(model: Any) -> Any:
    """INSERT … RETURNING the object, to execute with a list of rows: for a row nothing else depends on
    yet, inserted at once rather than through a flush (built once: only the rows change)."""
    return sqlalchemy.insert(model).returning(model)


@functools.cache
def _insert_unless_taken(dialect: str, model: Any, unique: tuple[str, ...]) -> Any:
    # Built once: the statement is the same every time, the rows come with the execution.
    return _INSERTS[dialect](model).on_conflict_do_nothing(index_elements=list(unique)).returning(model)


class TimestampMixin:
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime(), default=utcnow, nullable=False)


def init_app(app: Flask) -> None:
    db.init_app(app)
