"""The bare baseline of bench/public.py: a minimal Flask app doing the same database work as the report
endpoint and the board page, with SQLAlchemy Core and nothing else of Fangan (no definitions read per
request, no form engine, no CSRF, sessions, rate limits or templates).

Served by gunicorn as `_bare_public:create_app({...})` with `bench/` on the Python path; the bench passes
the ids and keys it looked up once (the report form's and workflow's definition versions, the board's tiers).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import secrets
from typing import Any

from flask import Flask, abort, redirect, request
from markupsafe import escape
from sqlalchemy import MetaData, create_engine, insert, select

TABLES = ("areas", "units", "posts", "submissions", "uploads", "cases", "case_events", "audit_entries",
          "public_reports")
CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"


def create_app(settings: dict[str, Any]) -> Flask:
    """`settings`: database_url, scheme, form_key, form_version_id, workflow_key, workflow_version_id,
    initial_state, initial_kind, tiers (the board's tier keys), secret."""
    app = Flask(__name__)
    engine = create_engine(settings["database_url"])
    meta = MetaData()
    meta.reflect(engine, only=TABLES)
    t = meta.tables
    areas, units, posts = t["areas"], t["units"], t["posts"]

    @app.get("/p/<scheme_key>/report")
    def report_page(scheme_key: str) -> str:
        # The fields the load generator reads from our page, so one client drives both servers.
        return ('<form method="post" enctype="multipart/form-data"><input name="csrf_token" value="-">'
                '<input name="_token" value="-"><input name="_stamp" value="-"></form>')

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
            area = conn.execute(select(areas.c.id, areas.c.unit_id).where(
                areas.c.scheme_key == scheme_key, areas.c.key == place, areas.c.active.is_(True))).one_or_none()
            area_id, unit_id = (area.id, area.unit_id) if area else (None, None)
            submission_id = conn.execute(insert(t["submissions"]).values(
                scheme_key=scheme_key, form_key=settings["form_key"],
                definition_version_id=settings["form_version_id"], token=form["_token"], unit_id=unit_id,
                area_id=area_id, data=data, location=data["location"], submitted_at=now, occurred_at=now,
            ).returning(t["submissions"].c.id)).scalar_one()
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
            conn.execute(insert(t["public_reports"]).values(
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
            area = conn.execute(select(areas).where(areas.c.scheme_key == scheme_key, areas.c.key == area_key,
                                                    areas.c.active.is_(True))).one_or_none()
            if area is None:
                abort(404)
            chain, node = [area], area
            while node.parent_id is not None and len(chain) < 20:
                node = conn.execute(select(areas).where(areas.c.id == node.parent_id)).one()
                chain.append(node)
            unit_rows: list[Any] = []
            unit_id = next((a.unit_id for a in chain if a.unit_id is not None), None)
            while unit_id is not None and len(unit_rows) < 20:
                unit_rows.append(conn.execute(select(units).where(units.c.id == unit_id)).one())
                unit_id = unit_rows[-1].parent_id
            chiefs = conn.execute(select(posts).where(
                posts.c.scheme_key == scheme_key, posts.c.tier_key.in_(settings["tiers"]),
                posts.c.started_on <= today, posts.c.ended_on.is_(None) | (posts.c.ended_on >= today),
                posts.c.area_id.in_([a.id for a in chain])
                | (posts.c.area_id.is_(None) & posts.c.unit_id.in_([u.id for u in unit_rows] or [-1])),
            ).order_by(posts.c.started_on)).all()
        unit_name = _zh(unit_rows[0].name) if unit_rows else ""
        rows = "".join(f"<li>{escape(p.tier_key)}: {escape(p.holder_name)} {escape(p.phone or '')}</li>"
                       for p in chiefs)
        title = escape(_zh(area.name))
        return f"<!doctype html><title>{title}</title><h1>{title}</h1><p>{escape(unit_name)}</p><ul>{rows}</ul>"

    return app


def _zh(name: dict | str | None) -> str:
    return (name.get("zh") or "") if isinstance(name, dict) else (name or "")


def _hash(secret: str, value: str) -> str:
    return hashlib.sha256(f"{secret}\x00{value}".encode()).hexdigest()[:32]


def _image_size(content: bytes) -> dict[str, int | None]:
    from PIL import Image

    try:
        width, height = Image.open(io.BytesIO(content)).size  # reads the header only
    except OSError:
        return {"width": None, "height": None}
    return {"width": width, "height": height}
