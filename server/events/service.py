"""Events out: what happened to a case, told to the district's other systems, exactly once each.

Recording: when a flush writes case events or notifications, an outbox row is written for each one a receiver
wants, with one delivery per receiver, in the same transaction: an action that is rolled back tells nobody, and
one that commits is never lost. Delivering (`fangan tick`, on every host): a delivery that is due is claimed by
one host (an atomic update, the same on SQLite and PostgreSQL), sent signed, and marked delivered, or given a
later try (1, 2, 4 … minutes, up to six hours apart; failed after twelve tries). The delivery's id travels
with it, so a receiver that hears one twice (a host that stopped between sending and marking) can tell."""

from __future__ import annotations

import datetime as dt
import json
import logging
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

from flask import current_app, has_app_context
from sqlalchemy import event as sa_event
from sqlalchemy import func, insert, or_, select, update

from ..audit.service import record_audit
from ..core.clock import utcnow
from ..extensions import db
from ..workflow.models import Case, CaseEvent, Notification
from ..workflow.service import case_opened
from . import engine
from .models import OutboxDelivery, OutboxEvent

log = logging.getLogger(__name__)

LEASE = dt.timedelta(minutes=2)  # longer than one send may take (a 10-second timeout)
TIMEOUT = 10


def configured_receivers() -> dict[str, engine.Receiver]:
    return engine.receivers(current_app.config)


# -- recording ----------------------------------------------------------------------------------------------------

def _case_payload(kind: str, case: Case, at: dt.datetime | None, step: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": kind, "at": (at or utcnow()).isoformat(timespec="seconds"), "scheme": case.scheme_key,
        "case": {"id": case.id, "state": case.state, "state_kind": case.state_kind, "category": case.category,
                 "overdue": bool(case.overdue), "unit": case.unit.key if case.unit else None,
                 "area": case.area.key if case.area else None},
        "step": step}


def _step_kind(item: CaseEvent) -> str:
    return {"transition": "case.transition", "escalation": "case.escalation"}.get(item.kind, "case.changed")


def _notification_payload(item: Notification, case: Case | None) -> dict[str, Any]:
    return {"type": "notification.created", "at": (item.created_at or utcnow()).isoformat(timespec="seconds"),
            "scheme": case.scheme_key if case else None,
            "notification": {"id": item.id, "case_id": item.case_id, "user": item.user_id, "unit": item.unit_id,
                             "message": item.message}}


def _record(session: Any, _context: Any) -> None:
    """after_flush: the outbox rows of the case events and notifications this flush wrote."""
    if not has_app_context():
        return
    new = [obj for obj in session.new if isinstance(obj, CaseEvent | Notification)]
    if not new:
        return
    wanted = configured_receivers()
    if not wanted:
        return
    connection = session.connection()
    for item in sorted(new, key=lambda o: (type(o).__name__, o.id or 0)):
        if isinstance(item, CaseEvent):
            case = item.case or session.get(Case, item.case_id)
            kind = _step_kind(item)
            payload = _case_payload(kind, case, item.at, {
                "event_id": item.id, "kind": item.kind, "transition": item.transition, "from_state": item.from_state,
                "to_state": item.to_state, "user_id": item.user_id})
        else:
            case = session.get(Case, item.case_id) if item.case_id else None
            kind, payload = "notification.created", _notification_payload(item, case)
        _store(connection, wanted, kind, case, payload)


def _store(connection: Any, wanted: dict[str, engine.Receiver], kind: str, case: Case | None,
           payload: dict[str, Any]) -> None:
    """The outbox row of one event and a delivery for each receiver that wants it (none: nothing is stored)."""
    scheme_key = case.scheme_key if case else None
    names = [r.name for r in wanted.values() if r.wants(kind, scheme_key)]
    if not names:
        return
    now = utcnow()
    event_id = connection.execute(insert(OutboxEvent).returning(OutboxEvent.id), {
        "kind": kind, "scheme_key": scheme_key, "case_id": case.id if case else None, "payload": payload,
        "created_at": now}).scalar_one()
    connection.execute(insert(OutboxDelivery), [
        {"event_id": event_id, "receiver": name, "state": "pending", "attempts": 0, "next_at": now}
        for name in names])


@case_opened.connect
def _opened(case: Case, at: dt.datetime, user_id: int | None) -> None:
    wanted = configured_receivers()
    if wanted:
        _store(db.session.connection(), wanted, "case.opened", case,
               _case_payload("case.opened", case, at, {"event_id": None, "kind": "opened", "transition": None,
                                                       "from_state": None, "to_state": case.state,
                                                       "user_id": user_id}))


def init_recording() -> None:
    """Listen to every flush of the app's sessions (done once, when the package is imported)."""
    if not sa_event.contains(db.session, "after_flush", _record):
        sa_event.listen(db.session, "after_flush", _record)


init_recording()


# -- delivering ---------------------------------------------------------------------------------------------------

def _claim(delivery_id: int, now: dt.datetime, host: str) -> bool:
    """Take one delivery for this host until the lease ends; False when another host has it."""
    taken = db.session.execute(
        update(OutboxDelivery).where(OutboxDelivery.id == delivery_id, OutboxDelivery.state == "pending",
                                     OutboxDelivery.next_at <= now,
                                     or_(OutboxDelivery.claimed_until.is_(None), OutboxDelivery.claimed_until < now))
        .values(claimed_until=now + LEASE, claimed_by=host)).rowcount
    db.session.commit()
    return taken == 1


