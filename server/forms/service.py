"""Filling forms: open one, take a submission (with uploads) and store it once; list and export records.

Shared by the web pages, the preview and (later) the JSON API.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from blinker import Namespace
from flask import current_app
from flask_babel import gettext as _
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import bindparam
from sqlalchemy.orm import joinedload
from werkzeug.datastructures import MultiDict

from ..audit.service import record_audit
from ..auth import permissions
from ..auth.models import User
from ..core.database import insert_unless_taken, utcnow
from ..core.errors import Conflict, DomainError, NotFound, PermissionDenied
from ..core.text import clean_text
from ..definitions.clock import district_zone
from ..definitions.models import DefinitionVersion
from ..definitions.service import DefinitionRef, compiled_scheme, current_scheme, current_version
from ..expressions import ExpressionError
from ..extensions import db
from ..org.models import Area, Post, Unit
from ..web.i18n import tr
from . import builder, engine
from .choices import CHOICE_SOURCES, ChoiceContext, ChoiceSource, LongList
from .engine import FieldSpec, FormSpec, FormState, evaluate, form_spec_of, stored_values, value_fields
from .models import Submission, Upload
from .uploads import DEFAULT_MAX_BYTES, FileStore, StoredFile, UploadRejected, check_upload

if TYPE_CHECKING:
    from ..auth.models import AnyUser

# -- definitions and context ------------------------------------------------------------


def form_definition(scheme_key: str, form_key: str) -> DefinitionRef:
    """The version of a form in force in a scheme, as plain data."""
    current = current_scheme(scheme_key)
    member = current.member("form", form_key) if current else None
    if member is None or form_key not in current.compiled.forms_in_force:
        raise NotFound(_("No such form."))
    return member


def form_version(scheme_key: str, form_key: str) -> DefinitionVersion:
    """The version of a form in force in a scheme (the stored row)."""
    return db.session.get(DefinitionVersion, form_definition(scheme_key, form_key).id)


def list_forms(user: AnyUser, scheme_key: str) -> list[tuple[DefinitionVersion, FormSpec]]:
    """The forms of a scheme this user may fill."""
    if not permissions.can_submit_form(user, scheme_key):
        return []
    version = current_version(scheme_key)
    if version is None:
        return []
    keys = compiled_scheme(version.scheme_definition).forms
    rows = [version.member("form", key) for key in keys]
    return [(row, form_spec_of(row)) for row in rows if row is not None]



def current_post(user: AnyUser, scheme_key: str, today: dt.date) -> Post | None:
    if not getattr(user, "is_authenticated", False):
        return None
    posts = [p for p in user.posts if p.scheme_key == scheme_key and p.holds_on(today)]
    return posts[0] if posts else None


def form_context(user: AnyUser, scheme_key: str, now: dt.datetime | None = None,
                 case: dict[str, Any] | None = None) -> dict[str, Any]:
    """Names every form expression may use besides its fields: user.*, today, now, period.*, scheme.*; and
    case.* in a step's form (`purpose: case_action`)."""
    local = (now or utcnow()).astimezone(district_zone(scheme_key))
    today = local.date()
    post = current_post(user, scheme_key, today)
    unit = post.unit if post and post.unit else (post.area.unit if post and post.area else None)
    if unit is None and getattr(user, "is_authenticated", False):
        assignment = next((a for a in user.roles if a.scheme_key == scheme_key and a.unit is not None), None)
        unit = assignment.unit if assignment else None
    month_end = (today.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)
    return {
        "user": {
            "name": getattr(user, "display_name", None), "username": getattr(user, "username", None),
            "unit": unit.key if unit else None, "area": post.area.key if post and post.area else None,
            "post": post.tier_key if post else None, "tier": post.tier_key if post else None,
        },
        "today": today,
        "now": local.replace(tzinfo=None, second=0, microsecond=0),
        "period": {"start": today.replace(day=1), "end": month_end},
        "scheme": {"id": scheme_key},
        **({"case": case} if case is not None else {}),
    }


# -- live choices ----------------------------------------------------------------------


