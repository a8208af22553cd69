"""Every board of a district, or of a unit and those below it, printed in one PDF: a job (server/jobs), drawn
in batches of posters and joined, with its progress. Two thousand boards in one request ran out of time and
memory; here each batch is drawn and let go."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

from flask import url_for
from flask_babel import gettext as _
from pypdf import PdfReader, PdfWriter

from ..auth import permissions
from ..definitions.clock import district_today
from ..definitions.service import scheme_in_force
from ..jobs.service import JOB_KINDS, JobError, JobKind, JobResult, Progress
from ..pdf.engine import render_pdf
from ..web.theming import render_themed
from . import service

KIND = "boards.print"
BATCH = 50  # posters drawn at once


def _theme(scheme_key: str, areas: list[Any]) -> str | None:
    """The batch's theme: its boards' own when they share one, else the district's (as `batch_theme`)."""
    scheme = scheme_in_force(scheme_key)
    default = scheme.theme if scheme else None
    themes = {service.board_definition(scheme_key, a).get("theme") or default for a in areas}
    return themes.pop() if len(themes) == 1 else default


def print_boards(job: Any, _user: Any, progress: Progress) -> JobResult:
    scheme_key, params = job.scheme_key, job.params
    on = dt.date.fromisoformat(params["on"]) if params.get("on") else None
    areas = service.boards_of(scheme_key, params.get("unit") or None)
    if not areas:
        raise JobError(_("There is no board to print here."))
    keys, total = [a.key for a in areas], len(areas)
    theme, size, printed = _theme(scheme_key, areas), None, district_today(scheme_key)
    writer = PdfWriter()
    for start in range(0, total, BATCH):
        boards = []
        for key in keys[start:start + BATCH]:  # a batch at a time: its data and QR codes are let go once drawn
            data = service.board_for(scheme_key, service.get_area(scheme_key, key), on)
            url = url_for("boards.board", scheme_key=scheme_key, area_key=key, _external=True)
            boards.append((data, service.qr_svg(url)))
        if size is None:
            size = next((s for s in boards[0][0]["sizes"] if s["id"] == params.get("size")), boards[0][0]["sizes"][0])
        progress(start, total)  # ends the batch's reading before the drawing: no transaction waits on WeasyPrint
        html = render_themed(theme, "boards/poster.html", boards=boards, size=size, printed=printed, as_on=on)
        writer.append(PdfReader(io.BytesIO(render_pdf(html))))
        progress(min(start + BATCH, total), total)
    out = io.BytesIO()
    writer.write(out)
    return JobResult(out.getvalue(), f"boards-{scheme_key}-{size['id']}.pdf", "application/pdf")


JOB_KINDS.add(KIND, JobKind(title=lambda: _("Notice boards to print"),
                            may_start=lambda user, scheme_key, _params: permissions.can_print_boards(user, scheme_key),
                            run=print_boards))
