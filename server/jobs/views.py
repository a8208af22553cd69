"""A job's page (progress, then its result), the part htmx polls, the result's download, and one's own jobs."""

from __future__ import annotations

from flask import Blueprint, render_template, send_file
from flask_babel import gettext as _
from flask_login import current_user

from ..core.errors import NotFound
from ..extensions import htmx
from . import service

bp = Blueprint("jobs", __name__, template_folder="templates", url_prefix="/jobs")


@bp.get("/")
def index():
    return render_template("jobs/index.html", jobs=service.my_jobs(current_user), title_of=service.job_title)


@bp.get("/<int:job_id>")
def job(job_id: int):
    """The job's page: its progress while it runs (htmx asks for the part every second; without JavaScript the
    page reloads itself), then its result."""
    row = service.get_job(current_user, job_id)
    template = "jobs/_status.html" if htmx and htmx.target == "job-status" else "jobs/job.html"
    return render_template(template, job=row, title=service.job_title(row), origin=service.job_origin(row),
                           ready=service.result_path(row) is not None)


@bp.get("/<int:job_id>/result")
def result(job_id: int):
    row = service.get_job(current_user, job_id)
    path = service.result_path(row)
    if path is None:
        raise NotFound(_("This job has no result (yet)."))
    response = send_file(path, mimetype=row.result_type, as_attachment=True, download_name=row.result_name)
    # A result may hold people's names and phones: kept by no browser or proxy.
    response.headers["Cache-Control"] = "private, no-store"
    return response
