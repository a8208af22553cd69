"""The events-out page: each receiver's deliveries waiting, delivered and given up, and what went wrong."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user

from ..auth import permissions
from ..core.errors import PermissionDenied
from ..extensions import db
from ..web.forms import Form
from . import engine, service

bp = Blueprint("events", __name__, template_folder="templates", url_prefix="/admin/events")
# The receivers are read at start: a setting that can never work stops the server with its reason.
bp.record_once(lambda state: engine.receivers(state.app.config))


def _require() -> None:
    if not permissions.can_manage_users(current_user):  # the receivers are the site's, for every district
        raise PermissionDenied(_("You are not allowed to do this."))


@bp.get("/")
def status():
    _require()
    return render_template("events/status.html", receivers=service.receiver_status(),
                           troubled=service.troubled_deliveries(), form=Form())


@bp.post("/<receiver>/retry")
def retry(receiver: str):
    """Send a receiver's given-up deliveries again, from the next tick."""
    _require()
    if Form().validate_on_submit():
        count = service.retry_failed(current_user, receiver[:64])
        db.session.commit()
        flash(_("%(count)s delivery(ies) to %(receiver)s will be tried again at the next tick.", count=count,
                receiver=receiver[:64]), "success")
    return redirect(url_for("events.status"), code=303)
