"""Jobs: start one (a registered kind, checked like the action it stands for), follow it, fetch its result;
and run one, on a worker, exactly once per start.

A job kind is one registration (`JOB_KINDS`): its title, who may start it, the function that does the
work with a `progress(done, total)` to call as it goes, and the page it was asked from. The work returns the
result's bytes, name and type (or no file), and a sentence for the job's page. It runs inside a request
context made like the one it was asked from (the same site address and language), as the person who asked.

The work's writes are committed with its result, once: a job that fails changes nothing. Its progress is
committed as it goes, so it calls `progress` only before it writes (a commit would keep what it has written
so far).

A job that works on an upload (a spreadsheet to import) gets it with `start_job(..., upload=bytes)`: kept in
the jobs folder until the job has finished, read with `job_upload(job)`.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import current_app, has_request_context, request
from flask_babel import force_locale, get_locale
from flask_babel import gettext as _
from sqlalchemy import event, update
from sqlalchemy.orm import Session, SessionTransaction

from ..auth import permissions
from ..core.database import utcnow
from ..core.errors import DomainError, NotFound, PermissionDenied
from ..core.registry import Registry, registry
from ..extensions import db
from . import queue
from .models import Job

if TYPE_CHECKING:
    from ..auth.models import AnyUser

log = logging.getLogger(__name__)

STALE = dt.timedelta(minutes=10)  # a running job silent this long was interrupted (its worker stopped)
_TO_ENQUEUE = "fangan.jobs.to_enqueue"
_UPLOAD = "_upload"  # params: the name of the job's upload in the jobs folder


class JobError(DomainError):
    """What a job could not do, in words for the person who asked (shown on the job's page)."""


@dataclass(frozen=True)
class JobResult:
    content: bytes | None    # None: the job leaves no file (publishing, say), only its summary
    name: str = ""           # the file name it downloads as
    mimetype: str = ""
    summary: str | None = None  # what was done, in words for the person (shown on the job's page)


Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class JobKind:
    title: Callable[[], str]                                   # what the job's page calls it (translated)
    may_start: Callable[[AnyUser, str | None, dict], bool]      # the permission of the action it stands for
    run: Callable[[Job, Any, Progress], JobResult]              # (job, the person, progress) → result
    origin: Callable[[Job], tuple[str, str] | None] | None = None  # the page it was asked from: (link text, URL)


JOB_KINDS: Registry[JobKind] = registry("job kind")


# -- starting and following ------------------------------------------------------------------------------------

def start_job(user: AnyUser, kind: str, scheme_key: str | None, params: dict[str, Any],
              upload: bytes | None = None) -> Job:
    """Queue a job for a worker (once this transaction commits); refused like the action it stands for.
    `upload`: a file the job works on, kept in the jobs folder until it has finished."""
    entry = JOB_KINDS[kind]
    if not entry.may_start(user, scheme_key, params):
        raise PermissionDenied(_("You may not do this."))
    # The worker renders as this request would: the same site address (links and QR codes) and language.
    context = {"base_url": request.host_url if has_request_context() else None, "locale": str(get_locale() or "")}
    kept = {_UPLOAD: f"upload-{secrets.token_hex(16)}"} if upload is not None else {}
    job = Job(kind=kind, scheme_key=scheme_key, user_id=getattr(user, "id", None),
              params={**params, "_context": context, **kept}, state="queued")
    db.session.add(job)
    db.session.flush()
    if upload is not None:  # after the row: a refused or failed start keeps no file
        (jobs_folder() / kept[_UPLOAD]).write_bytes(upload)
    db.session.info.setdefault(_TO_ENQUEUE, []).append(job.id)
    return job


def job_upload(job: Job) -> bytes:
    """The file the job was started with."""
    name = (job.params or {}).get(_UPLOAD)
    path = jobs_folder() / name if name else None
    if path is None or not path.is_file():
        raise JobError(_("The uploaded file is no longer there: upload it again."))
    return path.read_bytes()


def _drop_upload(params: dict[str, Any] | None) -> None:
    name = (params or {}).get(_UPLOAD)
    if name:
        (jobs_folder() / name).unlink(missing_ok=True)


def get_job(user: AnyUser, job_id: int) -> Job:
    job = db.session.get(Job, job_id)
    if job is None:
        raise NotFound(_("No such job."))
    if not permissions.can_view_job(user, job):
        raise PermissionDenied(_("This is not your job."))
    return job


def my_jobs(user: AnyUser, limit: int = 20) -> list[Job]:
    return list(db.session.scalars(db.select(Job).where(Job.user_id == user.id)
                                   .order_by(Job.id.desc()).limit(limit)))


def job_title(job: Job) -> str:
    entry = JOB_KINDS.get(job.kind)
    return entry.title() if entry else job.kind


def job_origin(job: Job) -> tuple[str, str] | None:
    """(link text, URL) of the page the job was asked from, for its page to lead back to."""
    entry = JOB_KINDS.get(job.kind)
    return entry.origin(job) if entry and entry.origin else None


def result_path(job: Job) -> Path | None:
    """The finished job's file, if it is still there."""
    if job.state != "done" or not job.result_file:
        return None
    path = jobs_folder() / job.result_file
    return path if path.is_file() else None


def jobs_folder() -> Path:
    folder = Path(current_app.config.get("FANGAN_JOBS_DIR") or Path(current_app.instance_path) / "jobs")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@event.listens_for(Session, "after_commit")
def _queue_committed(session: Session) -> None:
    """A job is handed to the queue only once its row is committed: the worker reads it from the database."""
    if session.in_nested_transaction():
        return
    for job_id in session.info.pop(_TO_ENQUEUE, None) or []:
        try:
            queue.enqueue(job_id)
        except Exception:  # the queue is down: the job waits, and `fangan tick` hands it over again later
            log.exception("job %s could not be handed to the queue", job_id)


@event.listens_for(Session, "after_transaction_end")
def _queue_dropped(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # ended without a commit (that emptied the list): nothing to run
        session.info.pop(_TO_ENQUEUE, None)


# -- running (on a worker) -------------------------------------------------------------------------------------

def run_job(job_id: int) -> None:
    """Run a queued job: claimed by one worker only (a second message for it finds it taken and does nothing),
    its progress committed as it goes, its result written to the jobs folder and committed with the work's
    writes. A job that fails says so on its page, whatever went wrong (its own words — a domain error speaks
    to the person — or a plain "failed" with the reason in the log), and keeps none of its writes."""
    now = utcnow()
    claimed = db.session.execute(update(Job).where(Job.id == job_id, Job.state == "queued").values(
        state="running", started_at=now, beat_at=now, attempts=Job.attempts + 1)).rowcount
    db.session.commit()
    if not claimed:
        return
    job = db.session.get(Job, job_id)
    kind, user_id, context = job.kind, job.user_id, dict(job.params.get("_context") or {})
    params, attempt = dict(job.params or {}), job.attempts
    # This run's own row: a run that `fangan tick` gave up on as silent, and handed to another worker, may still
    # be going; it then writes nothing more, neither its progress nor its end nor its work.
    mine = (Job.id == job_id, Job.state == "running", Job.attempts == attempt)
    steps = {"total": job.total or 0}
    from ..auth.models import User

    def progress(done: int, total: int) -> None:
        steps["total"] = total
        still = db.session.execute(update(Job).where(*mine).values(done=done, total=total, beat_at=utcnow()))
        _commit_keeping_loaded()
        if not still.rowcount:
            raise _Superseded

    try:
        entry = JOB_KINDS.get(kind)
        if entry is None:
            raise JobError(_("This kind of job is no longer known."))
        user = db.session.get(User, user_id) if user_id else None
        # A job writes (its progress): on SQLite its transactions take the write lock when they begin, so they
        # wait their turn behind the pages' writers instead of failing with "database is locked".
        with current_app.test_request_context(base_url=context.get("base_url") or "http://localhost/",
                                              method="POST"), \
                force_locale(context.get("locale") or current_app.config["BABEL_DEFAULT_LOCALE"]):
            result = entry.run(job, user, progress)
        done: dict[str, Any] = {"state": "done", "note": result.summary, "total": steps["total"] or 1,
                                "done": steps["total"] or 1, "finished_at": utcnow()}
        written = None
        if result.content is not None:
            name = f"{job_id}-{secrets.token_hex(8)}{Path(result.name).suffix}"
            temporary = jobs_folder() / f".{name}.part"
            temporary.write_bytes(result.content)
            temporary.replace(jobs_folder() / name)  # whole, or not at all
            written = jobs_folder() / name
            done.update(result_file=name, result_name=result.name, result_type=result.mimetype)
        if not db.session.execute(update(Job).where(*mine).values(**done)).rowcount:
            if written is not None:
                written.unlink(missing_ok=True)
            raise _Superseded
        db.session.commit()  # the work's writes with its end, or neither
        _drop_upload(params)
        return
    except _Superseded:
        db.session.rollback()
        log.warning("job %s (%s): run %s was handed to another worker; its work is dropped", job_id, kind, attempt)
        return
    except DomainError as error:  # JobError, and what the services refuse (a conflict, a permission)
        note = str(error)
    except Exception:
        log.exception("job %s (%s) failed", job_id, kind)
        note = _("The job failed. The administrators can see why in the log.")
    if _fail(mine, note):
        _drop_upload(params)


class _Superseded(Exception):  # noqa: N818 - not an error: another run of the job has taken over
    """This run of a job was handed to another worker meanwhile."""


def _commit_keeping_loaded() -> None:
    """Commit (the job's progress) without expiring what the work has read: a commit would otherwise have every
    row it still holds read again, one by one."""
    session = db.session()
    keep = session.expire_on_commit
    session.expire_on_commit = False
    try:
        session.commit()
    finally:
        session.expire_on_commit = keep


def _fail(mine: tuple, note: str) -> bool:
    """Mark this run of a job failed, whatever state the session was left in by what went wrong (unless another
    run has taken over: then it is that run's to end). Whether it was marked."""
    db.session.rollback()
    try:
        marked = db.session.execute(update(Job).where(*mine).values(state="failed", note=note,
                                                                      finished_at=utcnow())).rowcount
        db.session.commit()
        return bool(marked)
    except Exception:
        log.exception("job could not be marked failed")
        db.session.rollback()
        return False


MAX_ATTEMPTS = 3  # a job that stopped its worker this often is not started again


def requeue_interrupted(now: dt.datetime | None = None) -> int:
    """Jobs left running by a worker that stopped (silent for `STALE`) go back to the queue, to run again —
    up to MAX_ATTEMPTS; and queued jobs no worker took for as long are handed to the queue again (the first
    hand-over may have failed: a worker claims a job once, so a second message is harmless)."""
    now = now or utcnow()
    silent = (Job.state == "running", Job.beat_at < now - STALE)
    for params in db.session.scalars(db.select(Job.params).where(*silent, Job.attempts >= MAX_ATTEMPTS)):
        _drop_upload(params)  # given up: its upload is not read again
    db.session.execute(update(Job).where(*silent, Job.attempts >= MAX_ATTEMPTS).values(
        state="failed", finished_at=now, note=_("The job stopped its worker %(n)s times: it is not started again.",
                                                n=MAX_ATTEMPTS)))
    again = list(db.session.scalars(db.select(Job.id).where(*silent)))
    # The condition again in the update: a job whose worker spoke meanwhile is left running.
    db.session.execute(update(Job).where(Job.id.in_(again or [-1]), *silent).values(state="queued"))
    waiting = list(db.session.scalars(db.select(Job.id).where(Job.state == "queued", Job.created_at < now - STALE)))
    db.session.info.setdefault(_TO_ENQUEUE, []).extend(dict.fromkeys([*again, *waiting]))
    db.session.commit()
    return len(again)


def forget_old_results(now: dt.datetime | None = None) -> int:
    """Finished jobs' files are kept `FANGAN_JOBS_KEEP_DAYS` (7) days; the job's page then says so."""
    now = now or utcnow()
    days = int(current_app.config.get("FANGAN_JOBS_KEEP_DAYS", 7))
    old = list(db.session.scalars(db.select(Job).where(Job.state == "done", Job.result_file.is_not(None),
                                                       Job.finished_at < now - dt.timedelta(days=days))))
    for job in old:
        (jobs_folder() / job.result_file).unlink(missing_ok=True)
        job.result_file = None
    db.session.commit()
    return len(old)