def choice_source(user: AnyUser, scheme_key: str, seen_areas: dict[str, Area] | None = None) -> builder.ChoiceSource:
    """Choices from the definition or from a live choice source (`choices.py`), kept when the field's
    `choice_filter` holds.

    `seen_areas`, when given, collects every area loaded, by key: the record stored next finds its area there
    (loaded with its unit) instead of asking the database again.
    """
    cache: dict[str, list[dict]] = {}
    scope = permissions.form_submit_reach(user, scheme_key)

    context = ChoiceContext(scheme_key, scope, seen_areas)

    def candidates(live: ChoiceSource, wanted: frozenset[str] | None, related: bool) -> list[dict]:
        if live.name in cache:
            return cache[live.name]
        if wanted is not None and live.by_key:
            return live.load(context, wanted, related)  # a check of the picked keys: not kept for a full list
        cache[live.name] = live.load(context, None, True)
        return cache[live.name]

    def source(f: FieldSpec, names: dict[str, Any], wanted: frozenset[str] | None = None, *,
               picked: frozenset[str] | None = None) -> list[tuple[str, str]]:
        """The field's choices (only those `wanted`, for a check). With `picked` (the values chosen), a page asks:
        a list past LONG_LIST, which the page replaces by a search, comes back as a `LongList` — how many there
        are and the picked ones — when it can be counted in the database (no `choice_filter`, the whole
        district in reach)."""
        live = None if f.choices else CHOICE_SOURCES.get(f.kind.choice_source(f))
        if (picked is not None and wanted is None and live is not None and live.count is not None
                and f.choice_filter is None and (scope is None or scope.district_wide)):
            total = live.count(context, tuple(getattr(f, live.kinds_from) or ()) if live.kinds_from else ())
            if total > LONG_LIST:
                return LongList(source(f, names, picked) if picked else [], total)
        if f.choices:
            # A choice's `data` is read by the filter as `choice.<key>` (which street a community is in).
            rows = [{**data, "value": str(v), "label": tr(label)} for v, label, data in f.static_choices()]
        else:
            live = CHOICE_SOURCES.get(f.kind.choice_source(f))
            related = wanted is None or f.choice_filter is not None
            rows = [] if live is None or (wanted is not None and not wanted) else candidates(live, wanted, related)
            kinds = getattr(f, live.kinds_from) if live is not None and live.kinds_from else ()
            if kinds:
                rows = [r for r in rows if r["kind"] in kinds]
        if wanted is not None:
            rows = [r for r in rows if r["value"] in wanted]
        if f.choice_filter is not None:
            kept = []
            for row in rows:
                try:
                    if f.choice_filter.evaluate({**names, "choice": {k: v for k, v in row.items() if k[0] != "_"}}):
                        kept.append(row)
                except ExpressionError:
                    continue
            rows = kept
        # A choice under a top-level category carries it (and its own short name) for a grouped picker.
        return [(r["value"], r["label"], {"data-group": r["_group"], "data-short": r["_short"]})
                if r.get("_group") else (r["value"], r["label"]) for r in rows]

    return source


