"""Notice boards: who is in charge of a road at every tier, for the public page and the poster."""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

import segno
from flask_babel import gettext as _
from sqlalchemy import bindparam
from sqlalchemy.orm import joinedload

from ..core.cache import memoize
from ..core.errors import NotFound
from ..definitions.clock import district_today
from ..definitions.service import current_scheme, scheme_in_force
from ..extensions import db
from ..org.models import Area, Post, Unit
from ..org.service import units_offered
from ..web.i18n import tr

DEFAULT_PUBLIC_FIELDS = ("name", "title", "duties")  # a phone number shows only where the scheme says so


@functools.cache
def _statements() -> tuple[Any, Any]:
    """The road (with its parent, unit and the unit above: a board walks up from them) and its chiefs: asked
    on every board page, so built once, with the district, road and day as parameters."""
    area = db.select(Area).where(Area.scheme_key == bindparam("scheme_key"), Area.key == bindparam("key"),
                                 Area.active.is_(True)).options(joinedload(Area.unit).joinedload(Unit.parent),
                                                                joinedload(Area.parent))
    chiefs = db.select(Post).where(
        Post.scheme_key == bindparam("scheme_key"), Post.tier_key.in_(bindparam("tiers", expanding=True)),
        Post.started_on <= bindparam("on"), (Post.ended_on.is_(None)) | (Post.ended_on >= bindparam("on")),
        Post.area_id.in_(bindparam("areas", expanding=True))
        | (Post.area_id.is_(None) & Post.unit_id.in_(bindparam("units", expanding=True))),
    ).order_by(Post.started_on)
    return area, chiefs


def get_area(scheme_key: str, area_key: str) -> Area:
    area = db.session.scalar(_statements()[0], {"scheme_key": scheme_key, "key": area_key})
    if area is None:
        raise NotFound(_("No such road."))
    return area


def board_definition(scheme_key: str, area: Area) -> dict:
    version = current_scheme(scheme_key)
    if version is None:
        raise NotFound(_("No such district."))
    scheme = version.compiled
    kind = scheme.area_kinds.get(area.kind)
    board_id = (kind.board if kind else None) or next(iter(scheme.boards), None)
    row = version.member("board", board_id) if board_id else None
    if row is None:
        raise NotFound(_("This place has no notice board."))
    return row.data


def _chain(area: Area) -> list[Area]:
    chain, node = [], area
    while node is not None and len(chain) < 20:
        chain.append(node)
        node = node.parent
    return chain


def board_for(scheme_key: str, area: Area, on: dt.date | None = None, board: dict | None = None) -> dict[str, Any]:
    """Everything a board shows on a given day: the road, its range, and each tier's chiefs with public details.
    `board`: a board definition other than the one in force (an editor's preview)."""
    on = on or district_today(scheme_key)
    board = board if board is not None else board_definition(scheme_key, area)
    scheme = scheme_in_force(scheme_key)
    tiers = scheme.tiers if scheme else {}
    areas = _chain(area)
    unit_ids = set()
    unit = area.unit or next((a.unit for a in areas if a.unit), None)
    while unit is not None and len(unit_ids) < 20:
        unit_ids.add(unit.id)
        unit = unit.parent
    posts = db.session.scalars(_statements()[1], {"scheme_key": scheme_key, "tiers": list(board.get("tiers", [])),
                                         "on": on, "areas": [a.id for a in areas], "units": list(unit_ids) or [-1]})
    by_tier: dict[str, list[Post]] = {}
    for post in posts:
        by_tier.setdefault(post.tier_key, []).append(post)
    show = {"range": True, "unit": True, "duties": True, "qr_code": True, "report_link": True, "printed_on": True,
            **board.get("show", {})}
    rows = []
    for tier_id in board.get("tiers", []):
        tier = tiers.get(tier_id, {})
        if tier.get("public", True) is False:
            continue
        fields = set(tier.get("public_fields") or DEFAULT_PUBLIC_FIELDS)
        chiefs = []
        for post in by_tier.get(tier_id, []):
            chiefs.append({
                "name": post.holder_name if "name" in fields else None,
                "title": (post.title or tr(tier.get("title") or tier.get("name"))) if "title" in fields else None,
                "phone": post.phone if "phone" in fields else None,
                "unit": tr(post.unit.name) if "unit" in fields and post.unit else None,
                "duties": [d for d in (post.duties or [tr(d) for d in tier.get("duties", [])])]
                if "duties" in fields and show["duties"] else [],
            })
        rows.append({"tier": tr(tier.get("name")), "chiefs": chiefs})
    title = tr(board.get("title")).replace("{area}", tr(area.name))
    return {"board": board, "area": area, "title": title, "subtitle": tr(board.get("subtitle")), "rows": rows,
            "show": show, "footer": tr(board.get("footer")), "phone": board.get("supervision_phone"),
            "reporting": bool(scheme and scheme.public.reporting),
            "unit": tr(area.unit.name) if area.unit else None, "on": on,
            "theme": board.get("theme") or (scheme.theme if scheme else None),
            "range": (tr(area.range_from), tr(area.range_to)) if area.range_from else None,
            "sizes": board.get("sizes") or [{"id": "a3", "width_mm": 297, "height_mm": 420}]}


