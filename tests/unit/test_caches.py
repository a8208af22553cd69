"""In-memory caches are keyed by content: a form class never goes to another form, a fingerprint is an HMAC."""

from __future__ import annotations

import hashlib
import hmac

from flask import Flask

from server.core.secrets import fingerprint
from server.forms.builder import form_class
from server.forms.engine import form_spec


def _definition(n: int) -> dict:
    return {"kind": "form", "id": f"form_{n}", "name": f"Form {n}",
            "fields": [{"id": f"field_{n}", "type": "text"}, {"id": "shared", "type": "integer"}]}


def _fields(cls: type) -> set[str]:
    return {name for name in vars(cls) if name == "shared" or name.startswith("field_")}


def test_thousands_of_forms_each_get_their_own_class():
    # Specs come and go as the spec cache evicts them (their ids are then reused by new specs); a form class
    # must still be the one built from the same content, every time.
    wrong = []
    for n in range(3000):
        cls = form_class(form_spec(_definition(n)))
        if _fields(cls) != {f"field_{n}", "shared"}:
            wrong.append(n)
        if n % 7 == 0:  # an older form asked again, interleaved with the evictions
            older = n // 2
            if _fields(form_class(form_spec(_definition(older)))) != {f"field_{older}", "shared"}:
                wrong.append(older)
    assert wrong == []


def test_equal_content_shares_one_class_and_different_content_never_does():
    first = _definition(1)
    same = dict(reversed(list(_definition(1).items())))  # key order is not content
    other = {**_definition(1), "fields": [{"id": "field_1", "type": "integer"}, {"id": "shared", "type": "integer"}]}
    assert form_spec(same) is form_spec(first)
    assert form_class(form_spec(same)) is form_class(form_spec(first))
    assert form_class(form_spec(other)) is not form_class(form_spec(first))
    assert form_spec(first).content_hash != form_spec(other).content_hash


def test_fingerprint_is_an_hmac_under_the_field_key():
    app = Flask(__name__)
    app.config.update(SECRET_KEY="the-secret-key", FANGAN_FIELD_KEY="the-field-key")
    with app.app_context():
        value = fingerprint("203.0.113.7")
        expected = hmac.new(b"the-field-key", b"203.0.113.7", hashlib.sha256).hexdigest()[:32]
        assert value == expected
        app.config["FANGAN_FIELD_KEY"] = None  # without a field key, the secret key is the key
        assert fingerprint("设备-1") == hmac.new(b"the-secret-key", "设备-1".encode(), hashlib.sha256).hexdigest()[:32]
        assert fingerprint("设备-1") != fingerprint("设备-2")


def test_a_name_index_finds_each_name_once_in_any_language():
    from server.org.service import NameIndex

    index = NameIndex([(1, {"zh": "石龙社区", "en": "Shilong"}), (2, "ABC"), (3, {"zh": "石龙老街"}), (4, ""),
                       (5, "xabcx abc"), (6, "a\x00b")])
    assert index.find("石龙") == [1, 3]
    assert index.find("abc") == [2, 5]            # case aside; a name matching twice is listed once
    assert index.find("shilong") == [1]           # its other language
    assert index.find("ngab") == []               # never across two names ("…shilong", "abc")
    assert index.find("a b") == [6]               # a separator in a name is a space
    assert index.find("") == [] and index.find("\x00") == [] and index.find("zzz") == []
    assert NameIndex([]).find("a") == []
