"""Events out, end to end with a real HTTP receiver: each case event is stored with the action that made it,
delivered signed, once per receiver, tried again later when the receiver fails, given up after its tries and
sent again from the status page; two hosts delivering at once send each delivery once."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import time_machine

from server.core.clock import utcnow
from server.events import engine
from server.events.models import OutboxDelivery, OutboxEvent
from server.events.service import deliver_events
from server.extensions import db
from server.workflow.models import CaseDeadline
from tests.conftest import make_app
from tests.integration.test_cases import _people, fire, report
from tests.support.factories import login

SECRET = "receiver-secret-0123456789"


class Receiver:
    """A district system listening for events: it checks each signature and can be told to fail."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.failures_left = 0
        self.bad_signatures = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if not engine.verify(SECRET, body, self.headers.get(engine.SIGNATURE_HEADER, "")):
                    outer.bad_signatures += 1
                if outer.failures_left > 0:
                    outer.failures_left -= 1
                    self.send_response(503)
                else:
                    outer.received.append({"body": json.loads(body), "delivery": self.headers["X-Fangan-Delivery"],
                                           "event": self.headers["X-Fangan-Event"]})
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args):  # noqa: ANN002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/events"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    listening = Receiver()
    yield listening
    listening.close()


@pytest.fixture
def sending(app, receiver):
    app.config["FANGAN_EVENT_RECEIVERS"] = {
        "szcg": {"url": receiver.url, "secret": SECRET, "events": ["case.*"], "schemes": ["lidu"]}}
    yield app
    app.config.pop("FANGAN_EVENT_RECEIVERS", None)


def _count(model) -> int:  # noqa: ANN001
    return db.session.scalar(db.select(db.func.count()).select_from(model))


def test_nothing_is_stored_without_receivers(ctx):
    with ctx.test_request_context():
        people = _people()
        fire(people["office"], report(people["reporter"]), "assign", target_unit="shilong")
    assert _count(OutboxEvent) == 0 and deliver_events() == {"delivered": 0, "retry": 0, "failed": 0}


def test_case_events_are_delivered_signed_once_and_retried_when_the_receiver_fails(sending, receiver):
    with sending.test_request_context():
        people = _people()
        case = fire(people["office"], report(people["reporter"]), "assign", target_unit="shilong")
        case_id = case.id
        kinds = [e.kind for e in db.session.scalars(db.select(OutboxEvent).order_by(OutboxEvent.id))]
        assert kinds == ["case.opened", "case.transition"]

        receiver.failures_left = 1  # the receiver is down for the first try
        first = deliver_events()
        assert first == {"delivered": 1, "retry": 1, "failed": 0}
        assert deliver_events() == {"delivered": 0, "retry": 0, "failed": 0}  # not due again yet
        waiting = db.session.scalar(db.select(OutboxDelivery).filter_by(state="pending"))
        assert waiting.attempts == 1 and waiting.last_status == 503 and waiting.last_error == "HTTP 503"
        with time_machine.travel(utcnow() + dt.timedelta(minutes=1, seconds=5), tick=False):
            assert deliver_events() == {"delivered": 1, "retry": 0, "failed": 0}
        assert deliver_events() == {"delivered": 0, "retry": 0, "failed": 0}

    assert receiver.bad_signatures == 0
    bodies = [r["body"] for r in receiver.received]
    assert sorted(b["event"]["type"] for b in bodies) == ["case.opened", "case.transition"]
    assert all(b["receiver"] == "szcg" and b["event"]["case"]["id"] == case_id for b in bodies)
    assert {r["delivery"] for r in receiver.received} == {str(b["delivery"]) for b in bodies}
    moved = next(b for b in bodies if b["event"]["type"] == "case.transition")
    assert moved["event"]["step"]["transition"] == "assign" and moved["event"]["case"]["unit"] == "shilong"
    assert moved["event"]["scheme"] == "lidu" and "reporter" not in json.dumps(moved)