def batch_theme(scheme_key: str, boards: list[dict]) -> str | None:
    """The theme a batch prints in: its boards' own when they share one, else the district's."""
    themes = {b["theme"] for b in boards}
    if len(themes) == 1:
        return themes.pop()
    scheme = scheme_in_force(scheme_key)
    return scheme.theme if scheme else None


@memoize(512)
def qr_svg(url: str) -> str:
    """A vector QR code (inline SVG) of the board's own page (a board's URL never changes: encode it once)."""
    return segno.make(url, error="m").svg_inline(scale=4, border=2, dark="#000")


def boards_of(scheme_key: str, unit_key: str | None = None, limit: int | None = None) -> list[Area]:
    """Areas that carry a board (their kind names one), optionally of one unit and below (the first `limit`)."""
    scheme = scheme_in_force(scheme_key)
    kinds = {k.id for k in scheme.area_kinds.values() if k.board} if scheme else set()
    query = db.select(Area).filter_by(scheme_key=scheme_key, active=True).where(Area.kind.in_(kinds or [""]))
    areas = list(db.session.scalars(query.order_by(Area.key).limit(limit)))
    if unit_key:
        areas = [a for a in areas if a.unit is not None and _under(a.unit, unit_key)]
    return areas


BOARDS_PER_PAGE = 100


def list_boards(scheme_key: str, q: str = "", unit_key: str | None = None, page: int = 1) -> tuple[list[Area], int]:
    """A page of the district's boards (by road name in any language, and by unit and below) and how many match."""
    needle = q.casefold()
    areas = [a for a in boards_of(scheme_key, unit_key)
             if not needle or needle in a.key.casefold() or any(
                 needle in str(v).casefold() for v in (a.name.values() if isinstance(a.name, dict) else [a.name]))]
    start = (max(page, 1) - 1) * BOARDS_PER_PAGE
    return areas[start:start + BOARDS_PER_PAGE], len(areas)


def board_sizes(scheme_key: str) -> list[dict]:
    """The poster sizes the district's boards are printed at (each once, in the order the boards give them)."""
    version = current_scheme(scheme_key)
    sizes: dict[str, dict] = {}
    for board_id in version.compiled.boards if version else ():
        row = version.member("board", board_id)
        for size in (row.data.get("sizes") if row else None) or [{"id": "a3", "width_mm": 297, "height_mm": 420}]:
            sizes.setdefault(size["id"], size)
    return list(sizes.values())


def board_units(scheme_key: str, chosen: str | None = None) -> tuple[list[Unit], bool]:
    """The units a list of boards may be narrowed to (each with those below it): past UNITS_OFFERED the upper
    levels and the one `chosen` (a key); and whether some are left out."""
    query = db.select(Unit).filter_by(scheme_key=scheme_key, active=True)
    chosen_id = db.session.scalar(db.select(Unit.id).filter_by(scheme_key=scheme_key, key=chosen)) if chosen else None
    return units_offered(query, chosen_id)


def _under(unit: Any, key: str) -> bool:
    node = unit
    while node is not None:
        if node.key == key:
            return True
        node = node.parent
    return False
