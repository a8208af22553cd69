"""Language choice and translation of definition texts (`{zh: …, en: …}` or a plain string)."""

from __future__ import annotations

from functools import cache
from typing import Any

from babel import Locale
from flask import Flask, current_app, has_request_context, session
from flask.globals import _cv_request  # the request context itself: `tr` asks for its language once a row
from flask_babel import get_locale, get_translations, lazy_gettext
from flask_login import current_user
from jinja2 import pass_context
from jinja2.runtime import Context


def select_locale() -> Locale:
    """The request's language (Flask-Babel's locale selector)."""
    return _parsed(_locale_name())


@cache
def _parsed(name: str) -> Locale:
    # Parsing a locale name searches Babel's whole list of locales: once per name, not once per request.
    return Locale.parse(name)


def _locale_name() -> str:
    languages = current_app.config["FANGAN_LANGUAGES"]
    if not has_request_context():
        return current_app.config["BABEL_DEFAULT_LOCALE"]  # CLI, background jobs
    chosen = session.get("lang")
    if chosen in languages:
        return chosen
    if getattr(current_user, "is_authenticated", False) and current_user.locale in languages:
        return current_user.locale
    # Chinese unless someone chose otherwise: the browser's language is not a choice (many phones say en-US).
    return current_app.config["BABEL_DEFAULT_LOCALE"]


def text_language() -> str:
    """`zh` or `en`: which half of a bilingual definition text to show (once a request: pages ask often, once
    a row, so it is kept on the request's context itself, reached without the proxies' look-ups)."""
    context = _cv_request.get(None)
    language = getattr(context, "fangan_text_language", None)
    if language is None:
        locale = get_locale()
        language = "en" if locale is not None and locale.language == "en" else "zh"
        if context is not None:
            context.fangan_text_language = language
    return language


def tr(text: Any, lang: str | None = None) -> str:
    """Pick the current language from a definition text, falling back to the other one, then to any language it
    has (a form imported with French labels only shows French rather than nothing)."""
    if text is None:
        return ""
    if isinstance(text, dict):
        lang = lang or text_language()
        other = "zh" if lang == "en" else "en"
        return str(text.get(lang) or text.get(other) or next((v for v in text.values() if v), ""))
    return str(text)


KIND_LABELS = {
    "scheme": lazy_gettext("scheme"), "form": lazy_gettext("form"), "workflow": lazy_gettext("workflow"),
    "patrol_rules": lazy_gettext("patrol rule file"), "score_sheet": lazy_gettext("score sheet"),
    "board": lazy_gettext("notice board"), "category_list": lazy_gettext("category list"),
}
AUDIT_LABELS = {
    "scheme.load": lazy_gettext("scheme loaded"), "scheme.activate": lazy_gettext("scheme activated"),
    "user.create": lazy_gettext("user created"), "user.login": lazy_gettext("logged in"),
    "user.logout": lazy_gettext("logged out"),
    "user.reset_password": lazy_gettext("password reset"), "user.change_password": lazy_gettext("password changed"),
    "user.grant_role": lazy_gettext("role granted"), "user.revoke_role": lazy_gettext("role removed"),
    "user.block": lazy_gettext("user blocked"), "user.unblock": lazy_gettext("user unblocked"),
    "form.submit": lazy_gettext("form submitted"),
    "calendar.set": lazy_gettext("calendar day set"), "calendar.delete": lazy_gettext("calendar day removed"),
    "case.open": lazy_gettext("case opened"), "case.transition": lazy_gettext("case step taken"),
    "case.escalate": lazy_gettext("case escalated"), "case.migrate": lazy_gettext("case moved to a new workflow"),
    "unit.create": lazy_gettext("unit added"), "unit.edit": lazy_gettext("unit changed"),
    "area.create": lazy_gettext("area added"), "area.edit": lazy_gettext("area changed"),
    "post.appoint": lazy_gettext("appointed"), "post.edit": lazy_gettext("post changed"),
    "post.end": lazy_gettext("post ended"), "org.import": lazy_gettext("organisation imported"),
    "api.create_client": lazy_gettext("API client created"), "api.revoke_client": lazy_gettext("API client revoked"),
    "assessment.open": lazy_gettext("assessment period opened"), "assessment.enter": lazy_gettext("marks entered"),
    "assessment.appeals": lazy_gettext("appeals opened"), "assessment.appeal": lazy_gettext("appeal filed"),
    "assessment.decide": lazy_gettext("appeal decided"), "assessment.publish": lazy_gettext("results published"),
    "calendar.import": lazy_gettext("calendar imported"), "calendar.year": lazy_gettext("calendar year set"),
    "case.deadline_error": lazy_gettext("deadline could not be worked out"),
    "case.deadline_moved": lazy_gettext("deadline moved"),
    "public.report": lazy_gettext("public report received"), "public.moderate": lazy_gettext("public report checked"),
    "public.followup": lazy_gettext("reporter answered"),
    "public.contacts_expired": lazy_gettext("reporters' contacts erased (kept as long as the scheme says)"),
    "public.reporter_export": lazy_gettext("a reporter's data looked up"),
    "public.reporter_erased": lazy_gettext("a reporter's contacts erased on request"),
    "events.retry": lazy_gettext("event deliveries sent again"),
}

