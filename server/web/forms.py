"""The base of every web form: Flask-WTF with CSRF (none for token-authenticated API requests), and WTForms' own
messages in the page's language."""

from __future__ import annotations

import wtforms
from flask import current_app
from flask_wtf import FlaskForm

from ..auth.access import by_token
from .i18n import text_language


class _LocalesMeta:
    @property
    def locales(self) -> list[str]:
        # WTForms ships zh and en catalogues for its own messages ("Not a valid integer value.").
        return ["zh"] if text_language() == "zh" else ["en"]


class Form(FlaskForm):
    class Meta(_LocalesMeta):
        @property
        def csrf(self) -> bool:
            # A request with a bearer token carries no cookie a forged page could ride on (the JSON API).
            return bool(current_app.config.get("WTF_CSRF_ENABLED", True)) and not by_token()


class SubForm(wtforms.Form):
    """A nested form (a repeat group's row): no CSRF of its own, same message language."""

    class Meta(_LocalesMeta):
        pass