def live_labels(scheme_key: str, spec: FormSpec, data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """For a record's page: the labels of the values it holds in fields whose options come from a live source
    (a category's name, a road's, a unit's): {field id: {value: label}}. Values the source no longer has keep
    showing themselves."""
    return records_labels(scheme_key, spec, [data], static=False)


def records_labels(scheme_key: str, spec: FormSpec, datas: Iterable[dict[str, Any]], *,
                   static: bool = True) -> dict[str, dict[str, Any]]:
    """The labels of every choice the records hold, by top-level field: {field id: {value: label}} — from a
    live source once per field for all the records (an export), and from the definition's own `choices`."""
    out: dict[str, dict[str, Any]] = {}
    held: dict[str, set[str]] = {}
    fields: list[FieldSpec] = []

    def walk(specs: Any, rows: list[dict[str, Any]]) -> None:
        for f in value_fields(specs):
            if f.kind.holds_rows:  # a repeat's rows: their choices too (a problem's category in a patrol log)
                walk(f.children, [row for data in rows for row in (data.get(f.id) or []) if isinstance(row, dict)])
            elif f.kind.offers_choices:
                if all(f.id != known.id for known in fields):
                    fields.append(f)
                for data in rows:
                    if f.id in data:
                        held.setdefault(f.id, set()).update(f.kind.chosen(data.get(f.id)))

    walk(spec.fields, [d for d in datas if isinstance(d, dict)])
    context = ChoiceContext(scheme_key)
    for f in fields:
        wanted = frozenset(held.get(f.id, ()))
        if not wanted:
            continue
        if f.choices:
            if static:
                out[f.id] = {str(v): tr(label) for v, label in f.choices if str(v) in wanted}
            continue
        name = f.kind.choice_source(f)
        live = CHOICE_SOURCES.get(name) if name else None
        if live is not None:
            rows = live.load(context, wanted if live.by_key else None, False)
            out[f.id] = {r["value"]: r["label"] for r in rows if r["value"] in wanted}
    return out


# -- messages ---------------------------------------------------------------------------


def engine_messages(code: str, params: dict) -> str:
    texts = {
        "required": lambda: _("This field is required."),
        "min": lambda: _("Must be at least %(min)s.", min=params.get("min")),
        "max": lambda: _("Must be at most %(max)s.", max=params.get("max")),
        "step": lambda: _("Must be in steps of %(step)s.", step=params.get("step")),
        "max_length": lambda: _("At most %(num)s characters.", num=params.get("max_length")),
        "min_repeat": lambda: _("Add at least %(num)s.", num=params.get("min_repeat")),
        "max_repeat": lambda: _("At most %(num)s rows.", num=params.get("max_repeat")),
        "max_files": lambda: _("At most %(num)s files.", num=params.get("max_files")),
        "constraint": lambda: tr(params.get("message")),
        "choice": lambda: _("Not a valid choice."),
    }
    return texts[code]() if code in texts else code


def upload_message(error: UploadRejected) -> str:
    p = error.params
    texts = {
        "empty": lambda: _("The file is empty."),
        "too_large": lambda: _("The file is larger than %(mb)s MB.", mb=p.get("max_mb")),
        "not_allowed_type": lambda: _("This kind of file is not accepted here."),
        "not_an_image": lambda: _("This file is not a photo (JPEG, PNG, WebP or GIF)."),
        "too_many_pixels": lambda: _("The picture is too large (too many pixels)."),
        "damaged": lambda: _("The picture is damaged or incomplete."),
        "pdf_invalid": lambda: _("The PDF is damaged or incomplete."),
        "pdf_locked": lambda: _("The PDF is protected by a password; send it without one."),
        "pdf_script": lambda: _("The PDF contains JavaScript or actions that run by themselves; print it to a new "
                                "PDF and send that."),
        "pdf_embedded": lambda: _("The PDF carries embedded files, media or a program to start; print it to a new "
                                  "PDF and send that."),
    }
    return texts[error.code]() if error.code in texts else str(error)


# -- a form being filled ----------------------------------------------------------------


@dataclass
class FormPage:
    """Everything a form page shows: the spec, the bound form, the engine's state and the kept uploads."""

    scheme_key: str
    version: DefinitionVersion | DefinitionRef | None
    spec: FormSpec
    form: Any
    state: FormState
    token: str
    uploads: dict[str, list[Upload]] = field(default_factory=dict)
    show_errors: bool = False
    action_url: str = ""
    typed_places: dict[str, str] = field(default_factory=dict)  # a place's name as typed, by field (long lists)
    place_matches: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # the places it matched
    binding: str = ""  # who fills what (`_binding`): a seal made for it opens for it alone

    @property
    def errors(self) -> dict[str, list[str]]:
        return self.state.errors if self.show_errors else {}

    @property
    def sealed(self) -> str:
        """The page's hidden `_sealed`: the values the server computed for its read-only fields with
        `calculate_on`, signed (empty when it has none)."""
        return seal_values(self.spec, self.state, self.token, self.binding)


def file_store() -> FileStore:
    """The upload folder; files it writes go again if the request's transaction does not commit."""
    root = current_app.config.get("FANGAN_UPLOAD_DIR") or str(Path(current_app.instance_path) / "uploads")
    return FileStore(Path(root), session=db.session())


def new_token() -> str:
    return secrets.token_urlsafe(24)


def open_form(user: AnyUser, scheme_key: str, spec: FormSpec, version: DefinitionVersion | DefinitionRef | None,
              prefill: dict[str, Any] | None = None, case: dict[str, Any] | None = None) -> FormPage:
    """A fresh form with its defaults (and `prefill` values, e.g. the road of a board) and a new token. A step's
    form gets the `case` it acts on as names (`case.unit`, `case.chain`…: workflow.service.case_form_names)."""
    context = form_context(user, scheme_key, case=case)
    from .engine import default_values

    values = {**default_values(spec, context), **(prefill or {})}
    token = new_token()
    state = evaluate(spec, values, context, engine_messages, check=False)
    form = builder.bind(spec, values=state.values)
    builder.apply_choices(spec, form, state.values, context, choice_source(user, scheme_key))
    return FormPage(scheme_key, version, spec, form, state, token, binding=_binding(user, scheme_key, spec, case))


def _file_paths(spec: FormSpec, form: Any) -> list[tuple[str, FieldSpec]]:
    """(value path, field) of every photo or file field of a bound form, rows included."""
    out: list[tuple[str, FieldSpec]] = []

    def walk(fields: Any, node: Any, prefix: str) -> None:
        for f in value_fields(fields):
            if f.id not in node:
                continue
            if f.kind.holds_rows:
                for i, entry in enumerate(node[f.id].entries):
                    walk(f.children, entry.form, f"{prefix}{f.id}.{i}.")
            elif f.kind.is_file:
                out.append((f"{prefix}{f.id}", f))

    walk(spec.fields, form, "")
    return out


def _take_uploads(page: FormPage, user: AnyUser, store: bool) -> dict[str, list[str]]:
    """Check new files (stored as pending uploads of this token), keep earlier ones; errors by path."""
    errors: dict[str, list[str]] = {}
    user_id = getattr(user, "id", None)
    for path, f in _file_paths(page.spec, page.form):
        bound = builder.bound_field(page.form, page.spec, path)
        kept = []
        if bound.kept:
            rows = db.session.scalars(db.select(Upload).where(
                Upload.id.in_(bound.kept), Upload.token == page.token, Upload.field_path == path,
                Upload.submission_id.is_(None)))
            # Only this render's own pending uploads of this very field, by the same person, can be kept:
            # ids are not capabilities, and another field's file may not meet this field's rules.
            kept = [u for u in rows if u.user_id == user_id and (u.mime.startswith("image/") or "pdf" in f.accept)]
        for storage in bound.new_files:
            raw = storage.read(int((f.max_size_mb or DEFAULT_MAX_BYTES / 2**20) * 2**20) + 1)
            try:
                checked = check_upload(raw, storage.filename or "", accept=f.accept,
                                       max_bytes=int((f.max_size_mb or DEFAULT_MAX_BYTES / 2**20) * 2**20))
            except UploadRejected as exc:
                errors.setdefault(path, []).append(f"{storage.filename}: {upload_message(exc)}")
                continue
            if not store:
                continue
            file_store().save(checked)
            upload = Upload(sha256=checked.sha256, extension=checked.extension, mime=checked.mime,
                            size=len(checked.data), width=checked.width, height=checked.height,
                            original_name=checked.original_name, evidence=checked.evidence or None,
                            token=page.token, field_path=path, user_id=user_id)
            db.session.add(upload)
            db.session.flush()
            kept.append(upload)
        bound.kept = [u.id for u in kept]
        bound.data = list(bound.kept)
        page.uploads[path] = kept
    return errors


def _set_upload_values(values: dict[str, Any], path: str, ids: list[int]) -> None:
    parts = path.split(".")
    node: Any = values
    while len(parts) > 2:
        node = node[parts[0]][int(parts[1])]
        parts = parts[2:]
    node[parts[0]] = ids


def post_form(user: AnyUser, scheme_key: str, spec: FormSpec, version: DefinitionVersion | DefinitionRef | None,
              formdata: Any,
              action: str = "submit", *, store: bool = True,
              case: dict[str, Any] | None = None, changed: str | None = None) -> FormPage | Submission:
    """Handle a POST: refresh, add or remove a repeat row, or submit; a Submission when stored.

    `changed`: the name of the input whose change asked for a refresh (htmx's `HX-Trigger-Name`): fields with
    `calculate_on` naming its field are computed again. A submission computes none again (only empty ones).
    """
    # The idempotency token of this render (the hidden `_token`): one record per rendered form.
    token = "".join(ch for ch in (formdata.get("_token") or "") if ch.isalnum() or ch in "-_")[:64] or new_token()
    binding = _binding(user, scheme_key, spec, case)
    form = builder.bind(spec, formdata=unsealed(spec, formdata, token, binding))
    page = FormPage(scheme_key, version, spec, form, FormState(values={}), token, binding=binding)
    if store and action == "submit" and spec.takes_files:
        # The same form sent twice: one record, and its photos not kept twice. (Without files the record's
        # insert finds the twin by its token: one statement fewer for every form.)
        existing = _same_submission(token, spec, scheme_key, user)
        if existing is not None:
            return existing
    upload_errors = _take_uploads(page, user, store)
    values, parse_errors = builder.read_values(spec, form)
    for path, ids in ((p, [u.id for u in ups]) for p, ups in page.uploads.items()):
        _set_upload_values(values, path, ids)
    context = form_context(user, scheme_key, case=case)
    if action.startswith(("add:", "remove:")):
        _change_rows(spec, values, action)
        form = builder.bind(spec, values=values)
        page.form = form
    seen_areas: dict[str, Area] = {}
    source = choice_source(user, scheme_key, seen_areas)
    place_errors = _resolve_typed_places(page, formdata, values, context, source)
    hit = builder.input_field(spec, changed) if changed and action != "submit" else None
    page.state = evaluate(spec, values, context, engine_messages, check=action == "submit",
                          changed={hit[0]} if hit else ())
    if builder.rows_differ(spec.fields, page.form, page.state.values):  # a repeat_count gave or took rows
        page.form = builder.bind(spec, values=page.state.values)
    _set_calculated(page)
    if action != "submit":
        builder.apply_choices(spec, page.form, page.state.values, context, source)
        return page
    for path, messages in {**parse_errors, **upload_errors, **place_errors}.items():
        if not page.state.is_hidden(path):
            page.state.errors.setdefault(path, []).extend(messages)
    # Checking the picked choices needs only those: the full lists are loaded when the page is shown again.
    _check_choices(page, builder.chosen_options(spec, page.form, page.state.values, context, source))
    page.show_errors = True
    if not page.state.ok or not store:
        builder.apply_choices(spec, page.form, page.state.values, context, source)
        return page
    return _store_submission(page, user, seen_areas)


@functools.cache
def _token_taken() -> Any:
    return db.select(Submission.id).where(Submission.token == bindparam("token"))  # asked on every submit


def _same_submission(token: str, spec: FormSpec, scheme_key: str, user: AnyUser) -> Submission | None:
    """The record this very form already made with this token — never another form's, case's or person's."""
    # Nearly always there is none: ask for the id alone, and load the record only when there is one.
    found = db.session.scalar(_token_taken(), {"token": token})
    if found is None:
        return None
    existing = db.session.get(Submission, found)
    if (existing.form_key, existing.scheme_key, existing.user_id) != (spec.id, scheme_key, getattr(user, "id", None)):
        raise Conflict(_("This form was already used. Open it again."))
    existing.resent = True
    return existing


def _set_calculated(page: FormPage) -> None:
    """Show the values calculations set in their inputs (a repeat row's too)."""
    values = _values_by_path(page.spec, page.state.values)
    for path in page.state.calculated:
        f = page.spec.by_id.get(path.split(".")[-1])
        if f is None or f.kind.holds_rows or path not in values:
            continue
        try:
            bound = builder.bound_field(page.form, page.spec, path)
        except (KeyError, IndexError):
            continue  # no input for it on this page
        bound.data = f.kind.form_data(values[path])
        bound.raw_data = None


# -- read-only fields calculated on named changes -------------------------------------------------------------
# Their value is the server's (a client must not forge when a problem was seen), yet it is kept from the change
# that computed it to the submission: the page carries the values the server computed, signed with the render's
# token, and a post keeps only those (what else is sent for them is dropped; empty, they are computed again).


SEAL_HOURS = 24  # a page kept open longer computes its sealed values again when sent


def _binding(user: AnyUser, scheme_key: str, spec: FormSpec, case: dict[str, Any] | None) -> str:
    """What a seal is for: this user, district, form content and case (never in the page: it salts the seal)."""
    return "\0".join((scheme_key, str(getattr(user, "id", None)), spec.content_hash or spec.id,
                      str((case or {}).get("id"))))


def _seals(token: str, binding: str) -> URLSafeTimedSerializer:
    # The render's token and the binding salt the signature, so the page carries neither: a seal opens only for
    # the same render of the same form by the same user on the same case, within SEAL_HOURS.
    salt = hashlib.sha256(f"fangan-calculated\0{token}\0{binding}".encode()).hexdigest()
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=salt)


