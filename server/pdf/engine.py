"""Render HTML to PDF with WeasyPrint; resources may only be inline (data:) or the app's own static files.

A document never fetches `file:` URLs or anything on the network: administrator- or public-supplied
text that slips a URL into a page cannot make the server read files or call out.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

# Fonts that carry Chinese, in the order the print styles name them (Debian fonts-wqy-microhei / noto-cjk).
CJK_FONTS = ("WenQuanYi Micro Hei", "Noto Sans CJK SC", "Noto Serif CJK SC", "Source Han Sans SC")


class RefusedResource(ValueError):
    pass


def make_fetcher(static_roots: dict[str, Path]):  # noqa: ANN201
    """A WeasyPrint URL fetcher: data: URLs, and `internal:///static/...` paths served from the given folders."""
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    class SafeFetcher(URLFetcher):
        def fetch(self, url: str, headers: dict | None = None) -> URLFetcherResponse:
            parsed = urlparse(url)
            if parsed.scheme == "data":
                return super().fetch(url, headers)
            if parsed.scheme in ("", "internal") and not parsed.netloc:
                for prefix, root in static_roots.items():
                    if parsed.path.startswith(prefix):
                        target = (root / parsed.path[len(prefix):]).resolve()
                        if root.resolve() in target.parents and target.is_file():
                            return URLFetcherResponse(url, target.read_bytes())
            raise RefusedResource(f"refused to fetch {url!r}")

    return SafeFetcher(allow_redirects=False)


def render_pdf(html: str, static_roots: dict[str, Path] | None = None) -> bytes:
    """The PDF of an HTML document (its CSS included); only inline and static resources are loaded."""
    from weasyprint import HTML

    return HTML(string=html, base_url="internal:///", url_fetcher=make_fetcher(static_roots or {})).write_pdf()
