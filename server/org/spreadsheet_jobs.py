"""The organisation's spreadsheet export and import as jobs (server/jobs): a city district's units, areas and
posts are tens of thousands of rows, more than a request should read, check and write. The page checks what it
can at once (who asks, the file's size and type), then the job's page follows the work and offers its file.
The command line (`fangan org import|export`) still does the same work at once, through `spreadsheet.py`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import url_for
from flask_babel import gettext as _

from ..auth import permissions
from ..core.errors import PermissionDenied
from ..core.spreadsheets import XLSX_TYPE
from ..jobs.service import JOB_KINDS, JobError, JobKind, JobResult, Progress, job_upload, start_job
from .spreadsheet import ImportInvalid, check_export, export_org, import_org, problem_lines, upload_kind

if TYPE_CHECKING:
    from ..auth.models import AnyUser
    from ..jobs.models import Job

EXPORT = "org.export"
IMPORT = "org.import"


def start_export(user: AnyUser, scheme_key: str, fmt: str, sheet: str | None = None) -> Job:
    """Queue the export (the workbook, or one sheet as CSV); refused at once if it may not or cannot be made."""
    check_export(user, scheme_key, fmt, sheet)
    return start_job(user, EXPORT, scheme_key, {"format": fmt, "sheet": sheet if fmt == "csv" else None})


def run_export(job: Job, user: AnyUser, progress: Progress) -> JobResult:
    content, mimetype, name = export_org(user, job.scheme_key, job.params["format"], job.params.get("sheet"),
                                         progress=progress)
    return JobResult(content, name, mimetype)


def start_import(user: AnyUser, scheme_key: str, data: bytes, filename: str, sheet: str | None = None) -> Job:
    """Queue the import of an upload, kept for the job: its size and type are checked here (ImportInvalid), every
    row by the job."""
    if not permissions.can_import_org(user, scheme_key):
        raise PermissionDenied(_("You may not import this district's organisation."))
    _kind, problems = upload_kind(data, filename, sheet)
    if problems:
        raise ImportInvalid(problems)
    return start_job(user, IMPORT, scheme_key, {"filename": (filename or "upload")[:200], "sheet": sheet},
                     upload=data)


def run_import(job: Job, user: AnyUser, progress: Progress) -> JobResult:
    """Every row checked, then all of it written with the job's result, or nothing: the problems are the job's
    failure, one line each."""
    params = job.params
    try:
        result = import_org(user, job.scheme_key, job_upload(job), params["filename"], sheet=params.get("sheet"),
                            progress=progress)
    except ImportInvalid as exc:
        raise JobError("\n".join([str(exc), *problem_lines(exc.errors)])) from None
    return JobResult(result.report(), f"{job.scheme_key}-import-report.xlsx", XLSX_TYPE, summary=result.summary())


def _import_page(job: Job) -> tuple[str, str]:
    return _("the import and export page"), url_for("org.import_spreadsheet", scheme_key=job.scheme_key)


def _may(check: Any) -> Any:
    return lambda user, scheme_key, _params: check(user, scheme_key)


JOB_KINDS.add(EXPORT, JobKind(title=lambda: _("Organisation export"), may_start=_may(permissions.can_export_org),
                              run=run_export, origin=_import_page))
JOB_KINDS.add(IMPORT, JobKind(title=lambda: _("Organisation import"), may_start=_may(permissions.can_import_org),
                              run=run_import, origin=_import_page))