def test_an_action_rolled_back_tells_nobody(sending):
    from server.workflow import service
    from tests.support.factories import formdata

    with sending.test_request_context():
        people = _people()
        case = report(people["reporter"])
        before = _count(OutboxEvent)
        nested = db.session.begin_nested()
        service.fire(people["office"], case.id, "assign", case.version,
                     formdata(_token=f"assign-{case.id}", target_unit="shilong"))
        db.session.flush()
        assert _count(OutboxEvent) == before + 1  # written with the step, in its transaction
        nested.rollback()
        assert _count(OutboxEvent) == before and _count(OutboxDelivery) == before


def test_given_up_deliveries_show_on_the_page_and_go_again(sending, receiver, client):
    with sending.test_request_context():
        people = _people()
        report(people["reporter"])
        receiver.failures_left = 10 ** 6
        moment = utcnow()
        for _attempt in range(engine.MAX_ATTEMPTS):
            with time_machine.travel(moment, tick=False):
                deliver_events()
            moment += engine.LONGEST_DELAY + dt.timedelta(seconds=1)
        failed = db.session.scalar(db.select(OutboxDelivery))
        assert failed.state == "failed" and failed.attempts == engine.MAX_ATTEMPTS
        from tests.support.factories import make_user

        make_user("root", admin=True)
    login(client, "root")
    page = client.get("/admin/events/").get_data(as_text=True)
    assert "szcg" in page and "HTTP 503" in page and 'data-testid="troubled"' in page
    from tests.conftest import csrf_token

    again = client.post("/admin/events/szcg/retry", data={"csrf_token": csrf_token(client, "/admin/events/")})
    assert again.status_code == 303
    receiver.failures_left = 0
    with sending.app_context():
        assert deliver_events()["delivered"] == 1
        assert db.session.scalar(db.select(OutboxDelivery)).state == "delivered"


def test_the_old_notification_webhook_gets_each_notification_once_with_its_token(app, receiver):
    app.config["FANGAN_NOTIFY_WEBHOOK_URL"] = receiver.url
    app.config["FANGAN_NOTIFY_WEBHOOK_TOKEN"] = SECRET
    try:
        with app.test_request_context():
            people = _people()
            case_id = fire(people["office"], report(people["reporter"]), "assign", target_unit="shilong").id
            db.session.execute(db.update(CaseDeadline).values(due_at=utcnow() - dt.timedelta(days=2)))
            db.session.commit()
            from server.workflow.escalation import tick

            assert tick()["applied"] >= 1
            db.session.commit()
            sent = deliver_events()
            assert sent["delivered"] >= 1 and deliver_events()["delivered"] == 0
    finally:
        app.config.pop("FANGAN_NOTIFY_WEBHOOK_URL")
        app.config.pop("FANGAN_NOTIFY_WEBHOOK_TOKEN")
    assert receiver.bad_signatures == 0 and len(receiver.received) == sent["delivered"]
    assert all(r["event"] == "notification.created" for r in receiver.received)
    assert all(r["body"]["event"]["notification"]["case_id"] == case_id for r in receiver.received)


@pytest.mark.postgresql
def test_two_hosts_delivering_at_once_send_each_delivery_once(backend, postgres_admin_url, tmp_path, receiver):
    from tests.support.postgres import create_database

    url = create_database(postgres_admin_url, "fangan_events")
    app = make_app(url, tmp_path, FANGAN_EVENT_RECEIVERS={"szcg": {"url": receiver.url, "secret": SECRET}})
    with app.test_request_context():
        people = _people()
        for i in range(15):
            fire(people["office"], report(people["reporter"], size=float(i % 5)), "assign", target_unit="shilong")
        total = _count(OutboxDelivery)
        db.session.remove()
    assert total == 30
    barrier = threading.Barrier(3)
    results: list[dict] = []

    def host() -> None:
        with app.app_context():
            barrier.wait(10)
            results.append(deliver_events())
            db.session.remove()

    threads = [threading.Thread(target=host) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sum(r["delivered"] for r in results) == total
    deliveries = [r["delivery"] for r in receiver.received]
    assert len(deliveries) == total == len(set(deliveries))  # each once, whichever host took it
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(OutboxDelivery)
                                 .where(OutboxDelivery.state == "delivered")) == total
        db.session.remove()
        db.engine.dispose()
