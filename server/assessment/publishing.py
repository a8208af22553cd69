"""Publishing a period as a job (server/jobs): every unit of a district scored from the data and frozen as a
revision is more than a request should wait for. The period page checks at once whether it may be published
now (`service.check_publish`: who asks, the page's version, appeals, a provisional publication said so); the
job publishes, asking again, and its page leads back to the period. A correction from a unit's marks page
publishes the district again too: its marks are checked at once (`service.check_correction`), and a job
replaces them and publishes the new revision together (`service.correct`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import url_for
from flask_babel import gettext as _

from ..auth import permissions
from ..core.errors import NotFound
from ..extensions import db
from ..jobs.service import JOB_KINDS, JobKind, JobResult, Progress, start_job
from ..org.models import Unit
from . import service

if TYPE_CHECKING:
    from ..auth.models import AnyUser
    from ..jobs.models import Job
    from .models import AssessmentPeriod

PUBLISH = "assessment.publication"
CORRECT = "assessment.correction"


def start_publish(user: AnyUser, period: AssessmentPeriod, version: int | None, reason: str = "", *,
                  close_appeals: bool = False, provisional: bool = False) -> Job:
    """Queue the publication of the period's scores, refused at once if it may not happen now."""
    options: dict[str, Any] = {"close_appeals": close_appeals, "provisional": provisional}
    service.check_publish(user, period, version, reason, **options)
    return start_job(user, PUBLISH, period.scheme_key, {"period": period.id, "version": version,
                                                        "reason": reason, **options})


def run_publish(job: Job, user: AnyUser, progress: Progress) -> JobResult:
    params = job.params
    period = service.get_period(user, params["period"])
    revision = service.publish(user, period, params["version"], params["reason"] or "",
                               close_appeals=bool(params["close_appeals"]), provisional=bool(params["provisional"]),
                               progress=progress)
    said = (_("Published as provisional revision %(n)s.", n=revision.number) if revision.provisional
            else _("Published as revision %(n)s.", n=revision.number))
    return JobResult(None, summary=said)


def start_correction(user: AnyUser, period: AssessmentPeriod, unit_id: int, item_id: str, values: dict[str, Any],
                     reason: str) -> Job:
    """Queue a correction of a published period (the office's marks for a unit's item, and why), refused at
    once if it may not happen."""
    clean = service.check_correction(user, period, item_id, values, reason)
    return start_job(user, CORRECT, period.scheme_key, {"period": period.id, "unit": unit_id, "item": item_id,
                                                         "values": clean, "reason": reason})


def run_correction(job: Job, user: AnyUser, progress: Progress) -> JobResult:
    params = job.params
    period = service.get_period(user, params["period"])
    unit = db.session.get(Unit, params["unit"])
    if unit is None or unit.scheme_key != period.scheme_key:
        raise NotFound(_("No such unit."))
    progress(0, 1)  # before anything is written: a job's progress commits
    revision = service.correct(user, period, unit, params["item"], params["values"], params["reason"])
    return JobResult(None, summary=_("Corrected: published as revision %(n)s.", n=revision.number))


def period_page(job: Job) -> tuple[str, str]:
    """The period a job was asked from (its page leads back there)."""
    return _("the period"), url_for("assessment.period", period_id=job.params["period"])


JOB_KINDS.add(PUBLISH, JobKind(title=lambda: _("Publishing a period's scores"),
                               may_start=lambda user, scheme_key, _params: permissions.can_run_assessment(
                                   user, scheme_key),
                               run=run_publish, origin=period_page))
JOB_KINDS.add(CORRECT, JobKind(title=lambda: _("Correcting a period's published scores"),
                               may_start=lambda user, scheme_key, _params: permissions.can_run_assessment(
                                   user, scheme_key),
                               run=run_correction, origin=period_page))