def seal_values(spec: FormSpec, state: FormState, token: str, binding: str = "") -> str:
    """The signed inputs of the form's read-only fields with `calculate_on` as the page shows them ("" if none)."""
    if not spec.seals:
        return ""
    data: MultiDict = MultiDict()
    for path, value in _values_by_path(spec, state.values).items():
        f = spec.by_id.get(path.split(".")[-1])
        if f is not None and f.sealed and not state.is_hidden(path) and not engine.is_empty(value):
            f.kind.api_input(f, engine.to_json(value), path.replace(".", "-"), data, _)
    return _seals(token, binding).dumps(data.to_dict(flat=False)) if data else ""


def unsealed(spec: FormSpec, formdata: Any, token: str, binding: str = "") -> Any:
    """`formdata` with the inputs of read-only fields with `calculate_on` replaced by the values the server
    sealed for this form and token (none when the seal is missing or wrong: they are computed again)."""
    if not spec.seals:
        return formdata

    def sealed_input(name: str) -> bool:
        hit = builder.input_field(spec, name)
        return hit is not None and hit[1].sealed

    try:
        kept = _seals(token, binding).loads(formdata.get("_sealed") or "", max_age=SEAL_HOURS * 3600)
    except BadSignature:  # (an expired seal too)
        kept = {}
    if not isinstance(kept, dict):
        kept = {}
    out = MultiDict([(name, value) for name, value in formdata.items(multi=True) if not sealed_input(name)])
    for name, texts in kept.items():
        if sealed_input(name):
            for text in texts:
                out.add(name, text)
    return out


