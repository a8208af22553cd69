"""Events out, the pure part: receivers read from the settings (and refused when they cannot work), bodies
signed with each receiver's secret, failed deliveries tried again later and later, then given up."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from server.events import engine

SECRET = "s3cret-of-sixteen+"


def test_receivers_are_read_and_filter_by_event_and_district():
    found = engine.receivers({"FANGAN_EVENT_RECEIVERS": {
        "szcg": {"url": "https://szcg.example.cn/in", "secret": SECRET, "events": ["case.*"], "schemes": ["lidu"]},
        "screen": {"url": "http://10.0.0.9/hook", "secret": SECRET, "events": ["case.escalation"]}}})
    assert set(found) == {"szcg", "screen"}
    assert found["szcg"].wants("case.opened", "lidu") and not found["szcg"].wants("case.opened", "other")
    assert not found["szcg"].wants("notification.created", "lidu")
    assert found["screen"].wants("case.escalation", "any") and not found["screen"].wants("case.transition", "any")
    as_json = engine.receivers({"FANGAN_EVENT_RECEIVERS": json.dumps({"a": {"url": "https://a.cn", "secret": SECRET}})})
    assert as_json["a"].events == ("case.*",)
    assert engine.receivers({}) == {}


def test_the_old_webhook_is_the_receiver_of_notifications():
    found = engine.receivers({"FANGAN_NOTIFY_WEBHOOK_URL": "https://sms.example.cn/send",
                              "FANGAN_NOTIFY_WEBHOOK_TOKEN": "gateway-token"})
    hook = found["webhook"]
    assert hook.events == ("notification.created",) and hook.token == "gateway-token" and hook.secret == "gateway-token"


@pytest.mark.parametrize(("setting", "words"), [
    ({"x": {"url": "ftp://x", "secret": SECRET}}, "x.url"),
    ({"x": {"url": "https://x.cn", "secret": "short"}}, "x.secret"),
    ({"x": {"url": "https://x.cn", "secret": SECRET, "retries": 3}}, "retries"),
    ({"x": {"url": "https://x.cn", "secret": SECRET, "events": ["cases.*"]}}, "match no event"),
    ({"x": {"url": "https://x.cn", "secret": SECRET, "events": []}}, "x.events"),
    ({"x": {"url": "https://x.cn", "secret": SECRET, "schemes": "lidu"}}, "x.schemes"),
    ({"Bad Name": {"url": "https://x.cn", "secret": SECRET}}, "name"),
    ("{not json", "not JSON"),
    (["a"], "object of receivers"),
])
def test_a_receiver_that_can_never_work_is_refused_with_its_reason(setting, words):
    with pytest.raises(ValueError, match="FANGAN_EVENT_RECEIVERS") as refused:
        engine.receivers({"FANGAN_EVENT_RECEIVERS": setting})
    assert words in str(refused.value)


def test_bodies_are_signed_with_the_receivers_secret():
    body = b'{"delivery": 1, "event": {"type": "case.opened"}}'
    signature = engine.sign(SECRET, body)
    assert signature.startswith("sha256=") and len(signature) == 7 + 64
    assert engine.verify(SECRET, body, signature)
    assert not engine.verify(SECRET + "x", body, signature) and not engine.verify(SECRET, body + b" ", signature)
    assert not engine.verify(SECRET, body, "")


def test_failed_deliveries_wait_longer_each_time_then_are_given_up():
    now = dt.datetime(2026, 11, 20, 2, 0, tzinfo=dt.UTC)
    waits = [engine.next_attempt(n, now) - now for n in range(1, engine.MAX_ATTEMPTS)]
    assert waits[:4] == [dt.timedelta(minutes=m) for m in (1, 2, 4, 8)]
    assert waits == sorted(waits) and max(waits) == engine.LONGEST_DELAY
    assert engine.next_attempt(engine.MAX_ATTEMPTS, now) is None
