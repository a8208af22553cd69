"""What /metrics reads about cases from the database: open and overdue cases, escalations applied, and how late
`fangan tick` is running (the same figures on every host, whichever answers the scrape)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from ..core.clock import utcnow
from ..extensions import db
from ..web.observe import register_family
from .models import Case, CaseDeadline, EscalationApplied

FINAL = "final"


@register_family("cases")
def case_families() -> Iterator[Any]:
    open_cases = GaugeMetricFamily("fangan_cases_open", "Open cases, by district and state", labels=["scheme", "state"])
    rows = db.session.execute(db.select(Case.scheme_key, Case.state, db.func.count())
                              .where(Case.state_kind != FINAL).group_by(Case.scheme_key, Case.state)
                              .order_by(Case.scheme_key, Case.state))
    for scheme, state, count in rows:
        open_cases.add_metric([scheme, state], count)
    yield open_cases
    overdue = GaugeMetricFamily("fangan_cases_overdue", "Open cases past a deadline, by district", labels=["scheme"])
    rows = db.session.execute(db.select(Case.scheme_key, db.func.count())
                              .where(Case.state_kind != FINAL, Case.overdue.is_(True))
                              .group_by(Case.scheme_key).order_by(Case.scheme_key))
    for scheme, count in rows:
        overdue.add_metric([scheme], count)
    yield overdue


@register_family("escalations")
def escalation_families() -> Iterator[Any]:
    applied = CounterMetricFamily("fangan_escalations_applied", "Escalations applied by fangan tick, since the start")
    applied.add_metric([], db.session.scalar(db.select(db.func.count(EscalationApplied.id))) or 0)
    yield applied
    # The oldest deadline whose moment to be looked at has come: how far behind `fangan tick` is (0 when none
    # waits). A timer every minute keeps this under a minute or two; a stopped timer makes it grow.
    due = db.session.scalar(db.select(db.func.min(CaseDeadline.check_at, type_=CaseDeadline.check_at.type))
                            .where(CaseDeadline.check_at <= utcnow(), CaseDeadline.stopped_at.is_(None),
                                   CaseDeadline.paused_at.is_(None)))
    lag = GaugeMetricFamily("fangan_tick_lag_seconds",
                            "How long the oldest deadline due to be looked at has waited for fangan tick")
    lag.add_metric([], max(0.0, (utcnow() - due).total_seconds()) if due is not None else 0.0)
    yield lag
