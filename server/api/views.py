"""The JSON API (`/api/v1`): cases, transitions, submissions, patrol compliance, scores and boards for the systems
a district already runs. Each request carries `Authorization: Bearer <token>` and acts as the client's user,
through the same services as the pages; the OpenAPI document at `/api/v1/openapi.json` describes it all."""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, current_app, g, jsonify, request, url_for
from flask_babel import gettext as _
from flask_limiter.util import get_remote_address
from werkzeug.exceptions import HTTPException

from ..assessment import scoring
from ..assessment import service as assessment
from ..assessment.models import AssessmentRevision
from ..auth import permissions
from ..auth.access import act_as, is_public_endpoint, public, token_authenticated
from ..core.errors import DomainError, NotFound, PermissionDenied, json_error
from ..definitions.clock import district_today
from ..extensions import csrf, db, limiter
from ..forms import service as forms
from ..forms.engine import form_spec_of
from ..forms.models import Submission
from ..web.params import parse_date
from ..workflow import service as workflow
from . import openapi, serialize, service
from .formdata import formdata_from_json, with_defaults

if TYPE_CHECKING:
    from ..auth.models import AnyUser

bp = token_authenticated(Blueprint("api", __name__, url_prefix="/api/v1"))
csrf.exempt(bp)  # no cookie authenticates here (see auth.access), so there is no session to forge requests with

ID_RE = re.compile(openapi.ID_PATTERN.strip("^$"))
MAX_PER_PAGE = 100
MAX_COMPLIANCE_DAYS = 366
STATE_KINDS = ("open", "waiting", "final")


class Invalid(DomainError):
    """The request is understood but its values are not acceptable: messages by field or parameter."""

    status = 422

    def __init__(self, message: str, fields: dict[str, list[str]]):
        super().__init__(message)
        self.fields = fields


# -- authentication, limits and errors ---------------------------------------------------------------------------

@bp.before_request
def _authenticate() -> Response | None:
    if is_public_endpoint(current_app, request.endpoint):
        return None
    kind, _sep, token = request.headers.get("Authorization", "").partition(" ")
    client = service.authenticate(token.strip()) if kind.lower() == "bearer" else None
    if client is None:
        response = json_error(401, _("A valid API token is needed: send the header Authorization: Bearer <token>."))
        response.headers["WWW-Authenticate"] = 'Bearer realm="fangan"'
        return response
    if client in db.session.dirty:
        db.session.commit()  # when it was last used (at most once a minute)
    g.api_client = client
    act_as(client.user)
    return None


def _client_key() -> str:
    client = g.get("api_client")
    return f"api-client-{client.id}" if client is not None else get_remote_address()


def _api_limit() -> str:
    return current_app.config["FANGAN_API_LIMIT"]


def _document_limit() -> str:
    return current_app.config.get("FANGAN_PUBLIC_LIMIT", "120 per minute")


# One budget per client across every endpoint of the API.
limited = limiter.shared_limit(_api_limit, scope="api", key_func=_client_key)


@bp.errorhandler(DomainError)
def _domain_error(error: DomainError) -> Response:
    db.session.rollback()  # a refused request leaves nothing behind
    return json_error(error.status, error.message, getattr(error, "fields", None))


@bp.errorhandler(HTTPException)
def _http_error(error: HTTPException) -> Response:
    db.session.rollback()
    response = json_error(error.code or 500, error.description or error.name)
    kept = ("allow", "retry-after", "www-authenticate")
    response.headers.update({k: v for k, v in error.get_headers() if k.lower() in kept})
    return response


# -- input -------------------------------------------------------------------------------------------------------

