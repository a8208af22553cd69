"""Open311 GeoReport v2 (http://wiki.open311.org/GeoReport_v2): the same public reports, for the apps and
platforms that speak the standard. A district with public reporting is a jurisdiction (its scheme key); its
categories are the services; a request fills the district's public report form, as the form's `open311`
block says, and the spec's errors come back as `[{"code": …, "description": …}]` (or `<errors>`).

`service_request_id` is the report's number, which anyone may list; the tracking code, which lets its holder
answer the follow-up, is only ever given to the client that sent the request (as the request's `token`, in
the service notice)."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, current_app, g, json, request, url_for
from flask_babel import gettext as _
from flask_limiter.util import get_remote_address
from sqlalchemy import select
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from ..auth.access import public, token_authenticated
from ..core.clock import utcnow
from ..core.errors import DomainError, NotFound, machine_errors
from ..core.spreadsheets import xml_text
from ..definitions.models import SchemeRecord, SchemeVersion
from ..definitions.service import scheme_categories
from ..extensions import csrf, db, limiter
from ..forms import service as forms
from ..forms.engine import FormSpec
from ..org.models import Area
from ..web.i18n import tr
from ..web.limits import device_key, read_limit, report_limit
from ..workflow.models import Case
from . import engine, service
from .models import PublicReport

bp = token_authenticated(Blueprint("open311", __name__, url_prefix="/open311/v2"))
# The clients' keys and limits are read at start: a limit that cannot be read stops the server with its reason.
bp.record_once(lambda state: engine.open311_clients(state.app.config.get("FANGAN_OPEN311_KEYS"),
                                                    state.app.config.get("FANGAN_OPEN311_CLIENT_LIMIT")))
csrf.exempt(bp)  # no cookie is read here: a request is anonymous, or carries its client's api_key
FORMATS = ("json", "xml")
MAX_RESULTS = 1000
MAX_DAYS = 90  # the span of start_date..end_date one listing may ask for
QUERY_LIMITS = {"service_request_id": 2000, "service_code": 2000, "status": 20, "jurisdiction_id": 64}


class Open311Error(Exception):
    def __init__(self, code: int, description: str):
        super().__init__(description)
        self.code, self.description = code, description


@bp.before_request
def _cookieless() -> None:
    g.by_token = True  # nothing here rides on the session cookie, so forms take no CSRF token


def _fmt(fmt: str) -> str:
    if fmt not in FORMATS:
        raise Open311Error(404, _("Formats: json or xml."))
    return fmt


def _render(fmt: str, root: str, item: str, rows: list[dict[str, Any]] | dict[str, Any], status: int = 200):
    """JSON as the spec's examples (a list, or one object), or XML with the spec's element names."""
    if fmt == "json":
        return Response(json.dumps(rows, ensure_ascii=False), status=status, mimetype="application/json")
    top = ET.Element(root)
    for row in rows if isinstance(rows, list) else [rows]:
        _xml_item(top if not isinstance(rows, dict) else top, item, row, flat=isinstance(rows, dict))
    return _xml_response(top, status)


def _xml_response(top: ET.Element, status: int = 200) -> Response:
    """The document without the characters XML 1.0 cannot hold: a report's text may carry them, and one would
    make the whole answer unreadable (JSON escapes them, so its answer keeps them)."""
    body = xml_text(ET.tostring(top, encoding="unicode"))
    return Response('<?xml version="1.0" encoding="utf-8"?>\n' + body, status=status,
                    mimetype="text/xml", content_type="text/xml; charset=utf-8")


def _xml_item(parent: ET.Element, name: str, row: dict[str, Any], flat: bool = False) -> None:
    node = parent if flat else ET.SubElement(parent, name)
    for key, value in row.items():
        child = ET.SubElement(node, key)
        if isinstance(value, list):  # attributes → attribute, values → value
            for entry in value:
                _xml_item(child, key[:-1], entry)
        elif isinstance(value, bool):
            child.text = "true" if value else "false"
        elif value is not None:
            child.text = str(value)


def _error_response(fmt: str, code: int, description: str):
    rows = [{"code": code, "description": description}]
    return _render(fmt if fmt in FORMATS else "json", "errors", "error", rows, status=code)


@bp.errorhandler(Open311Error)
def _open311_error(error: Open311Error):
    return _error_response(_request_format(), error.code, error.description)


@bp.errorhandler(HTTPException)
def _http_error(error: HTTPException):
    return _http_error_response(error)


def _http_error_response(error: HTTPException) -> Response:
    """An HTTP error in the format the address asks for, with the allowed methods said in words (and in Allow)."""
    description = error.description or error.name
    if isinstance(error, MethodNotAllowed) and error.valid_methods:
        allowed = sorted(set(error.valid_methods) - {"HEAD", "OPTIONS"})
        description = _("%(method)s is not allowed here; use %(allowed)s.", method=request.method,
                        allowed=" or ".join(allowed))
    elif error.code == 404:
        description = _("No such Open311 address: see discovery.json for the endpoints.")
    response = _error_response(_request_format(), error.code or 400, description)
    response.headers.update({k: v for k, v in error.get_headers() if k.lower() in ("allow", "retry-after")})
    return response


# What fails before a view of this blueprint is found (a wrong method, an unknown address) answers alike.
machine_errors(bp.url_prefix + "/", _http_error_response)


@bp.errorhandler(DomainError)
def _domain_error(error: DomainError):
    return _error_response(_request_format(), 404 if isinstance(error, NotFound) else 400, error.message)


def _request_format() -> str:
    return "xml" if request.path.endswith(".xml") else "json"


# -- jurisdictions and services -----------------------------------------------------------------------------------

def _jurisdictions() -> list[str]:
    keys = db.session.scalars(select(SchemeRecord.key).where(SchemeRecord.current_version_id.is_not(None)))
    return sorted(k for k in keys if service.public_settings(k).reporting)


def _jurisdiction() -> str:
    wanted = (request.values.get("jurisdiction_id") or "").strip()
    known = _jurisdictions()
    if wanted:
        if wanted not in known:
            raise Open311Error(404, _("jurisdiction_id %(id)s was not found.", id=wanted[:64]))
        return wanted
    if len(known) == 1:
        return known[0]
    raise Open311Error(400, _("jurisdiction_id was not provided (this endpoint serves several districts)."))


def _spec(scheme_key: str) -> FormSpec:
    _version, spec = service.report_form(scheme_key)
    if "service_code" not in spec.open311:
        raise Open311Error(400, _("This district's report form is not open to Open311 clients."))
    return spec


def _services(scheme_key: str) -> list[dict[str, Any]]:
    """The leaf categories, each with its parent as the group (exposed rubbish in streetscape)."""
    out: list[dict[str, Any]] = []

    def walk(items: list[dict], group: dict | None) -> None:
        for item in items:
            if item.get("children"):
                walk(item["children"], item)
            else:
                out.append({"service_code": item["id"], "service_name": tr(item.get("name")) or item["id"],
                            "description": tr(item.get("description")) or tr(item.get("name")) or "",
                            "group": tr(group.get("name")) if group else "", "category": item})
    walk(scheme_categories(scheme_key), None)
    return out


def _attributes(spec: FormSpec) -> list[dict[str, Any]]:
    standard = set(spec.open311.values())
    return engine.open311_attributes(
        [f for f in spec.top_level() if f.id not in standard], tr)


def _changeset() -> str:
    """When what this endpoint serves last changed: the latest of the jurisdictions' versions put in force (their
    categories are the services, their report form the attributes)."""
    keys = _jurisdictions()
    latest = db.session.scalar(select(db.func.max(SchemeVersion.activated_at, type_=SchemeVersion.activated_at.type))
                               .join(SchemeRecord, SchemeRecord.current_version_id == SchemeVersion.id)
                               .where(SchemeRecord.key.in_(keys))) if keys else None
    return (latest or dt.datetime(2026, 1, 1, tzinfo=dt.UTC)).astimezone(dt.UTC).isoformat(timespec="seconds")


@bp.get("/discovery.<fmt>")
@public
def discovery(fmt: str):
    changeset = _changeset()
    row = {"changeset": changeset, "contact": _("The district's urban management office"),
           "key_service": _("Ask the district's office for an api_key."),
           "endpoints": [{"specification": "http://wiki.open311.org/GeoReport_v2",
                          "url": url_for("open311.services", fmt="json", _external=True).rsplit("/", 1)[0],
                          "changeset": changeset, "type": "production",
                          "formats": ["application/json", "text/xml"]}]}
    if _fmt(fmt) == "json":
        return Response(json.dumps(row, ensure_ascii=False), mimetype="application/json")
    top = ET.Element("discovery")
    for key in ("changeset", "contact", "key_service"):
        ET.SubElement(top, key).text = row[key]
    endpoints = ET.SubElement(top, "endpoints")
    for endpoint in row["endpoints"]:
        node = ET.SubElement(endpoints, "endpoint")
        for key in ("specification", "url", "changeset", "type"):
            ET.SubElement(node, key).text = endpoint[key]
        formats = ET.SubElement(node, "formats")
        for value in endpoint["formats"]:
            ET.SubElement(formats, "format").text = value
    return _xml_response(top)


def _too_many() -> str:
    return _("Too many requests from this client. Please wait and try again.")


# -- limits: a client with an api_key has its own, the anonymous public shares the public's ---------------------

def _keyed_client() -> engine.Open311Client | None:
    """The client whose api_key this request carries (compared in constant time), once per request."""
    if "open311_client" not in g:
        clients = engine.open311_clients(current_app.config.get("FANGAN_OPEN311_KEYS"),
                                         current_app.config.get("FANGAN_OPEN311_CLIENT_LIMIT"))
        g.open311_client = engine.client_of(clients, request.values.get("api_key"))
    return g.open311_client


def _is_client() -> bool:
    return _keyed_client() is not None


def _client_limit() -> str:
    client = _keyed_client()
    return client.limit if client is not None else engine.DEFAULT_CLIENT_LIMIT


def _client_key() -> str:
    client = _keyed_client()
    return f"open311-client:{client.counter}" if client is not None else get_remote_address()


def _client_device() -> str:
    """One phone behind a keyed client (a mini-program passes each user's `device_id`)."""
    client = _keyed_client()
    return f"open311-client:{client.counter if client else '-'}:{device_key()}"


def _client_names_a_device() -> bool:
    return _is_client() and bool((request.values.get("device_id") or "").strip())


# One budget per client across Open311 (reads and posts), set per client in FANGAN_OPEN311_KEYS.
_per_client = limiter.shared_limit(_client_limit, scope="open311-client", key_func=_client_key,
                                   exempt_when=lambda: not _is_client(), error_message=_too_many)


def _read_limits(view: Callable[..., Any]) -> Callable[..., Any]:
    """Reads: a keyed client's own budget, else the public's read limits per address and device."""
    view = limiter.limit(read_limit, key_func=device_key, exempt_when=_is_client)(view)
    return _per_client(limiter.limit(read_limit, exempt_when=_is_client)(view))


def _report_limits(view: Callable[..., Any]) -> Callable[..., Any]:
    """Posts: a keyed client's own budget, else the public's report limits (5 a minute) per address and device.
    A keyed client that names its users' devices (`device_id`) has each device held to the public's limits too:
    a key shipped inside an app cannot be used to flood from one phone."""
    view = limiter.limit(report_limit, key_func=_client_device, exempt_when=lambda: not _client_names_a_device(),
                         error_message=_too_many)(view)
    view = limiter.limit(report_limit, key_func=device_key, exempt_when=_is_client, error_message=_too_many)(view)
    return _per_client(limiter.limit(report_limit, exempt_when=_is_client, error_message=_too_many)(view))


@bp.get("/services.<fmt>")
@public
@_read_limits
def services(fmt: str):
    fmt, scheme_key = _fmt(fmt), _jurisdiction()
    metadata = bool(_attributes(_spec(scheme_key)))
    rows = [{"service_code": s["service_code"], "service_name": s["service_name"], "description": s["description"],
             "metadata": metadata, "type": "realtime", "keywords": s["group"], "group": s["group"]}
            for s in _services(scheme_key)]
    return _render(fmt, "services", "service", rows)


@bp.get("/services/<service_code>.<fmt>")
@public
@_read_limits
def service_definition(service_code: str, fmt: str):
    fmt, scheme_key = _fmt(fmt), _jurisdiction()
    if service_code not in {s["service_code"] for s in _services(scheme_key)}:
        raise Open311Error(404, _("service_code %(code)s was not found.", code=service_code[:64]))
    row = {"service_code": service_code, "attributes": _attributes(_spec(scheme_key))}
    return _render(fmt, "service_definition", "service_definition", row)


# -- requests -----------------------------------------------------------------------------------------------------

def _check_api_key() -> str | None:
    """The client an api_key names; required when the district has handed out keys (FANGAN_OPEN311_KEYS)."""
    if not current_app.config.get("FANGAN_OPEN311_KEYS"):
        return None
    client = _keyed_client()
    if client is None:
        raise Open311Error(403, _("Invalid api_key."))
    return client.name


def _formdata(scheme_key: str, spec: FormSpec) -> MultiDict:
    """The request's arguments as the public report form's fields."""
    mapping, args = spec.open311, request.form
    code = (args.get("service_code") or "").strip()
    if not code:
        raise Open311Error(400, _("service_code was not provided."))
    if code not in {s["service_code"] for s in _services(scheme_key)}:
        raise Open311Error(404, _("service_code %(code)s was not found.", code=code[:64]))
    lat, lng = (args.get("lat") or "").strip(), (args.get("long") or "").strip()
    address_id, address = (args.get("address_id") or "").strip(), (args.get("address_string") or "").strip()
    if not ((lat and lng) or address_id or address):
        raise Open311Error(400, _("A location is needed: lat and long, address_string or address_id."))
    data = MultiDict({"_token": forms.new_token(), mapping["service_code"]: code})
    if "location" in mapping:
        place = mapping["location"]
        if lat and lng:
            try:
                lat_f, lng_f = float(lat), float(lng)
            except ValueError:
                raise Open311Error(400, _("lat and long must be numbers.")) from None
            if not (-90 <= lat_f <= 90 and -180 <= lng_f <= 180):
                raise Open311Error(400, _("lat and long must be numbers.")) from None
            data.update({f"{place}-lat": f"{lat_f:.6f}", f"{place}-lng": f"{lng_f:.6f}"})
        if address_id:
            if not db.session.scalar(select(Area.id).filter_by(scheme_key=scheme_key, key=address_id, active=True)):
                raise Open311Error(400, _("address_id %(id)s is not a road of this district.", id=address_id[:64]))
            data[f"{place}-area"] = address_id
    if "address_string" in mapping and address:
        data[mapping["address_string"]] = address
    if "description" in mapping:
        data[mapping["description"]] = args.get("description") or ""
    if "media" in mapping:
        for upload in request.files.getlist("media"):
            data.add(mapping["media"], upload)
    standard = set(mapping.values())
    for f in spec.top_level():
        if f.id in standard:
            continue
        for value in args.getlist(f"attribute[{f.id}]") + args.getlist(f"attribute[{f.id}][]"):
            data.add(f.id, value)
    return data


@bp.post("/requests.<fmt>")
@public
@_report_limits
def create_request(fmt: str):
    fmt = _fmt(fmt)
    if request.mimetype not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        raise Open311Error(400, _("Send the request as application/x-www-form-urlencoded or multipart/form-data."))
    client = _check_api_key()
    scheme_key = _jurisdiction()
    spec = _spec(scheme_key)
    formdata = _formdata(scheme_key, spec)
    name = " ".join(p for p in ((request.form.get("last_name") or "").strip(),
                                (request.form.get("first_name") or "").strip()) if p) or None
    reporter = service.Reporter(name=name, phone=(request.form.get("phone") or "").strip() or None,
                                channel="open311", client=client, address=get_remote_address(),
                                device=(request.form.get("device_id") or "").strip()[:100] or None,
                                email=(request.form.get("email") or "").strip() or None,
                                media_url=(request.form.get("media_url") or "").strip() or None)
    problems = service.contact_problems(reporter)
    if problems:
        raise Open311Error(400, " ".join(problems.values()))
    result = service.submit_report(scheme_key, formdata, reporter)
    if not isinstance(result, PublicReport):
        db.session.rollback()
        labels = {f.id: tr(f.label) or f.id for f in spec.walk()}
        described = [f"{labels.get(path.split('.')[0], path)}: {' '.join(messages)}"
                     for path, messages in result.errors.items()]
        raise Open311Error(400, "; ".join(described) or _("The request could not be accepted."))
    db.session.commit()
    notice = _("Received. Keep the code %(code)s: with it the reporter can follow the request at %(url)s and "
               "answer the follow-up.", code=result.code, url=url_for("public.track", code=result.code,
                                                                         _external=True))
    # A realtime service: the id at once (the spec returns a token only instead of an id); the tracking code
    # travels in the notice, to this client alone.
    row = {"service_request_id": str(result.id), "service_notice": notice, "account_id": None}
    return _render(fmt, "service_requests", "request", [row])


def _iso(moment: dt.datetime | None, scheme_key: str) -> str | None:
    if moment is None:
        return None
    from ..definitions.clock import district_zone

    return moment.astimezone(district_zone(scheme_key)).isoformat(timespec="seconds")


def _request_row(report: PublicReport) -> dict[str, Any]:
    status = service.status_of(report)
    case: Case = report.case
    names = {s["service_code"]: s["service_name"] for s in _services(report.scheme_key)}
    where = case.submission.location if case.submission and isinstance(case.submission.location, dict) else {}
    approved = status["approved"]
    photos = status["photos_before"] + status["photos_after"]
    return {
        "service_request_id": str(report.id), "status": status["status"],
        "status_notes": status["reply"] or tr(status["state"]),
        "service_name": names.get(case.category or "", case.category), "service_code": case.category,
        "description": status["description"], "agency_responsible": tr(status["unit"]) if status["unit"] else None,
        "service_notice": None,
        "requested_datetime": _iso(report.created_at, report.scheme_key),
        "updated_datetime": _iso(case.updated_at, report.scheme_key),
        "expected_datetime": _iso(status["deadline"], report.scheme_key) if case.state_kind != "final" else None,
        # What the reporter wrote as the address (address_string) once approved, else the road it was routed by.
        "address": (approved and _address_given(report)) or (tr(status["area"]) if status["area"] else None),
        "address_id": case.area.key if case.area else None, "zipcode": None,
        # The reporter's own position and photos are public only once a moderator has approved the report.
        "lat": float(where["lat"]) if approved and where.get("lat") is not None else None,
        "long": float(where["lng"]) if approved and where.get("lng") is not None else None,
        "media_url": (url_for("public.photo", report_id=report.id, upload_id=photos[0], _external=True)
                      if photos else report.media_url) if approved else None,
    }


def _address_given(report: PublicReport) -> str | None:
    """The address_string the reporter gave, as the report form's `open311.address_string` field keeps it."""
    try:
        field = service.report_form(report.scheme_key)[1].open311.get("address_string")
    except DomainError:
        return None
    value = (report.case.data or {}).get(field) if field else None
    return value.strip() if isinstance(value, str) and value.strip() else None


def _parse_when(text: str | None, name: str) -> dt.datetime | None:
    if not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise Open311Error(400, _("%(name)s must be a w3 date and time, like 2026-10-01T00:00:00Z.",
                                  name=name)) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _date_range(start_text: str | None, end_text: str | None) -> tuple[dt.datetime, dt.datetime]:
    """The spec's window: end_date defaults to now, start_date to 90 days before end_date; at most 90 days."""
    given_end = _parse_when(end_text, "end_date")
    end = given_end or utcnow()
    start = _parse_when(start_text, "start_date") or end - dt.timedelta(days=MAX_DAYS)
    if start > end:
        end_said = end.isoformat(timespec="seconds")
        if not given_end:
            end_said = _("%(moment)s, now: end_date was not given", moment=end_said)
        raise Open311Error(400, _("start_date (%(start)s) is after end_date (%(end)s).",
                                  start=start.isoformat(timespec="seconds"), end=end_said))
    if end - start > dt.timedelta(days=MAX_DAYS):
        days = (end - start).total_seconds() / 86400
        raise Open311Error(400, _("From start_date to end_date is %(days)s days; at most %(most)s days may be asked "
                                  "at once.", days=f"{days:.1f}", most=MAX_DAYS)
                           + ("" if given_end else " " + _("end_date was not given, so it is now.")))
    return start, end


@bp.get("/requests.<fmt>")
@public
@_read_limits
def list_requests(fmt: str):
    fmt, scheme_key = _fmt(fmt), _jurisdiction()
    for name, most in QUERY_LIMITS.items():  # as the OpenAPI document says
        if len(request.args.get(name) or "") > most:
            raise Open311Error(400, _("%(name)s is too long.", name=name))
    query = select(PublicReport).join(Case, Case.id == PublicReport.case_id).where(
        PublicReport.scheme_key == scheme_key)
    ids = [i.strip() for i in (request.args.get("service_request_id") or "").split(",") if i.strip()]
    if ids:  # overrides every other argument
        query = query.where(PublicReport.id.in_([int(i) for i in ids if i.isdigit() and len(i) < 12] or [-1]))
    else:
        codes = [c.strip() for c in (request.args.get("service_code") or "").split(",") if c.strip()]
        if codes:
            query = query.where(Case.category.in_(codes))
        start, end = _date_range(request.args.get("start_date"), request.args.get("end_date"))
        query = query.where(PublicReport.created_at >= start, PublicReport.created_at <= end)
        statuses = {s.strip() for s in (request.args.get("status") or "").split(",") if s.strip()}
        if statuses - {"open", "closed"}:
            raise Open311Error(400, _("status is open or closed."))
        if statuses == {"open"}:
            query = query.where(Case.state_kind != "final")
        elif statuses == {"closed"}:
            query = query.where(Case.state_kind == "final")
    rows = db.session.scalars(query.order_by(PublicReport.id.desc()).limit(MAX_RESULTS))
    return _render(fmt, "service_requests", "request", [_request_row(r) for r in rows])


@bp.get("/requests/<request_id>.<fmt>")
@public
@_read_limits
def get_request(request_id: str, fmt: str):
    fmt, scheme_key = _fmt(fmt), _jurisdiction()
    report = (db.session.scalar(select(PublicReport).filter_by(id=int(request_id), scheme_key=scheme_key))
              if request_id.isdigit() and len(request_id) < 12 else None)
    if report is None:
        raise Open311Error(404, _("service_request_id %(id)s was not found.", id=request_id[:32]))
    return _render(fmt, "service_requests", "request", [_request_row(report)])


@bp.get("/tokens/<token>.<fmt>")
@public
@_read_limits
def token(token: str, fmt: str):
    fmt = _fmt(fmt)
    code = engine.code_to_look_up(token)
    report = db.session.scalar(select(PublicReport).filter_by(code=code)) if code else None
    if report is None:
        raise Open311Error(404, _("token %(token)s was not found.", token=token[:32]))
    return _render(fmt, "service_requests", "request", [{"service_request_id": str(report.id),
                                                         "token": report.code}])


# -- the operations in the app's OpenAPI document ----------------------------------------------------------------

def _openapi() -> None:
    from ..api.openapi import add_paths, query_param, ref

    fmt = {"name": "format", "in": "path", "required": True, "description": "json or xml",
           "schema": {"type": "string", "enum": list(FORMATS)}}
    jurisdiction = query_param("jurisdiction_id", "The district (scheme key); needed only when several take reports.",
                               {"type": "string", "maxLength": 64})
    errors = {str(code): {"description": text, "content": {
        "application/json": {"schema": {"type": "array", "items": ref("Open311Error")}},
        "text/xml": {"schema": {"type": "string"}}}}
        for code, text in ((400, "A missing or invalid argument, or the form's errors."),
                           (403, "An invalid api_key (when the district hands out keys)."),
                           (404, "No such format, jurisdiction, service, request or token."),
                           (429, "Too many requests from this address or device."))}

    def operation(operation_id: str, summary: str, schema: dict, parameters: list, codes: tuple[int, ...],
                  body: dict | None = None) -> dict:
        out = {"operationId": operation_id, "tags": ["open311"], "summary": summary, "security": [],
               "parameters": [fmt, jurisdiction, *parameters],
               "responses": {"200": {"description": summary, "content": {
                   "application/json": {"schema": schema}, "text/xml": {"schema": {"type": "string"}}}},
                   **{str(c): errors[str(c)] for c in codes}}}
        if body is not None:
            out["requestBody"] = {"required": True, "content": {
                "application/x-www-form-urlencoded": {"schema": body}, "multipart/form-data": {"schema": body}}}
        return out

    text = {"type": "string", "maxLength": 4000}
    request_body = {"type": "object", "required": ["service_code"], "properties": {
        "api_key": {"type": "string", "maxLength": 200}, "jurisdiction_id": {"type": "string", "maxLength": 64},
        "service_code": {"type": "string", "maxLength": 64}, "lat": {"type": "string", "maxLength": 32},
        "long": {"type": "string", "maxLength": 32}, "address_string": {"type": "string", "maxLength": 200},
        "address_id": {"type": "string", "maxLength": 64}, "email": {"type": "string", "maxLength": 200},
        "device_id": {"type": "string", "maxLength": 100}, "account_id": {"type": "string", "maxLength": 100},
        "first_name": {"type": "string", "maxLength": 50}, "last_name": {"type": "string", "maxLength": 50},
        "phone": {"type": "string", "maxLength": 20}, "description": text,
        "media_url": {"type": "string", "maxLength": 2000}}}
    listing = ref("Open311Request")
    moment = {"type": "string", "format": "date-time"}
    add_paths({
        "/open311/v2/services.{format}": {"get": operation(
            "open311Services", "The district's services (its problem categories)",
            {"type": "array", "items": ref("Open311Service")}, [], (400, 404, 429))},
        "/open311/v2/services/{service_code}.{format}": {"get": operation(
            "open311ServiceDefinition", "A service's attributes (the report form's other fields)",
            ref("Open311ServiceDefinition"),
            [{"name": "service_code", "in": "path", "required": True, "description": "A service's code.",
              "schema": {"type": "string", "maxLength": 64}}],
            (400, 404, 429))},
        "/open311/v2/requests.{format}": {
            "post": operation("open311CreateRequest", "Report a problem",
                              {"type": "array", "items": ref("Open311Created")}, [], (400, 403, 404, 429),
                              body=request_body),
            "get": operation("open311Requests", "Reports, by id or by service, status and dates (90 days at most)",
                             {"type": "array", "items": listing}, [
                                 query_param("service_request_id", "Comma-separated ids; overrides the rest.",
                                             {"type": "string", "maxLength": 2000}),
                                 query_param("service_code", "Comma-separated service codes.",
                                             {"type": "string", "maxLength": 2000}),
                                 query_param("start_date", "w3 date and time.", moment),
                                 query_param("end_date", "w3 date and time.", moment),
                                 query_param("status", "open, closed or both.",
                                             {"type": "string", "maxLength": QUERY_LIMITS["status"]})],
                             (400, 404, 429))},
        "/open311/v2/requests/{service_request_id}.{format}": {"get": operation(
            "open311Request", "One report", {"type": "array", "items": listing},
            [{"name": "service_request_id", "in": "path", "required": True, "description": "The report's number.",
              "schema": {"type": "string", "maxLength": 32}}], (400, 404, 429))},
        "/open311/v2/tokens/{token}.{format}": {"get": operation(
            "open311Token", "The report of a tracking code", {"type": "array", "items": ref("Open311Token")},
            [{"name": "token", "in": "path", "required": True, "description": "A tracking code.",
              "schema": {"type": "string", "maxLength": 32}}],
            (400, 404, 429))},
    }, schemas={
        "Open311Error": {"type": "object", "required": ["code", "description"],
                         "properties": {"code": {"type": "integer"}, "description": {"type": "string"}}},
        "Open311Service": {"type": "object", "required": ["service_code", "service_name", "metadata", "type"],
                           "properties": {"service_code": {"type": "string"}, "service_name": {"type": "string"},
                                          "description": {"type": "string"}, "metadata": {"type": "boolean"},
                                          "type": {"enum": ["realtime", "batch", "blackbox"]},
                                          "keywords": {"type": "string"}, "group": {"type": "string"}}},
        "Open311ServiceDefinition": {"type": "object", "required": ["service_code", "attributes"], "properties": {
            "service_code": {"type": "string"}, "attributes": {"type": "array", "items": {
                "type": "object", "required": ["variable", "code", "datatype", "required", "order", "description"],
                "properties": {"variable": {"type": "boolean"}, "code": {"type": "string"},
                               "datatype": {"enum": sorted(set(engine.OPEN311_DATATYPES.values()))},
                               "required": {"type": "boolean"}, "datatype_description": {"type": ["string", "null"]},
                               "order": {"type": "integer"}, "description": {"type": "string"},
                               "values": {"type": "array", "items": {"type": "object", "properties": {
                                   "key": {"type": "string"}, "name": {"type": "string"}}}}}}}}},
        "Open311Created": {"type": "object", "required": ["service_request_id"], "properties": {
            "service_request_id": {"type": "string"}, "service_notice": {"type": ["string", "null"]},
            "account_id": {"type": ["string", "null"]}}},
        "Open311Token": {"type": "object", "required": ["service_request_id", "token"], "properties": {
            "service_request_id": {"type": "string"}, "token": {"type": "string"}}},
        "Open311Request": {"type": "object", "required": ["service_request_id", "status"], "properties": {
            "service_request_id": {"type": "string"}, "status": {"enum": ["open", "closed"]},
            **{name: {"type": ["string", "null"]} for name in (
                "status_notes", "service_name", "service_code", "description", "agency_responsible",
                "service_notice", "requested_datetime", "updated_datetime", "expected_datetime", "address",
                "address_id", "zipcode", "media_url")},
            "lat": {"type": ["number", "null"]}, "long": {"type": ["number", "null"]}}},
    }, tags={"open311": "Open311 GeoReport v2: public reports for the apps and platforms that speak the standard "
                        "(no bearer token; an api_key when the district hands out keys)."})


_openapi()