def body_of(delivery: OutboxDelivery) -> bytes:
    """What a receiver gets: the delivery's id (to recognise a repeat), its name, and the event."""
    return json.dumps({"delivery": delivery.id, "receiver": delivery.receiver, "event": delivery.event.payload},
                      ensure_ascii=False, sort_keys=True).encode("utf-8")


def _send(receiver: engine.Receiver, delivery: OutboxDelivery) -> tuple[int | None, str | None]:
    """POST it; (status, None) when taken (2xx), else (status or None, the reason)."""
    body = body_of(delivery)
    headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "Fangan-Events/1",
               "X-Fangan-Event": delivery.event.kind, "X-Fangan-Delivery": str(delivery.id),
               engine.SIGNATURE_HEADER: engine.sign(receiver.secret, body)}
    if receiver.token:
        headers["Authorization"] = f"Bearer {receiver.token}"
    request = urllib.request.Request(receiver.url, data=body, method="POST", headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310 - http(s), checked at start
            status = response.status
    except urllib.error.HTTPError as exc:
        return exc.code, f"HTTP {exc.code}"
    except (OSError, ValueError) as exc:  # refused, timed out, unreachable
        return None, str(exc)[:500] or type(exc).__name__
    return (status, None) if 200 <= status < 300 else (status, f"HTTP {status}")


def deliver_events(now: dt.datetime | None = None, batch: int = 200) -> dict[str, int]:
    """Send what is due, each delivery by one host only; counts of delivered, retried later and given up."""
    counts = {"delivered": 0, "retry": 0, "failed": 0}
    wanted = configured_receivers()
    now = now or utcnow()
    host = socket.gethostname()[:100]
    due = db.session.scalars(select(OutboxDelivery.id).where(
        OutboxDelivery.state == "pending", OutboxDelivery.next_at <= now,
        or_(OutboxDelivery.claimed_until.is_(None), OutboxDelivery.claimed_until < now))
        .order_by(OutboxDelivery.id).limit(batch)).all()
    db.session.commit()
    for delivery_id in due:
        if not _claim(delivery_id, now, host):
            continue
        delivery = db.session.get(OutboxDelivery, delivery_id)
        receiver = wanted.get(delivery.receiver)
        if receiver is None:  # a receiver taken out of the settings: its deliveries wait, as they are
            status, error = None, "the receiver is not configured"
        else:
            status, error = _send(receiver, delivery)
        delivery.attempts += 1
        delivery.last_status, delivery.claimed_until, delivery.claimed_by = status, None, None
        if error is None:
            delivery.state, delivery.delivered_at, delivery.last_error = "delivered", utcnow(), None
            counts["delivered"] += 1
        else:
            delivery.last_error = error
            later = engine.next_attempt(delivery.attempts, utcnow())
            if later is None:
                delivery.state = "failed"
                counts["failed"] += 1
                log.warning("event delivery %s to %s failed for good: %s", delivery.id, delivery.receiver, error)
            else:
                delivery.next_at = later
                counts["retry"] += 1
        db.session.commit()
    return counts


# -- the status page ------------------------------------------------------------------------------------------------

def receiver_status() -> list[dict[str, Any]]:
    """Each receiver (configured, or with deliveries left from before) with its deliveries by state, the oldest
    waiting one, and the latest failures."""
    wanted = configured_receivers()
    rows = db.session.execute(select(OutboxDelivery.receiver, OutboxDelivery.state, func.count(),
                                     func.min(OutboxDelivery.next_at, type_=OutboxDelivery.next_at.type))
                              .group_by(OutboxDelivery.receiver, OutboxDelivery.state))
    by_name: dict[str, dict[str, Any]] = {
        name: {"name": name, "url": r.url, "events": r.events, "schemes": r.schemes, "configured": True,
               "pending": 0, "delivered": 0, "failed": 0, "oldest_pending": None} for name, r in wanted.items()}
    for name, state, count, oldest in rows:
        row = by_name.setdefault(name, {"name": name, "url": None, "events": (), "schemes": (), "configured": False,
                                        "pending": 0, "delivered": 0, "failed": 0, "oldest_pending": None})
        row[state] = count
        if state == "pending":
            row["oldest_pending"] = oldest
    return sorted(by_name.values(), key=lambda r: r["name"])


def troubled_deliveries(limit: int = 50) -> list[OutboxDelivery]:
    """Deliveries that failed for good, or are waiting after a failed try, latest first."""
    return list(db.session.scalars(select(OutboxDelivery).where(
        or_(OutboxDelivery.state == "failed",
            (OutboxDelivery.state == "pending") & (OutboxDelivery.attempts > 0)))
        .order_by(OutboxDelivery.id.desc()).limit(limit)))


def retry_failed(user: Any, receiver: str) -> int:
    """Put a receiver's failed deliveries back in the queue, to be sent at the next tick; how many."""
    now = utcnow()
    count = db.session.execute(update(OutboxDelivery).where(OutboxDelivery.receiver == receiver,
                                                            OutboxDelivery.state == "failed")
                               .values(state="pending", attempts=0, next_at=now, claimed_until=None)).rowcount
    record_audit("events.retry", "receiver", None, user=user, after={"receiver": receiver, "deliveries": count})
    return count


def waiting_counts() -> Iterator[tuple[str, str, int]]:
    """(receiver, state, count) of deliveries not delivered, for /metrics."""
    yield from db.session.execute(select(OutboxDelivery.receiver, OutboxDelivery.state, func.count())
                                  .where(OutboxDelivery.state != "delivered")
                                  .group_by(OutboxDelivery.receiver, OutboxDelivery.state)
                                  .order_by(OutboxDelivery.receiver, OutboxDelivery.state))
