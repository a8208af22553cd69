"""The bare baseline of bench/public.py: a minimal Flask app doing the same database work as the report
form, the report endpoint and the board page, with SQLAlchemy Core and nothing else of Fangan (no form
engine, no CSRF, sessions, rate limits or translations). The same statements: which definitions are in force
(ours reads that once a request, and keeps their content in memory); for the form the count of places its
picker offers (past a long list a phone searches by name), and the page itself as a hand-written app would
render it — our page's HTML as a template compiled once, the categories drawn by a loop (bench/public.py makes
it from ours); for a report the token and tracking-code checks, the record inserted unless its token is taken,
then the same rows; for a board the same SELECTs.

Served by gunicorn as `_bare_public:create_app({...})` with `bench/` on the Python path; the bench passes
the ids and keys it looked up once (the report form's and workflow's definition versions, the board's tiers)
and the page's template.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import io
import secrets
from pathlib import Path
from typing import Any

from flask import Flask, abort, redirect, request
from markupsafe import escape
from sqlalchemy import MetaData, create_engine, func, insert, select
from sqlalchemy.dialects import postgresql

TABLES = ("areas", "units", "posts", "submissions", "uploads", "cases", "case_events", "audit_entries",
          "public_reports", "schemes", "scheme_version_members", "definition_versions")
CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"


def create_app(settings: dict[str, Any]) -> Flask:
    """`settings`: database_url, scheme, form_key, form_version_id, workflow_key, workflow_version_id,
    initial_state, initial_kind, tiers (the board's tier keys), categories (the form's choices), secret."""
    app = Flask(__name__)
    # Ours checks a pooled connection before each request uses it (SQLALCHEMY_ENGINE_OPTIONS): the same here.
    engine = create_engine(settings["database_url"], pool_pre_ping=True)
    meta = MetaData()
    meta.reflect(engine, only=TABLES)
    t = meta.tables
    areas, units, posts = t["areas"], t["units"], t["posts"]
    schemes, members, definitions = t["schemes"], t["scheme_version_members"], t["definition_versions"]
    submissions, reports = t["submissions"], t["public_reports"]

    def definitions_in_force(conn: Any, scheme_key: str) -> list[Any]:
        """Which definition versions are in force: ours reads this once a request (the content it keeps)."""
        return conn.execute(select(schemes.c.current_version_id, definitions.c.id, definitions.c.kind,
                                   definitions.c.key, definitions.c.content_hash)
                            .join(members, members.c.scheme_version_id == schemes.c.current_version_id)
                            .join(definitions, definitions.c.id == members.c.definition_version_id)
                            .where(schemes.c.key == scheme_key)).all()

    # The form's page as a hand-written app renders it: bench/public.py made the template from ours (the same
    # HTML) and compiled here once, as Flask keeps a file's template.
    page = app.jinja_env.from_string(Path(settings["report_template"]).read_text(encoding="utf-8"))

    @app.get("/p/<scheme_key>/report")
    def report_page(scheme_key: str) -> str:
        with engine.connect() as conn:
            definitions_in_force(conn, scheme_key)
            places = conn.execute(select(func.count(areas.c.id)).where(
                areas.c.scheme_key == scheme_key, areas.c.active.is_(True))).scalar()
        return page.render(categories=settings["categories"], places=places, token=lambda: secrets.token_urlsafe(24))

    @app.post("/p/<scheme_key>/report")
    def report(scheme_key: str):  # noqa: ANN202
        form, now = request.form, dt.datetime.now(dt.UTC)
        place = form.get("location-area") or None
        photos = request.files.getlist("photos_before")
        data = {"category": form.get("category"), "location": {"area": place} if place else None,
                "address": form.get("address") or None, "description": form.get("description"),
                "photos_before": []}
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(10))
        address = request.remote_addr or ""
        with engine.begin() as conn:
            definitions_in_force(conn, scheme_key)
            # The same form sent twice makes one report: ours looks for the token first.
            if conn.execute(select(submissions.c.id).where(submissions.c.token == form["_token"])).first():
                abort(409)
            area = conn.execute(select(areas.c.id, areas.c.unit_id).where(
                areas.c.scheme_key == scheme_key, areas.c.key == place, areas.c.active.is_(True))).one_or_none()
            area_id, unit_id = (area.id, area.unit_id) if area else (None, None)
            # As ours: a racing twin that stored the same token first makes this insert a no-op.
            submission_id = conn.execute(postgresql.insert(submissions).values(
                scheme_key=scheme_key, form_key=settings["form_key"],
                definition_version_id=settings["form_version_id"], token=form["_token"], unit_id=unit_id,
                area_id=area_id, data=data, location=data["location"], submitted_at=now, occurred_at=now,
            ).on_conflict_do_nothing(index_elements=["token"]).returning(submissions.c.id)).scalar_one()
            for photo in photos:
                content = photo.read()
                conn.execute(insert(t["uploads"]).values(
                    sha256=hashlib.sha256(content).hexdigest(), extension="jpg", mime="image/jpeg",
                    size=len(content), original_name=photo.filename, evidence=None, token=form["_token"],
                    field_path="photos_before", submission_id=submission_id, created_at=now,
                    **_image_size(content)))
            case_id = conn.execute(insert(t["cases"]).values(
                scheme_key=scheme_key, workflow_key=settings["workflow_key"],
                definition_version_id=settings["workflow_version_id"], state=settings["initial_state"],
                state_kind=settings["initial_kind"], data=data, category=data["category"], area_id=area_id,
                unit_id=unit_id, submission_id=submission_id, overdue=False, rework_count=0, extension_count=0,
                reopen_count=0, created_at=now, updated_at=now, version=1,
            ).returning(t["cases"].c.id)).scalar_one()
            conn.execute(insert(t["case_events"]).values(case_id=case_id, at=now, kind="opened",
                                                         to_state=settings["initial_state"],
                                                         submission_id=submission_id))
            if conn.execute(select(reports.c.id).where(reports.c.code == code)).first():  # as ours: unused codes
                abort(409)
            conn.execute(insert(reports).values(
                scheme_key=scheme_key, code=code, case_id=case_id, channel="web",
                address_hash=_hash(settings["secret"], address), moderation="pending", exposed=False,
                created_at=now))
            audit = {"at": now, "scheme_key": scheme_key, "before": None}
            conn.execute(insert(t["audit_entries"]), [
                {**audit, "action": "form.submit", "object_type": "submission", "object_id": str(submission_id),
                 "after": {"form": settings["form_key"], "version": settings["form_version_id"]}},
                {**audit, "action": "case.open", "object_type": "case", "object_id": str(case_id),
                 "after": {"state": settings["initial_state"], "unit_id": unit_id}},
                {**audit, "action": "public.report", "object_type": "case", "object_id": str(case_id),
                 "after": {"channel": "web", "client": None, "unit_id": unit_id}},
            ])
        return redirect(f"/p/track/{code}", code=303)

    @app.get("/b/<scheme_key>/<area_key>")
    def board(scheme_key: str, area_key: str) -> str:
        today = dt.date.today()
        with engine.connect() as conn:
            definitions_in_force(conn, scheme_key)
            # As ours: the road with its parent, its unit and the unit above in one query; further steps up
            # (none for the bench's road) one at a time.
            parent, unit, upper = areas.alias("parent"), units.alias("unit"), units.alias("upper")
            found = conn.execute(
                select(areas.c.id, areas.c.name, areas.c.parent_id, areas.c.unit_id,
                       parent.c.id.label("p_id"), parent.c.parent_id.label("p_parent_id"),
                       parent.c.unit_id.label("p_unit_id"), unit.c.name.label("u_name"),
                       upper.c.id.label("up_id"), upper.c.parent_id.label("up_parent_id"))
                .select_from(areas.outerjoin(parent, parent.c.id == areas.c.parent_id)
                             .outerjoin(unit, unit.c.id == areas.c.unit_id)
                             .outerjoin(upper, upper.c.id == unit.c.parent_id))
                .where(areas.c.scheme_key == scheme_key, areas.c.key == area_key, areas.c.active.is_(True))
            ).one_or_none()
            if found is None:
                abort(404)
            area_ids, next_area = [found.id], found.parent_id
            if found.p_id is not None:
                area_ids.append(found.p_id)
                next_area = found.p_parent_id
            while next_area is not None and len(area_ids) < 20:
                row = conn.execute(select(areas.c.id, areas.c.parent_id).where(areas.c.id == next_area)).one()
                area_ids.append(row.id)
                next_area = row.parent_id
            unit_ids: list[int] = []
            if found.unit_id is not None:
                unit_ids.append(found.unit_id)
                next_unit = found.up_parent_id
                if found.up_id is not None:
                    unit_ids.append(found.up_id)
                while next_unit is not None and len(unit_ids) < 20:
                    row = conn.execute(select(units.c.id, units.c.parent_id).where(units.c.id == next_unit)).one()
                    unit_ids.append(row.id)
                    next_unit = row.parent_id
            chiefs = conn.execute(select(posts).where(
                posts.c.scheme_key == scheme_key, posts.c.tier_key.in_(settings["tiers"]),
                posts.c.started_on <= today, posts.c.ended_on.is_(None) | (posts.c.ended_on >= today),
                posts.c.area_id.in_(area_ids)
                | (posts.c.area_id.is_(None) & posts.c.unit_id.in_(unit_ids or [-1])),
            ).order_by(posts.c.started_on)).all()
        unit_name = _zh(found.u_name)
        rows = "".join(f"<li>{escape(p.tier_key)}: {escape(p.holder_name)} {escape(p.phone or '')}</li>"
                       for p in chiefs)
        title = escape(_zh(found.name))
        return f"<!doctype html><title>{title}</title><h1>{title}</h1><p>{escape(unit_name)}</p><ul>{rows}</ul>"

    return app


def _zh(name: dict | str | None) -> str:
    return (name.get("zh") or "") if isinstance(name, dict) else (name or "")


def _hash(secret: str, value: str) -> str:  # as server.core.secrets.fingerprint
    return hmac.new(secret.encode(), value.encode(), hashlib.sha256).hexdigest()[:32]


def _image_size(content: bytes) -> dict[str, int | None]:
    from PIL import Image

    try:
        width, height = Image.open(io.BytesIO(content)).size  # reads the header only
    except OSError:
        return {"width": None, "height": None}
    return {"width": width, "height": height}
