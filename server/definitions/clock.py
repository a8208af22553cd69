"""The district's clock: "today" and "now" in the scheme's time zone, from one place.

A district's day starts at midnight in its own zone (`calendar.timezone` in the scheme, Asia/Shanghai by
default), not the server's: between 00:00 and 08:00 in Beijing the server's UTC date is still yesterday.
Every page, service, export and PDF that needs the date asks here. Site-wide pages (no scheme) use the
site's zone, `BABEL_DEFAULT_TIMEZONE`.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from flask import current_app, has_app_context

from ..core.clock import utcnow, zone_named


def site_zone() -> ZoneInfo:
    """The site's zone, for pages that belong to no scheme."""
    name = current_app.config.get("BABEL_DEFAULT_TIMEZONE") if has_app_context() else None
    return zone_named(name)


def district_zone(scheme_key: str | None) -> ZoneInfo:
    """The scheme's time zone (`calendar.timezone`, Asia/Shanghai by default); the site's for no scheme."""
    if scheme_key is None:
        return site_zone()
    from .service import scheme_in_force

    scheme = scheme_in_force(scheme_key)
    return zone_named(scheme.calendar.timezone if scheme else None)


def district_now(scheme_key: str | None = None) -> dt.datetime:
    """Now, aware, in the district's zone."""
    return utcnow().astimezone(district_zone(scheme_key))


def district_today(scheme_key: str | None = None) -> dt.date:
    """The district's calendar date now."""
    return district_now(scheme_key).date()


def in_district(moment: dt.datetime, scheme_key: str | None = None) -> dt.datetime:
    """An aware instant shown in the district's zone."""
    return moment.astimezone(district_zone(scheme_key))


def day_bounds(first: dt.date, last: dt.date, scheme_key: str | None = None) -> tuple[dt.datetime, dt.datetime]:
    """The UTC instants where the district's day `first` begins and the day after `last` begins."""
    zone = district_zone(scheme_key)
    return (dt.datetime.combine(first, dt.time(), zone).astimezone(dt.UTC),
            dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), zone).astimezone(dt.UTC))
