"""Language choice and translation of definition texts (`{zh: …, en: …}` or a plain string)."""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app, request, session
from flask_babel import get_locale
from flask_login import current_user


def select_locale() -> str:
    languages = current_app.config["FANGAN_LANGUAGES"]
    chosen = session.get("lang")
    if chosen in languages:
        return chosen
    if getattr(current_user, "is_authenticated", False) and current_user.locale in languages:
        return current_user.locale
    best = request.accept_languages.best_match(["zh", "zh_CN", "en"]) if request else None
    if best == "en" and request.accept_languages.quality("en") > request.accept_languages.quality("zh"):
        return "en"
    return current_app.config["BABEL_DEFAULT_LOCALE"]


def text_language() -> str:
    """`zh` or `en`: which half of a bilingual definition text to show."""
    locale = get_locale()
    return "en" if locale is not None and locale.language == "en" else "zh"


def tr(text: Any, lang: str | None = None) -> str:
    """Pick the current language from a definition text, falling back to the other one."""
    if text is None:
        return ""
    if isinstance(text, dict):
        lang = lang or text_language()
        other = "zh" if lang == "en" else "en"
        return str(text.get(lang) or text.get(other) or "")
    return str(text)


def init_app(app: Flask) -> None:
    app.jinja_env.filters["tr"] = tr

    @app.context_processor
    def _languages() -> dict:
        return {"languages": app.config["FANGAN_LANGUAGES"], "current_locale": str(get_locale())}
