"""Themes are templates and CSS only: a template search path with fallback to the default theme."""

from __future__ import annotations

from pathlib import Path

from flask import Flask, abort, send_from_directory
from jinja2 import ChoiceLoader, FileSystemLoader

from ..auth.access import public


def theme_dirs(app: Flask, theme: str | None = None) -> list[Path]:
    root = Path(app.config["FANGAN_ROOT"]) / "themes"
    names = [theme or app.config["FANGAN_THEME"], "default"]
    return [root / name for name in dict.fromkeys(names) if (root / name).is_dir()]


def init_app(app: Flask) -> None:
    dirs = theme_dirs(app)
    app.jinja_loader = ChoiceLoader([FileSystemLoader([str(d / "templates") for d in dirs]),
                                     FileSystemLoader(str(Path(app.root_path) / "templates"))])

    @public
    def theme_static(filename: str):
        for folder in theme_dirs(app):
            if (folder / "static" / filename).is_file():
                return send_from_directory(folder / "static", filename, max_age=3600)
        abort(404)

    app.add_url_rule("/theme/<path:filename>", "theme_static", theme_static)
