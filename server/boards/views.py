"""Public notice boards: a page per road (no login) and its printed poster; a batch PDF for administrators."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, Response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from ..auth import permissions
from ..auth.access import public
from ..core.errors import PermissionDenied
from ..definitions.clock import district_today
from ..definitions.service import scheme_or_404
from ..extensions import db
from ..jobs import service as jobs
from ..pdf.engine import render_pdf
from ..web.limits import public_limits
from ..web.maps import place_map
from ..web.params import parse_date, parse_id, parse_search
from ..web.theming import render_themed
from . import printing, service

bp = Blueprint("boards", __name__, template_folder="templates", url_prefix="/b")


def _board_url(scheme_key: str, area_key: str) -> str:
    return url_for("boards.board", scheme_key=scheme_key, area_key=area_key, _external=True)


def _as_on() -> dt.date | None:
    """`?on=2026-10-15`: the board as it stood that day (who was in charge then); default today."""
    return parse_date(request.args.get("on"))


def _board(scheme_key: str, area_key: str) -> tuple[dict, str]:
    """A road's board data and the QR code of its public page."""
    data = service.board_for(scheme_key, service.get_area(scheme_key, area_key), _as_on())
    return data, service.qr_svg(_board_url(scheme_key, area_key))


@bp.get("/<scheme_key>/")
def index(scheme_key: str):
    """The staff's list of the district's boards: each one's page and poster, and the whole batch to print."""
    if not permissions.can_list_boards(current_user, scheme_key):
        raise PermissionDenied(_("You have no role in this district."))
    scheme = scheme_or_404(scheme_key)
    q = parse_search(request.args.get("q"))
    unit = request.args.get("unit") or None
    page = min(parse_id(request.args.get("page")) or 1, 100_000)
    rows, total = service.list_boards(scheme_key, q, unit, page)
    return render_template("boards/index.html", scheme_key=scheme_key, boards=rows, total=total, q=q, unit=unit,
                           page=page, pages=max(1, -(-total // service.BOARDS_PER_PAGE)),
                           kinds={k.id: k["name"] for k in scheme.area_kinds.values()},
                           units_offered=service.board_units(scheme_key, unit), sizes=service.board_sizes(scheme_key),
                           can_print=permissions.can_print_boards(current_user, scheme_key))


@bp.get("/<scheme_key>/<area_key>")
@public
@public_limits
def board(scheme_key: str, area_key: str):
    data, qr = _board(scheme_key, area_key)
    return render_themed(data["theme"], "boards/board.html", b=data, qr=qr, url=_board_url(scheme_key, area_key),
                         scheme_key=scheme_key, as_on=_as_on(), place=place_map(scheme_key, [data["area"]]))


def _size(data: dict) -> dict:
    wanted = request.args.get("size")
    return next((s for s in data["sizes"] if s["id"] == wanted), data["sizes"][0])


@bp.get("/<scheme_key>/<area_key>.pdf")
@public
@public_limits
def board_pdf(scheme_key: str, area_key: str):
    data, qr = _board(scheme_key, area_key)
    size = _size(data)
    html = render_themed(data["theme"], "boards/poster.html", boards=[(data, qr)], size=size,
                         printed=district_today(scheme_key), as_on=_as_on())
    return Response(render_pdf(html), mimetype="application/pdf",
                    headers={"Content-Disposition": f"inline; filename=board-{data['area'].key}-{size['id']}.pdf"})


@bp.post("/<scheme_key>/print")
def start_print(scheme_key: str):
    """Every board of the district, or of one unit and below (`unit`), in one PDF to print: a job, whose page
    shows its progress and then the file."""
    params = {"unit": request.form.get("unit") or None, "size": request.form.get("size") or None,
              "on": _as_on().isoformat() if _as_on() else None}
    job = jobs.start_job(current_user, printing.KIND, scheme_key, params)
    db.session.commit()
    return redirect(url_for("jobs.job", job_id=job.id))
