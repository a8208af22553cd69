"""Reporters' personal data: kept only as long as the scheme says, then erased by `fangan tick`; one reporter's
data found, exported or erased when they ask (the Personal Information Protection Law). The case itself stays:
the problem, its photos and its handling are the district's record."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask_babel import gettext as _
from sqlalchemy import or_, select, update
from sqlalchemy.exc import SQLAlchemyError

from ..audit.service import record_audit
from ..auth import permissions
from ..core.clock import utcnow
from ..core.errors import PermissionDenied
from ..core.secrets import unseal
from ..definitions.service import list_schemes, scheme_in_force
from ..extensions import db
from ..workflow.models import Case
from . import engine
from .models import PublicReport

if TYPE_CHECKING:
    from ..auth.models import AnyUser

log = logging.getLogger(__name__)

# What "erased" clears: the reporter's name and phone, the fingerprints of their address and device, and what they
# wrote in the follow-up.
ERASED = {"name_sealed": None, "phone_sealed": None, "phone_masked": None, "email_sealed": None, "address_hash": None,
          "device_hash": None, "followup_note": None}


def _holds_contacts() -> Any:
    return or_(PublicReport.name_sealed.is_not(None), PublicReport.phone_sealed.is_not(None),
               PublicReport.email_sealed.is_not(None), PublicReport.address_hash.is_not(None),
               PublicReport.device_hash.is_not(None))


def erase_expired_contacts(now: dt.datetime | None = None) -> dict[str, int]:
    """Erase the contacts of reports whose case closed more than the scheme's `keep_contacts_days` ago, in every
    district that sets it; {district: reports erased}."""
    now = now or utcnow()
    erased: dict[str, int] = {}
    for record in list_schemes():
        scheme = scheme_in_force(record.key)
        days = scheme.public.keep_contacts_days if scheme is not None else None
        if not days:
            continue
        closed = select(Case.id).where(Case.scheme_key == record.key, Case.state_kind == "final",
                                       Case.closed_at < now - dt.timedelta(days=days))
        try:
            with db.session.begin_nested():  # one district's trouble stops no other's
                result = db.session.execute(update(PublicReport).where(
                    PublicReport.scheme_key == record.key, PublicReport.case_id.in_(closed), _holds_contacts())
                    .values(**ERASED).execution_options(synchronize_session=False))
        except SQLAlchemyError:
            log.exception("erasing the expired contacts of %s failed", record.key)
            continue
        if result.rowcount:
            erased[record.key] = result.rowcount
            record_audit("public.contacts_expired", "scheme", None, scheme_key=record.key,
                         after={"reports": result.rowcount, "keep_contacts_days": days})
    return erased


@dataclass(frozen=True)
class ReporterData:
    """What is kept of one reporter in a district: each of their reports, with the contact they left."""

    scheme_key: str
    phone: str | None
    reports: list[dict[str, Any]]


def _reports_of(scheme_key: str, phone: str | None, code: str | None) -> list[PublicReport]:
    """The reports of one reporter: the report of a tracking code (read as the public page reads one) and every
    report left with its phone, or every report left with a phone number."""
    by_code = None
    if code:
        by_code = db.session.scalar(select(PublicReport).where(
            PublicReport.scheme_key == scheme_key, PublicReport.code == engine.code_to_look_up(code)))
        if by_code is None:
            return []
        phone = unseal(by_code.phone_sealed) if by_code.phone_sealed else None
    wanted = engine.phone_digits(phone or "")
    ids = {by_code.id} if by_code is not None else set()
    if wanted:
        # A sealed phone cannot be looked up by value: every sealed phone of the district is opened, streamed
        # (a district's whole history, at city size some 100,000 reports: seconds, for a rare request).
        rows = db.session.execute(select(PublicReport.id, PublicReport.phone_sealed).where(
            PublicReport.scheme_key == scheme_key, PublicReport.phone_sealed.is_not(None))
            .execution_options(yield_per=1_000))
        ids |= {report_id for report_id, sealed in rows if engine.phone_digits(unseal(sealed) or "") == wanted}
    if not ids:
        return []
    return list(db.session.scalars(select(PublicReport).where(PublicReport.id.in_(ids)).order_by(PublicReport.id)))


def find_reporter(user: AnyUser, scheme_key: str, phone: str | None = None, code: str | None = None) -> ReporterData:
    """One reporter's reports in a district, by their phone number or a tracking code, with what is kept of them:
    the export a reporter may ask for."""
    if not permissions.can_answer_reporters(user, scheme_key):
        raise PermissionDenied(_("You may not see reporters' data in this district."))
    reports = _reports_of(scheme_key, phone, code)
    rows = []
    for report in reports:
        case = db.session.get(Case, report.case_id)
        rows.append({
            "code": report.code, "reported_at": report.created_at.isoformat(timespec="seconds"),
            "channel": report.channel, "name": unseal(report.name_sealed), "phone": unseal(report.phone_sealed),
            "email": unseal(report.email_sealed),
            "contacts_erased": not (report.phone_sealed or report.name_sealed or report.email_sealed),
            "description": (case.data or {}).get("description") if case else None,
            "state": case.state if case else None, "satisfaction": report.satisfaction,
            "followup_note": report.followup_note,
        })
    # (ids, not tracking codes: a code is a key to the follow-up, and the audit log is kept for ever)
    record_audit("public.reporter_export", "scheme", None, user=user, scheme_key=scheme_key,
                 after={"reports": [r.id for r in reports], "by": "code" if code else "phone"})
    return ReporterData(scheme_key, engine.phone_digits(phone or "") or None, rows)


def erase_reporter(user: AnyUser, scheme_key: str, phone: str | None = None, code: str | None = None) -> int:
    """Erase one reporter's contacts from every report of theirs in the district (found as `find_reporter`
    finds them: by phone, or a tracking code and every report left with that code's phone); the number of
    reports changed."""
    if not permissions.can_answer_reporters(user, scheme_key):
        raise PermissionDenied(_("You may not erase reporters' data in this district."))
    reports = _reports_of(scheme_key, phone, code)
    for report in reports:
        for key, value in ERASED.items():
            setattr(report, key, value)
    db.session.flush()
    record_audit("public.reporter_erased", "scheme", None, user=user, scheme_key=scheme_key,
                 after={"reports": [r.id for r in reports], "by": "code" if code else "phone"})
    return len(reports)