def _json_object(*, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    """The request's JSON body: an object with these members (415 when it is not JSON, 400 when it does not
    parse, 422 when members are missing or unknown)."""
    body = request.get_json()
    if not isinstance(body, dict):
        raise Invalid(_("The body must be a JSON object."), {"": [_("A JSON object is expected.")]})
    errors = {key: [_("Unknown member.")] for key in body if key not in required + optional}
    errors.update({key: [_("This member is needed.")] for key in required if key not in body})
    _refuse(errors)
    return body


def _values(body: dict[str, Any]) -> dict[str, Any]:
    values = body.get("values", {})
    if not isinstance(values, dict):
        raise Invalid(_("Some values are not acceptable."), {"values": [_("An object of field values is expected.")]})
    return values


def _idempotency_key() -> str | None:
    """The client's `Idempotency-Key`: the same key sent again gives the record the first request made."""
    key = request.headers.get("Idempotency-Key", "").strip()
    if not key:
        return None
    if len(key) > 48 or not all(ch.isascii() and (ch.isalnum() or ch in "-_") for ch in key):
        raise Invalid(_("Some values are not acceptable."),
                      {"Idempotency-Key": [_("At most 48 letters, digits, dashes and underscores.")]})
    return f"api-{g.api_client.id}-{key}"  # one client's keys never meet another's


def _int_arg(name: str, default: int, low: int, high: int, errors: dict[str, list[str]]) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if raw.isascii() and raw.isdigit() and len(raw) <= 9 and low <= int(raw) <= high:
        return int(raw)
    errors[name] = [_("A whole number from %(low)s to %(high)s.", low=low, high=high)]
    return default


def _date_arg(name: str, errors: dict[str, list[str]]) -> dt.date | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    day = parse_date(raw)
    if day is None:
        errors[name] = [_("A date like 2026-10-31.")]
    return day


def _datetime_arg(name: str, errors: dict[str, list[str]]) -> dt.datetime | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    text = raw.strip()
    text = text[:11] + text[11:].replace(" ", "+")  # an offset's `+` sent unencoded arrives as a space
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None or not dt.date(2000, 1, 1) <= moment.date() <= dt.date(2100, 12, 31):
        errors[name] = [_("A date and time with its offset, like 2026-10-31T08:00:00+08:00.")]
        return None
    return moment.astimezone(dt.UTC)


def _choice_arg(name: str, choices: tuple[str, ...], errors: dict[str, list[str]]) -> str | None:
    raw = request.args.get(name)
    if raw is None or raw in choices:
        return raw
    errors[name] = [_("One of: %(choices)s.", choices=", ".join(choices))]
    return None


def _id_arg(name: str, errors: dict[str, list[str]]) -> str | None:
    """A definition id (a state, a rule): as openapi.ID_PATTERN says."""
    raw = request.args.get(name)
    if raw is None or (len(raw) <= 64 and ID_RE.fullmatch(raw)):
        return raw
    errors[name] = [_("An id: lower-case letters, digits and underscores, starting with a letter.")]
    return None


def _refuse(errors: dict[str, list[str]]) -> None:
    if errors:
        raise Invalid(_("Some values are not acceptable."), errors)


def _formdata(user: AnyUser, scheme_key: str, spec: Any, values: dict[str, Any]) -> tuple[Any, dict[str, list[str]]]:
    """The form data a phone would post for these values (defaults filled in), under the Idempotency-Key."""
    values = with_defaults(spec, values, forms.form_context(user, scheme_key))
    return formdata_from_json(spec, values, _idempotency_key())


def _form_refused(page: forms.FormPage, unread: dict[str, list[str]] | None = None) -> Invalid:
    fields = {path: list(messages) for path, messages in page.errors.items()}
    fields.update(unread or {})  # a value that could not be read is the whole story for its field
    return Invalid(_("The form has errors; nothing was stored."), fields)


def _store(user: AnyUser, scheme_key: str, version: Any, values: dict[str, Any]) -> Submission:
    """Fill the form with `values` as the page would and store the record; every error at once when refused."""
    spec = form_spec_of(version)
    formdata, unread = _formdata(user, scheme_key, spec, values)
    # With values that could not be read the form is still checked (to name every error), but never stored.
    result = forms.post_form(user, scheme_key, spec, version, formdata, store=not unread)
    if not isinstance(result, Submission):
        raise _form_refused(result, unread)
    return result


# -- the document ------------------------------------------------------------------------------------------------

@bp.get("/openapi.json")
@public
@limiter.limit(_document_limit)
def document() -> Response:
    """The OpenAPI 3.1 document of this API (no token needed)."""
    return jsonify(openapi.document())


@bp.get("/schemes/<scheme_key>/openapi.json")
@public
@limiter.limit(_document_limit)
def district_document(scheme_key: str) -> Response:
    """The document for one district: its forms typed field by field (no token needed; 404 for no district)."""
    name, forms = service.district_forms(scheme_key)
    return jsonify(openapi.district_document(scheme_key, name, forms))


# -- cases -------------------------------------------------------------------------------------------------------

@bp.get("/schemes/<scheme_key>/cases")
@limited
def list_cases(scheme_key: str) -> Response:
    errors: dict[str, list[str]] = {}
    state = _id_arg("state", errors)
    kind = _choice_arg("kind", STATE_KINDS, errors)
    since = _datetime_arg("since", errors)
    page = _int_arg("page", 1, 1, 100_000, errors)
    per_page = _int_arg("per_page", 50, 1, MAX_PER_PAGE, errors)
    _refuse(errors)
    rows, total = service.list_cases(g.api_client.user, scheme_key, state=state, kind=kind, since=since, page=page,
                                     per_page=per_page)
    return jsonify(items=[serialize.case(c) for c in rows], page=page, per_page=per_page, total=total)


@bp.get("/cases/<int:case_id>")
@limited
def get_case(case_id: int) -> Response:
    user = g.api_client.user
    return jsonify(serialize.case(workflow.get_case(user, case_id), user=user))


@bp.post("/schemes/<scheme_key>/cases")
@limited
def open_case(scheme_key: str) -> Response:
    """Report a problem: the workflow's report form, and a case opened from it (as the report page does)."""
    user = g.api_client.user
    _version, spec = workflow.report_form(user, scheme_key)
    formdata, unread = _formdata(user, scheme_key, spec, _values(_json_object(required=("values",))))
    # With values that could not be read the form is still checked (to name every error), but never stored.
    reported = workflow.report_case(user, scheme_key, formdata, store=not unread)
    if reported.case is None:
        raise _form_refused(reported.page, unread)
    db.session.commit()
    response = jsonify(serialize.case(reported.case, user=user))
    response.status_code = 201 if reported.created else 200
    response.headers["Location"] = url_for("api.get_case", case_id=reported.case.id)
    return response


@bp.post("/cases/<int:case_id>/transitions/<transition_id>")
@limited
def fire(case_id: int, transition_id: str) -> Response:
    """Take a step of the case's workflow, with its form's values when the step has a form."""
    user = g.api_client.user
    body = _json_object(required=("expected_version",), optional=("values",))
    expected = body.get("expected_version")
    if isinstance(expected, bool) or not isinstance(expected, int) or not 1 <= expected <= 2**31 - 1:
        raise Invalid(_("Some values are not acceptable."),
                      {"expected_version": [_("The case's version you acted on (a whole number) is needed.")]})
    values = _values(body)
    item = workflow.get_case(user, case_id)
    transition = workflow.workflow_of(item).transition(transition_id)
    if transition is None:
        raise NotFound(_("This workflow has no such step."))
    formdata = None
    if transition.form:
        spec = form_spec_of(workflow._form_row(item, transition.form))
        formdata, errors = _formdata(user, item.scheme_key, spec, values)
        _refuse(errors)
    elif values:
        raise Invalid(_("Some values are not acceptable."), {"values": [_("This step has no form.")]})
    item, page = workflow.fire(user, case_id, transition_id, expected, formdata)
    if page is not None:
        raise _form_refused(page)
    db.session.commit()
    return jsonify(serialize.case(item, user=user))


# -- submissions -------------------------------------------------------------------------------------------------

@bp.post("/schemes/<scheme_key>/forms/<form_key>/submissions")
@limited
def submit(scheme_key: str, form_key: str) -> Response:
    user = g.api_client.user
    if not permissions.can_submit_form(user, scheme_key):
        raise PermissionDenied(_("You may not fill forms in this district."))
    values = _values(_json_object(required=("values",)))
    version = forms.form_version(scheme_key, form_key)
    token = _idempotency_key()
    created = token is None or db.session.scalar(db.select(Submission.id).filter_by(token=token)) is None
    result = _store(user, scheme_key, version, values)
    db.session.commit()
    response = jsonify(serialize.submission(result))
    response.status_code = 201 if created else 200
    response.headers["Location"] = url_for("api.get_submission", submission_id=result.id)
    return response


@bp.get("/submissions/<int:submission_id>")
@limited
def get_submission(submission_id: int) -> Response:
    return jsonify(serialize.submission(forms.get_submission(g.api_client.user, submission_id)))


# -- patrols, assessment, boards ---------------------------------------------------------------------------------

@bp.get("/schemes/<scheme_key>/patrols/compliance")
@limited
def compliance(scheme_key: str) -> Response:
    from ..patrols import service as patrols

    errors: dict[str, list[str]] = {}
    rule = _id_arg("rule", errors)
    start, end = _date_arg("start", errors), _date_arg("end", errors)
    _refuse(errors)
    today = district_today(scheme_key)
    start, end = start or end or today, end or start or today
    if end < start or (end - start).days >= MAX_COMPLIANCE_DAYS:
        raise Invalid(_("Some values are not acceptable."),
                      {"end": [_("From the start day, within %(days)s days.", days=MAX_COMPLIANCE_DAYS)]})
    reports = patrols.compliance_between(g.api_client.user, scheme_key, start, end, rule)
    return jsonify(start=start.isoformat(), end=end.isoformat(),
                   rules=[serialize.rule_compliance(r, verdicts) for r, verdicts in reports])


@bp.get("/schemes/<scheme_key>/assessment/periods")
@limited
def periods(scheme_key: str) -> Response:
    rows = assessment.list_periods(g.api_client.user, scheme_key)
    return jsonify(items=[serialize.period(p) for p in rows])


@bp.get("/assessment/periods/<int:period_id>/scores")
@limited
def scores(period_id: int) -> Response:
    """A published revision's scores (default the latest), of the units this client may see."""
    user = g.api_client.user
    errors: dict[str, list[str]] = {}
    revision = _int_arg("revision", 0, 1, 100_000, errors)
    _refuse(errors)
    period = assessment.get_period(user, period_id)
    if not period.revision:
        raise NotFound(_("This period has no published scores yet."))
    if revision > period.revision:
        raise NotFound(_("No such revision."))
    number = revision or period.revision
    rows = assessment.visible(user, period, scoring.published_scores(period, number), lambda s: s.subject)
    row = db.session.scalar(db.select(AssessmentRevision).filter_by(period_id=period.id, number=number))
    return jsonify(period=serialize.period(period), revision=number, provisional=bool(row and row.provisional),
                   scores=[serialize.score(s) for s in rows])


@bp.get("/schemes/<scheme_key>/boards/<area_key>")
@limited
def board(scheme_key: str, area_key: str) -> Response:
    """A notice board's content as it stood on a day (`on`, default today): the public board, as data."""
    from ..boards import service as boards

    errors: dict[str, list[str]] = {}
    on = _date_arg("on", errors)
    _refuse(errors)
    return jsonify(serialize.board(boards.board_for(scheme_key, boards.get_area(scheme_key, area_key), on)))