# -- places picked by name --------------------------------------------------------------------------------------
# A district of a city's size has thousands of roads and grids: past LONG_LIST a place field offers a search by
# name (htmx fills the list as one types) instead of sending every one to every phone. Without JavaScript the
# name typed is sent with the form, and one place matching it is taken; several are offered to pick from.

LONG_LIST = 60
PLACES_SHOWN = 30


def _place_input(f: FieldSpec) -> str | None:
    """The name of the input a top-level place field's area is picked in, if the field picks an area."""
    if f.kind.live_choices != "areas":
        return None
    return f"{f.id}-area" if f.kind.one_input is False else f.id


def matching_places(options: list[tuple[Any, ...]], typed: str, limit: int = PLACES_SHOWN
                    ) -> tuple[list[tuple[str, str]], int]:
    """The places whose name holds the words typed (or whose key is them), the same name first; and how many."""
    needle = typed.casefold().strip()
    found = [(str(value), str(label)) for value, label, *_rest in options
             if needle and (needle in str(label).casefold() or needle == str(value).casefold())]
    found.sort(key=lambda pair: (pair[1].casefold() != needle, len(pair[1])))
    return found[:limit], len(found)


def search_places(user: AnyUser, scheme_key: str, spec: FormSpec, field_id: str, typed: str
                  ) -> tuple[list[tuple[str, str]], int]:
    """The places a form's place field offers this person whose name holds what they typed (the search box)."""
    f = next((f for f in value_fields(spec.fields) if f.id == field_id), None)  # not one inside a repeat's rows
    if f is None or _place_input(f) is None:
        raise NotFound(_("No such field."))
    context = form_context(user, scheme_key)
    return matching_places(choice_source(user, scheme_key)(f, context, None), typed[:100])


def _resolve_typed_places(page: FormPage, formdata: Any, values: dict[str, Any], context: dict[str, Any],
                          source: builder.ChoiceSource) -> dict[str, list[str]]:
    """A place typed by name and not picked (a page without JavaScript): the one place it matches is taken;
    otherwise the field says so and offers the matches. The errors, by field."""
    errors: dict[str, list[str]] = {}
    for f in value_fields(page.spec.fields):
        name = _place_input(f)
        typed = clean_text(formdata.get(f"{name}-q"), 100) if name else ""
        if not typed:
            continue
        page.typed_places[f.id] = typed
        if f.kind.area_key(values.get(f.id)):
            continue  # picked from the list: the pick wins
        matches, count = matching_places(source(f, {**context, **values}, None), typed)
        if count == 1:
            current = values.get(f.id)
            values[f.id] = {**current, "area": matches[0][0]} if isinstance(current, dict) else \
                f.kind.with_area(matches[0][0])
            continue
        page.place_matches[f.id] = matches
        errors[f.id] = [_("No place is called “%(typed)s”.", typed=typed) if not count else
                        _("%(count)s places match “%(typed)s”: pick one.", count=count, typed=typed)]
    return errors


