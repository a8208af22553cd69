"""Security headers on every response: what the browser may load, who may frame the page, no type sniffing,
no tracking code leaking in a Referer."""

from __future__ import annotations

import secrets

from flask import Flask, Response, g, make_response
from flask.typing import ResponseReturnValue

from .maps import image_origins, with_images_from

# Scripts and styles come only from this site (htmx, ECharts and our own files are vendored); inline style
# attributes stay allowed for server-drawn charts and colour tags, inline scripts do not.
CSP = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "style-src-attr 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "connect-src 'self'",
    # Photos are shrunk in a worker made from a blob: URL that loads the vendored library from this site.
    "worker-src 'self' blob:",
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])

HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",  # for browsers without frame-ancestors
    "Referrer-Policy": "same-origin",  # a tracking code in a URL never leaves the site
    "Permissions-Policy": "geolocation=(self), camera=(self), microphone=()",
}


def style_nonce() -> str:
    """This response's nonce for `<style>` elements that a vendored editor adds (CodeMirror, Mermaid): a page
    that asks for it gets `style-src 'nonce-…'`; every other page keeps `style-src 'self'` alone."""
    if "_style_nonce" not in g:
        g._style_nonce = secrets.token_urlsafe(16)
    return g._style_nonce


def framed_by_this_site(response: ResponseReturnValue) -> Response:
    """The response, allowed inside a frame of this site's own pages (an editor's live preview)."""
    response = make_response(response)
    response.headers["Content-Security-Policy"] = CSP.replace("frame-ancestors 'none'", "frame-ancestors 'self'")
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response


def init_app(app: Flask) -> None:
    app.jinja_env.globals["style_nonce"] = style_nonce
    @app.after_request
    def _headers(response: Response) -> Response:
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        nonce = g.get("_style_nonce")
        if nonce:
            response.headers["Content-Security-Policy"] = response.headers["Content-Security-Policy"].replace(
                "style-src 'self'", f"style-src 'self' 'nonce-{nonce}'", 1)
        origins = image_origins()
        if origins:  # a page with a map: its tiles come from the tile servers the scheme or the site names
            response.headers["Content-Security-Policy"] = with_images_from(
                response.headers["Content-Security-Policy"], origins)
        return response
