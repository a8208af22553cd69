"""The base of every web form: Flask-WTF with CSRF, and WTForms' own messages in the page's language."""

from __future__ import annotations

import wtforms
from flask_wtf import FlaskForm

from .i18n import text_language


class _LocalesMeta:
    @property
    def locales(self) -> list[str]:
        # WTForms ships zh and en catalogues for its own messages ("Not a valid integer value.").
        return ["zh"] if text_language() == "zh" else ["en"]


class Form(FlaskForm):
    class Meta(_LocalesMeta):
        pass


class SubForm(wtforms.Form):
    """A nested form (a repeat group's row): no CSRF of its own, same message language."""

    class Meta(_LocalesMeta):
        pass
