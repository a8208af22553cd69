"""The audit log for administrators (the page; the log itself is written by server/audit, low enough for
every package to use)."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_babel import gettext as _
from flask_login import current_user

from ..audit.service import list_audit
from ..auth import permissions
from ..core.errors import PermissionDenied
from ..definitions.service import list_schemes

bp = Blueprint("audit", __name__, template_folder="templates", url_prefix="/admin/audit")


@bp.get("/")
def index():
    if current_user.is_admin:
        keys = None
    else:
        keys = {r.key for r in list_schemes() if permissions.can_view_audit(current_user, r.key)}
        if not keys:
            raise PermissionDenied(_("You are not allowed to do this."))
    return render_template("audit/index.html", entries=list_audit(scheme_keys=keys))
