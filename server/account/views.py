"""Log in, log out, change password."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user

from ..auth import service
from ..auth.access import public
from ..core.errors import Conflict
from ..extensions import db, limiter
from ..web.params import safe_next
from .forms import LoginForm, PasswordForm

bp = Blueprint("account", __name__, template_folder="templates")


def _login_limit() -> str:
    return current_app.config["FANGAN_LOGIN_LIMIT"]


@bp.route("/login", methods=["GET", "POST"])
@public
@limiter.limit(_login_limit, methods=["POST"])
def login():
    if current_user.is_authenticated:
        return redirect(safe_next(request.args.get("next")))
    form = LoginForm()
    if form.validate_on_submit():
        user = service.authenticate(form.username.data, form.password.data)
        if user is None:
            form.password.errors.append(_("Wrong username or password."))
        else:
            lang = session.get("lang")
            session.clear()  # a fresh session on login: no fixation
            if lang:
                session["lang"] = lang
            session.permanent = True  # PERMANENT_SESSION_LIFETIME applies (12 hours)
            login_user(user)
            db.session.commit()
            return redirect(safe_next(request.args.get("next")))
    return render_template("account/login.html", form=form), 200 if not form.errors else 400


@bp.post("/logout")
def logout():
    # Ended on the server, not only forgotten by this browser: a copy of the cookie stops working too.
    service.log_out(current_user._get_current_object())
    db.session.commit()
    logout_user()
    session.clear()
    flash(_("You have logged out."), "info")
    return redirect(url_for("account.login"))


@bp.route("/account/password", methods=["GET", "POST"])
def change_password():
    form = PasswordForm()
    if form.validate_on_submit():
        try:
            service.change_password(current_user, form.current.data, form.new.data)
        except Conflict as exc:
            form.current.errors.append(exc.message)
        else:
            db.session.commit()
            login_user(current_user._get_current_object())  # the session token changed with the password
            flash(_("Your password has been changed."), "success")
            return redirect(url_for("home.index"))
    return render_template("account/password.html", form=form), 200 if not form.errors else 400
