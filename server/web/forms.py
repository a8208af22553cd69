"""The base of every web form: Flask-WTF with CSRF, and WTForms' own messages in the page's language."""

from __future__ import annotations

from flask_wtf import FlaskForm

from .i18n import text_language


class Form(FlaskForm):
    class Meta:
        @property
        def locales(self) -> list[str]:
            # WTForms ships zh and en catalogues for its own messages ("Not a valid integer value.").
            return ["zh"] if text_language() == "zh" else ["en"]