def _check_choices(page: FormPage, options: dict[str, list[tuple[str, str]]]) -> None:
    values_by_path = _values_by_path(page.spec, page.state.values)
    for path, allowed in options.items():
        if page.state.is_hidden(path) or path in page.state.errors:
            continue
        f = page.spec.by_id[path.split(".")[-1]]
        valid = {v for v, *_label in allowed}
        if f.kind.chosen(values_by_path.get(path)) - valid:
            page.state.add_error(path, engine_messages("choice", {}))


def _values_by_path(spec: FormSpec, values: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}

    def walk(fields: Any, row: dict[str, Any], prefix: str) -> None:
        for f in value_fields(fields):
            if f.kind.holds_rows:
                for i, sub in enumerate(row.get(f.id) or []):
                    walk(f.children, sub, f"{prefix}{f.id}.{i}.")
            else:
                out[f"{prefix}{f.id}"] = row.get(f.id)

    walk(spec.fields, values, "")
    return out


def _change_rows(spec: FormSpec, values: dict[str, Any], action: str) -> None:
    verb, _sep, rest = action.partition(":")
    group_id, _sep, index = rest.partition(":")
    group = spec.by_id.get(group_id)
    if group is None or not group.kind.holds_rows or group.repeat_count is not None:
        return  # rows counted by repeat_count follow the count, not buttons
    rows = values.setdefault(group_id, [])
    if verb == "add" and (group.max_repeat is None or len(rows) < group.max_repeat):
        from .engine import _row_defaults

        rows.append(_row_defaults(group, {}))
    elif verb == "remove" and index.isdigit() and int(index) < len(rows):
        rows.pop(int(index))


def first_area(spec: FormSpec, stored: dict[str, Any], scheme_key: str,
               seen: dict[str, Area] | None = None) -> Area | None:
    """The area the record is about: its first area field, or the area picked in its first location field.

    `seen`: areas already loaded in this transaction by key (see `choice_source`), taken from the session.
    """
    for f in spec.top_level():
        key = f.kind.area_key(stored.get(f.id))
        if key and seen and key in seen:
            return seen[key]
        if key:
            return db.session.scalar(db.select(Area).filter_by(scheme_key=scheme_key, key=key)
                                     .options(joinedload(Area.unit)))
    return None


# Declared for the parts above forms. `record_stored`: a record was stored; a receiver gets the submission,
# `user` and `spec`, and does its part in the same transaction (patrols flag a record made far from its area,
# workflow opens the cases a patrol's findings call for). `record_shown`: may `user` see the files of record
# `submission_id` and its files although it is not theirs to read? A receiver answers True to let them (whoever
# may see a case sees its report and its steps, with their photos: workflow); a record's own readers always may.
signals = Namespace()
record_stored = signals.signal("record-stored")
record_shown = signals.signal("record-shown")


def record_time(spec: FormSpec, stored: dict[str, Any], scheme_key: str, arrived: dt.datetime) -> dt.datetime:
    """When the recorded thing happened: the form's `record_time` field, within sense; else its arrival."""
    raw = stored.get(spec.record_time) if spec.record_time else None
    try:
        value = dt.datetime.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        value = None
    if value is None:
        return arrived
    zone = district_zone(scheme_key)
    moment = value.replace(tzinfo=zone) if value.tzinfo is None else value
    # A phone's clock or a typo must not move a record far into another period: no further back than the
    # start of the previous month (local time), no more than a day ahead. Late records are flagged.
    this_month = arrived.astimezone(zone).date().replace(day=1)
    earliest = dt.datetime.combine((this_month - dt.timedelta(days=1)).replace(day=1), dt.time(), zone)
    if moment > arrived + dt.timedelta(days=1) or moment < earliest:
        return arrived
    return moment.astimezone(dt.UTC)


LATE_AFTER = dt.timedelta(days=2)


def unit_of_filer(user: AnyUser, scheme_key: str) -> Unit | None:
    """The unit of the filer's role, when they hold roles in exactly one unit of the district."""
    units = {ra.unit for ra in getattr(user, "roles", []) if ra.scheme_key == scheme_key and ra.unit is not None}
    return units.pop() if len(units) == 1 else None


def _store_submission(page: FormPage, user: AnyUser, seen_areas: dict[str, Area] | None = None) -> Submission:
    stored = stored_values(page.spec, page.state)
    context_today = form_context(user, page.scheme_key)["today"]
    post = current_post(user, page.scheme_key, context_today)
    area = first_area(page.spec, stored, page.scheme_key, seen_areas) or (post.area if post else None)
    unit_id = ((area.unit_id if area else None) or (post.unit_id if post else None)
               or getattr(unit_of_filer(user, page.scheme_key), "id", None))
    location = next((stored[f.id] for f in page.spec.top_level() if f.kind.gives_location and f.id in stored), None)
    submitted_at = utcnow()
    occurred_at = record_time(page.spec, stored, page.scheme_key, submitted_at)
    late = (submitted_at - occurred_at).days if submitted_at - occurred_at > LATE_AFTER else None
    row = {"scheme_key": page.scheme_key, "form_key": page.spec.id, "definition_version_id": page.version.id,
           "token": page.token, "user_id": getattr(user, "id", None), "post_id": post.id if post else None,
           "unit_id": unit_id, "area_id": area.id if area else None, "data": stored, "location": location,
           "submitted_at": submitted_at, "occurred_at": occurred_at}
    if late is not None:  # (no key otherwise: the column stays NULL, not JSON null)
        row["flags"] = {"late": {"days": late}}
    # One record per rendered form: a twin of this request that stored it first makes this insert a no-op.
    submission = db.session.scalars(insert_unless_taken(Submission, "token"), [row]).first()
    if submission is None:
        existing = _same_submission(page.token, page.spec, page.scheme_key, user)
        if existing is None:
            raise Conflict(_("This form was already used. Open it again."))
        return existing
    kept_ids = {i for ups in page.uploads.values() for i in (u.id for u in ups)}
    stored_ids = _stored_upload_ids(page.spec, stored)
    given = kept_ids & stored_ids
    for upload in db.session.scalars(db.select(Upload).where(Upload.id.in_(given))) if given else ():
        upload.submission_id = submission.id
    record_audit("form.submit", "submission", submission.id, user=user, scheme_key=page.scheme_key,
                 after={"form": page.spec.id, "version": page.version.id})
    record_stored.send(submission, user=user, spec=page.spec)
    return submission


