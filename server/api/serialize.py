"""What the JSON API returns: plain dicts of cases, records, compliance, scores and boards (shapes in openapi.py).

People are named by username, units and areas by their keys in the scheme, definition texts in the client
user's language; times are UTC in ISO 8601 with their offset.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ..web.i18n import tr
from ..workflow import service as workflow

if TYPE_CHECKING:
    from ..auth.models import AnyUser


def _time(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat(timespec="seconds") if value is not None else None


def _day(value: dt.date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _number(value: Decimal | float | None) -> float | None:
    return float(value) if value is not None else None


def _key(obj: Any) -> str | None:
    return obj.key if obj is not None else None


def _username(user: AnyUser) -> str | None:
    return user.username if user is not None else None


def case(item: Any, *, user: AnyUser = None) -> dict[str, Any]:
    """A case; with `user`, also its timeline and the steps that user may take now."""
    spec = workflow.workflow_of(item)
    state = spec.states.get(item.state)
    out: dict[str, Any] = {
        "id": item.id, "scheme": item.scheme_key, "workflow": item.workflow_key, "version": item.version,
        "state": item.state, "state_name": tr(state.name) if state else item.state, "state_kind": item.state_kind,
        "outcome": item.outcome, "category": item.category, "area": _key(item.area), "unit": _key(item.unit),
        "assignee": _username(item.assignee), "reporter": _username(item.reporter), "overdue": bool(item.overdue),
        "report": item.submission_id, "data": item.data or {},
        "created_at": _time(item.created_at), "updated_at": _time(item.updated_at), "closed_at": _time(item.closed_at),
        "deadlines": [{"key": d.key, "started_at": _time(d.started_at), "due_at": _time(d.due_at),
                       "stopped_at": _time(d.stopped_at), "paused_at": _time(d.paused_at), "met": d.met}
                      for d in item.deadlines],
    }
    if user is not None:
        out["timeline"] = [{"at": _time(e.at), "kind": e.kind, "transition": e.transition, "from_state": e.from_state,
                            "to_state": e.to_state, "user": _username(e.user), "submission": e.submission_id,
                            "changes": e.changes, "note": e.note} for e in item.events]
        out["actions"] = [{"id": t.id, "name": tr(t.name), "to_state": t.target, "form": t.form}
                          for t in workflow.available_actions(user, item)]
    return out


def submission(item: Any) -> dict[str, Any]:
    return {
        "id": item.id, "scheme": item.scheme_key, "form": item.form_key,
        "definition_version": item.definition_version_id,
        "user": _username(item.user), "unit": _key(item.unit), "area": _key(item.area),
        "submitted_at": _time(item.submitted_at), "occurred_at": _time(item.occurred_at),
        "data": item.data or {}, "location": item.location, "flags": item.flags or {},
    }


def _subject(subject: dict[str, Any], posts: list[Any]) -> dict[str, Any]:
    if subject["kind"] == "unit":
        return {"kind": "unit", "unit": _key(subject["unit"]), "name": tr(subject["unit"].name)}
    return {"kind": "person", "user": _username(subject.get("user")), "name": subject.get("name"),
            "focus": _key(subject.get("focus")),
            "posts": [{"tier": p.tier_key, "holder": p.holder_name, "unit": _key(p.unit), "area": _key(p.area)}
                      for p in posts]}


def rule_compliance(rule: Any, verdicts: list[Any]) -> dict[str, Any]:
    """One patrol rule and, per period and subject in reach, how many patrols were owed and filed."""
    return {
        "id": rule.id, "name": tr(rule.name), "at_least": rule.at_least, "per": rule.per,
        "counted_per": rule.counted_per, "form": rule.form,
        "verdicts": [{"period": {"key": v.period.key, "start": _day(v.period.start), "end": _day(v.period.end)},
                      "subject": _subject(v.subject, (v.extra or {}).get("posts", [])), "count": v.count,
                      "required": v.required, "met": v.met, "short_by": v.short_by, "held_days": v.held_days,
                      "period_days": v.period_days} for v in verdicts],
    }


def period(item: Any) -> dict[str, Any]:
    return {"id": item.id, "scheme": item.scheme_key, "sheet": item.sheet_key, "period": item.period_key,
            "starts_on": _day(item.starts_on), "ends_on": _day(item.ends_on), "state": item.state,
            "appeal_until": _day(item.appeal_until), "revision": item.revision, "provisional": item.provisional}


def score(item: Any) -> dict[str, Any]:
    return {
        "unit": _key(item.owner_unit), "unit_name": tr(item.owner_unit.name) if item.owner_unit else None,
        "person": {"id": item.subject_id, "name": item.person_name} if item.unit_id is None else None,
        "total": _number(item.total), "grade": item.grade,
        "passing": item.passing, "ranks": item.ranks or {}, "flags": item.flags or [], "items": item.items or {},
        "metrics": item.metrics or {}, "vetoes": item.vetoes or [], "actions": item.actions or [],
        "funding": _number(item.funding),
        "money": {"lines": [{**line, "amount": _number(line["amount"])} for line in item.ledger],
                  "total": _number(item.money_total)},
        "areas": [{**row, "total": _number(row["total"]),
                   "items": {k: _number(v) for k, v in (row.get("items") or {}).items()}} for row in item.areas or []],
    }


def board(data: dict[str, Any]) -> dict[str, Any]:
    """A notice board as the public page shows it (only the parts the board's definition shows)."""
    show = data["show"]
    area = data["area"]
    return {
        "area": {"key": area.key, "name": tr(area.name), "kind": area.kind},
        "title": data["title"], "subtitle": data["subtitle"] or None, "on": _day(data["on"]),
        "unit": data["unit"] if show.get("unit") else None,
        "range": ({"from": data["range"][0], "to": data["range"][1]}
                  if show.get("range") and data["range"] else None),
        "tiers": [{"name": row["tier"], "chiefs": row["chiefs"]} for row in data["rows"]],
        "footer": data["footer"] or None, "supervision_phone": data["phone"] or None,
    }