# What an audit entry is about, in words (its `object_type`).
OBJECT_LABELS = {
    "api_client": lazy_gettext("API client"), "area": lazy_gettext("area"),
    "assessment_appeal": lazy_gettext("appeal"), "assessment_entry": lazy_gettext("marks"),
    "assessment_period": lazy_gettext("assessment period"), "calendar_day": lazy_gettext("calendar day"),
    "calendar_year": lazy_gettext("calendar year"), "case": lazy_gettext("case"), "post": lazy_gettext("post"),
    "scheme": lazy_gettext("scheme"), "scheme_version": lazy_gettext("scheme version"),
    "submission": lazy_gettext("record"), "unit": lazy_gettext("unit"), "user": lazy_gettext("user"),
    "receiver": lazy_gettext("event receiver"),
}


def label_of(table: dict, key: str) -> str:
    return str(table.get(key, key))


def localtime(value: Any, fmt: str = "%Y-%m-%d %H:%M", scheme_key: str | None = None) -> str:
    """A UTC datetime shown in the district's time (the site's for no scheme)."""
    from ..definitions.clock import in_district

    if value is None:
        return ""
    return in_district(value, scheme_key).strftime(fmt)


def zone_label(scheme_key: str | None = None) -> str:
    """The time zone times are shown in, for column headers: "Asia/Shanghai, UTC+08:00"."""
    from ..definitions.clock import district_now

    now = district_now(scheme_key)
    return f"{now.tzinfo}, UTC{now.strftime('%z')[:3]}:{now.strftime('%z')[3:]}"


def init_app(app: Flask) -> None:
    app.jinja_env.filters["tr"] = tr
    app.jinja_env.filters["localtime"] = localtime
    app.jinja_env.globals["zone_label"] = zone_label
    app.jinja_env.filters["kind_label"] = lambda kind: label_of(KIND_LABELS, kind)
    app.jinja_env.filters["audit_label"] = lambda action: label_of(AUDIT_LABELS, action)
    app.jinja_env.filters["object_label"] = lambda kind: label_of(OBJECT_LABELS, kind)

    @app.context_processor
    def _languages() -> dict:
        return {"languages": app.config["FANGAN_LANGUAGES"], "current_locale": str(get_locale()),
                "_translations": get_translations()}

    # Flask-Babel's template callables look the translations up again for every `_()` (a few dozen calls
    # each, a few dozen times a page): these take them from the page's context, looked up once a render.
    app.jinja_env.install_gettext_callables(
        gettext=pass_context(lambda c, s: _page_translations(c).ugettext(s)),
        ngettext=pass_context(lambda c, s, p, n: _page_translations(c).ungettext(s, p, n)),
        pgettext=pass_context(lambda c, x, s: _page_translations(c).upgettext(x, s)),
        npgettext=pass_context(lambda c, x, s, p, n: _page_translations(c).unpgettext(x, s, p, n)),
        newstyle=True)


def _page_translations(context: Context) -> Any:
    return context.get("_translations") or get_translations()
