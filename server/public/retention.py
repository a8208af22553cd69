"""Reporters' personal data: kept only as long as the scheme says, then erased by `fangan tick`; one reporter's
data found, exported or erased when they ask (个人信息保护法). The case itself stays: the problem, its photos
and its handling are the district's record."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask_babel import gettext as _
from sqlalchemy import or_, select, update

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

# What "erased" clears: the reporter's name and phone, and the fingerprints of their address and device.
ERASED = {"name_sealed": None, "phone_sealed": None, "phone_masked": None, "address_hash": None, "device_hash": None}
MAX_SCANNED = 200_000  # reports unsealed to find one phone number (a district's whole history, at city size)


def _holds_contacts() -> Any:
    return or_(PublicReport.name_sealed.is_not(None), PublicReport.phone_sealed.is_not(None),
               PublicReport.address_hash.is_not(None), PublicReport.device_hash.is_not(None))


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
        result = db.session.execute(update(PublicReport).where(
            PublicReport.scheme_key == record.key, PublicReport.case_id.in_(closed), _holds_contacts())
            .values(**ERASED).execution_options(synchronize_session=False))
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
    query = select(PublicReport).where(PublicReport.scheme_key == scheme_key).order_by(PublicReport.id)
    if code:
        return list(db.session.scalars(query.where(PublicReport.code == code.strip().upper())))
    wanted = engine.phone_digits(phone or "")
    if not wanted:
        return []
    found = []
    # A sealed phone cannot be looked up: each one that may hold it is opened, the newest reports first.
    for report in db.session.scalars(query.where(PublicReport.phone_sealed.is_not(None)).limit(MAX_SCANNED)):
        if engine.phone_digits(unseal(report.phone_sealed) or "") == wanted:
            found.append(report)
    return found


def find_reporter(user: AnyUser, scheme_key: str, phone: str | None = None, code: str | None = None) -> ReporterData:
    """One reporter's reports in a district, by their phone number or a tracking code, with what is kept of them:
    the export a reporter may ask for."""
    if not permissions.can_manage_scheme(user, scheme_key) and not getattr(user, "is_admin", False):
        raise PermissionDenied(_("You may not see reporters' data in this district."))
    reports = _reports_of(scheme_key, phone, code)
    rows = []
    for report in reports:
        case = db.session.get(Case, report.case_id)
        rows.append({
            "code": report.code, "reported_at": report.created_at.isoformat(timespec="seconds"),
            "channel": report.channel, "name": unseal(report.name_sealed), "phone": unseal(report.phone_sealed),
            "contacts_erased": report.phone_sealed is None and report.name_sealed is None,
            "description": (case.data or {}).get("description") if case else None,
            "state": case.state if case else None, "satisfaction": report.satisfaction,
            "followup_note": report.followup_note,
        })
    record_audit("public.reporter_export", "scheme", None, user=user, scheme_key=scheme_key,
                 after={"reports": [r["code"] for r in rows], "by": "code" if code else "phone"})
    return ReporterData(scheme_key, engine.phone_digits(phone or "") or None, rows)


def erase_reporter(user: AnyUser, scheme_key: str, phone: str | None = None, code: str | None = None) -> int:
    """Erase one reporter's contacts from every report of theirs in the district (found as `find_reporter`
    finds them); the number of reports changed."""
    if not permissions.can_manage_scheme(user, scheme_key) and not getattr(user, "is_admin", False):
        raise PermissionDenied(_("You may not erase reporters' data in this district."))
    reports = _reports_of(scheme_key, phone, code)
    for report in reports:
        for key, value in ERASED.items():
            setattr(report, key, value)
    db.session.flush()
    record_audit("public.reporter_erased", "scheme", None, user=user, scheme_key=scheme_key,
                 after={"reports": [r.code for r in reports], "by": "code" if code else "phone"})
    return len(reports)
