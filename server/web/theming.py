"""Themes are templates and CSS only: a template search path with fallback to the default theme.

The site's theme (FANGAN_THEME) serves every page. A district (its scheme's `theme`) or a board definition
may choose another for its public board pages and printed boards: `render_themed` renders with a Jinja
environment whose search path puts that theme's templates first; anything the theme lacks comes from the
site's search path (the site theme, `default`, then the app's own templates). A theme's template may extend
the one it replaces as `default/<name>`. Its static files are served at `/themes/<theme>/<file>`, falling
back to the default theme's.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask, abort, current_app, render_template, send_from_directory
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PrefixLoader

from ..auth.access import public
from ..definitions.bundle import available_themes


def theme_dirs(app: Flask, theme: str | None = None) -> list[Path]:
    root = Path(app.config["FANGAN_ROOT"]) / "themes"
    names = [theme or app.config["FANGAN_THEME"], "default"]
    return [root / name for name in dict.fromkeys(names) if (root / name).is_dir()]


def themed_environment(app: Flask, theme: str) -> Environment | None:
    """The Jinja environment of a theme (made once per theme), or None for a theme that is not installed."""
    cache: dict[str, Environment | None] = app.extensions.setdefault("fangan_themes", {})
    if theme not in cache:
        root = Path(app.config["FANGAN_ROOT"])
        if theme not in available_themes(root):
            cache[theme] = None
        else:
            site = app.jinja_env.loader
            loader = ChoiceLoader([FileSystemLoader(str(root / "themes" / theme / "templates")),
                                   PrefixLoader({"default": site}), site])
            cache[theme] = app.jinja_env.overlay(loader=loader)
    return cache[theme]


def render_themed(theme: str | None, template: str, **context) -> str:
    """Render `template` in a district's theme; the site's theme when it names none (or one not installed)."""
    env = themed_environment(current_app, theme) if theme else None
    if env is None:
        return render_template(template, **context)
    return render_template(env.get_template(template), theme=theme, **context)


def init_app(app: Flask) -> None:
    dirs = theme_dirs(app)
    app.jinja_loader = ChoiceLoader([FileSystemLoader([str(d / "templates") for d in dirs]),
                                     FileSystemLoader(str(Path(app.root_path) / "templates"))])

    def _send(folders: list[Path], filename: str):
        for folder in folders:
            if (folder / "static" / filename).is_file():
                return send_from_directory(folder / "static", filename, max_age=3600)
        abort(404)

    @public
    def theme_static(filename: str, theme: str | None = None):
        if theme is None:
            return _send(theme_dirs(app), filename)
        root = Path(app.config["FANGAN_ROOT"])
        if theme not in available_themes(root):
            abort(404)
        return _send([root / "themes" / name for name in dict.fromkeys([theme, "default"])], filename)

    app.add_url_rule("/theme/<path:filename>", "theme_static", theme_static)
    app.add_url_rule("/themes/<theme>/<path:filename>", "theme_static", theme_static)