def _stored_upload_ids(spec: FormSpec, stored: dict[str, Any]) -> set[int]:
    ids: set[int] = set()
    for path, value in _values_by_path(spec, stored).items():
        f = spec.by_id.get(path.split(".")[-1])
        if f is not None and f.kind.is_file and isinstance(value, list):
            ids |= {int(v) for v in value}
    return ids


# -- records ----------------------------------------------------------------------------


def get_submission(user: AnyUser, submission_id: int) -> Submission:
    submission = db.session.get(Submission, submission_id)
    if submission is None:
        raise NotFound(_("No such record."))
    # A record that is part of something the user may see (a case's report or one of its steps: the dispatcher's
    # instructions for the assignee) is theirs to read too.
    if not permissions.can_view_submission(user, submission) and not _shown_elsewhere(user, submission.id):
        raise PermissionDenied(_("You may not view this record."))
    return submission


@dataclass(frozen=True)
class RecordFilters:
    start: dt.date | None = None
    end: dt.date | None = None
    area_id: int | None = None
    unit_id: int | None = None
    user_id: int | None = None


def list_submissions(user: AnyUser, scheme_key: str, form_key: str, filters: RecordFilters,
                     limit: int = 500) -> list[Submission]:
    """Records of a form the user may see, newest first."""
    scope = permissions.submission_view_reach(user, scheme_key)
    query = db.select(Submission).filter_by(scheme_key=scheme_key, form_key=form_key)
    if not scope.district_wide:
        visible = list(scope.unit_ids or [])
        query = query.where((Submission.user_id == user.id) | Submission.unit_id.in_(visible or [-1]))
    tz = district_zone(scheme_key)
    if filters.start:
        query = query.where(Submission.submitted_at >= dt.datetime.combine(filters.start, dt.time(), tz))
    if filters.end:
        query = query.where(Submission.submitted_at < dt.datetime.combine(filters.end + dt.timedelta(days=1),
                                                                           dt.time(), tz))
    for column, value in ((Submission.area_id, filters.area_id), (Submission.unit_id, filters.unit_id),
                          (Submission.user_id, filters.user_id)):
        if value:
            query = query.where(column == value)
    return list(db.session.scalars(query.order_by(Submission.id.desc()).limit(limit)))


def _shown_elsewhere(user: AnyUser, submission_id: int) -> bool:
    return any(shown for _receiver, shown in record_shown.send(submission_id, user=user))


# Who else may see an upload that belongs to no record: token prefix → check(user, upload). Other parts of
# the engine register theirs (assessment evidence is seen by those who see the assessment).
UPLOAD_VIEWERS: dict[str, Callable[[Any, Upload], bool]] = {}


# Uploads kept outside a form record (assessment evidence) are held by whoever keeps their ids: by token prefix,
# a function from candidate uploads to the ids still in use. Other pending uploads (a refused page's photos,
# kept for the next try) are let go once abandoned.
UPLOAD_HOLDERS: dict[str, Callable[[list[Upload]], set[int]]] = {}


def store_upload(user: AnyUser, storage: Any, token: str, field_path: str,
                 accept: tuple[str, ...] = ("image",)) -> Upload:
    """Check one uploaded file by its content, store it, and keep it as a pending upload under `token`;
    raise DomainError with a readable message when it is refused."""
    raw = storage.read(DEFAULT_MAX_BYTES + 1)
    try:
        checked = check_upload(raw, storage.filename or "", accept=accept, max_bytes=DEFAULT_MAX_BYTES)
    except UploadRejected as exc:
        raise DomainError(f"{storage.filename}: {upload_message(exc)}") from None
    file_store().save(checked)
    upload = Upload(sha256=checked.sha256, extension=checked.extension, mime=checked.mime, size=len(checked.data),
                    width=checked.width, height=checked.height, original_name=checked.original_name,
                    evidence=checked.evidence or None, token=token[:64], field_path=field_path[:200],
                    user_id=getattr(user, "id", None))
    db.session.add(upload)
    db.session.flush()
    return upload


@dataclass(frozen=True)
class OrphanSweep:
    """What `remove_orphan_files` found under the upload folder."""

    orphans: list[StoredFile]  # no upload row names them: removed (in a dry run, to be removed)
    freed: int  # their bytes
    in_use: int  # files upload rows name
    young: int  # files younger than the grace age, not looked at
    abandoned: int = 0  # pending uploads no record holds, older than the pending age: their rows removed


def abandoned_uploads(older_than: dt.timedelta) -> list[Upload]:
    """Pending uploads (in no form record) older than `older_than` that nothing holds: the photos of a page
    that was refused and never sent again, evidence of marks never saved."""
    rows = list(db.session.scalars(db.select(Upload).where(
        Upload.submission_id.is_(None), Upload.created_at < utcnow() - older_than)))
    held: set[int] = set()
    for prefix, holder in UPLOAD_HOLDERS.items():
        held |= holder([u for u in rows if u.token.startswith(prefix)])
    return [u for u in rows if u.id not in held]


def remove_orphan_files(older_than: dt.timedelta = dt.timedelta(hours=1), *, dry_run: bool = False,
                        pending_older_than: dt.timedelta = dt.timedelta(days=1)) -> OrphanSweep:
    """Remove the files under the upload folder that no upload row names, and leftovers of interrupted writes;
    first let go of pending uploads abandoned for `pending_older_than` (their rows, then their files).

    Only files older than `older_than` are looked at: a request still writing its files has not committed
    their rows yet. A file claimed while the sweep runs (the same bytes uploaded again) is kept.
    """
    abandoned = [u.id for u in abandoned_uploads(pending_older_than)]
    if not dry_run and abandoned:
        # Asked again as it is deleted: a row a record took meanwhile stays (its file then stays too).
        db.session.execute(db.delete(Upload).where(
            Upload.id.in_(abandoned), Upload.submission_id.is_(None),
            Upload.created_at < utcnow() - pending_older_than).execution_options(synchronize_session=False))
        db.session.commit()
    store = file_store()
    cutoff = utcnow().timestamp() - older_than.total_seconds()
    found = list(store.files())  # listed before the rows are read: a row committed meanwhile is seen
    old = [f for f in found if f.modified <= cutoff]
    # A dry run counts the abandoned rows as gone; otherwise they are (and a row taken meanwhile still names).
    named = _named_files({f.sha256 for f in old if f.sha256}, exclude=set(abandoned) if dry_run else set())
    orphans = [f for f in old if (f.sha256, f.extension) not in named]
    if not dry_run:
        freed = {f.relative: store.discard(f.relative, keep=lambda stat: stat.st_mtime > cutoff) for f in orphans}
        orphans = [f for f in orphans if freed[f.relative] is not None]
    return OrphanSweep(orphans=orphans, freed=sum(f.size for f in orphans), in_use=len(old) - len(orphans),
                       young=len(found) - len(old), abandoned=len(abandoned))


def _named_files(hashes: set[str], exclude: set[int] = frozenset()) -> set[tuple[str, str]]:
    """(sha256, extension) of the given hashes that some upload row names (rows in `exclude` aside: a dry run
    counts the abandoned as gone)."""
    ordered, named = sorted(hashes), set()
    for start in range(0, len(ordered), 500):
        query = (db.select(Upload.sha256, Upload.extension).where(Upload.sha256.in_(ordered[start:start + 500]))
                 .where(Upload.id.not_in(sorted(exclude) or [-1])).distinct())
        named |= {(sha256, extension) for sha256, extension in db.session.execute(query)}
    return named


def get_upload(user: AnyUser, upload_id: int) -> Upload:
    upload = db.session.get(Upload, upload_id)
    if upload is None:
        raise NotFound(_("No such file."))
    viewer = next((check for prefix, check in UPLOAD_VIEWERS.items() if upload.token.startswith(prefix)), None)
    if upload.submission is None and viewer is not None:
        if not viewer(user, upload):
            raise PermissionDenied(_("You may not view this file."))
    elif upload.submission is not None:
        if not (permissions.can_view_submission(user, upload.submission)
                or _shown_elsewhere(user, upload.submission_id)):
            raise PermissionDenied(_("You may not view this file."))
    elif upload.user_id != getattr(user, "id", None):
        raise PermissionDenied(_("You may not view this file."))
    return upload


def filter_choices(user: AnyUser, scheme_key: str) -> dict[str, list[tuple[int, str]]]:
    """Options for the records filters, within the user's scope."""
    scope = permissions.submission_filter_reach(user, scheme_key)
    units = db.session.scalars(db.select(Unit).filter_by(scheme_key=scheme_key, active=True).order_by(Unit.path))
    areas = db.session.scalars(db.select(Area).filter_by(scheme_key=scheme_key, active=True).order_by(Area.kind))
    people = db.select(User).join(Submission, Submission.user_id == User.id).filter(Submission.scheme_key == scheme_key)
    if not scope.district_wide:  # only people whose records this user may see
        people = people.filter((Submission.user_id == user.id)
                               | Submission.unit_id.in_(list(scope.unit_ids or []) or [-1]))
    users = db.session.scalars(people.distinct().order_by(User.username))
    return {
        "units": [(u.id, tr(u.name)) for u in units if scope.covers_unit(u.id)],
        "areas": [(a.id, tr(a.name)) for a in areas if scope.covers_area(a.id, a.unit_id)],
        "users": [(u.id, u.display_name) for u in users],
    }
