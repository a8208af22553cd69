"""The pure rules of the public side: tracking codes, masks, anti-bot checks, Open311 and the follow-up."""

from __future__ import annotations

import hmac
import itertools

import pytest

from server.forms.engine import FieldSpec
from server.public import engine
from server.public.engine import (
    ALPHABET,
    CODE_LENGTH,
    DEFAULT_CLIENT_LIMIT,
    OPEN311_DATATYPES,
    BotCheck,
    bot_check,
    clean_code,
    client_of,
    followup_open,
    mask_name,
    mask_phone,
    new_code,
    open311_attributes,
    open311_clients,
    open311_status,
    public_text,
    satisfaction_rate,
    valid_phone,
)

# Valid codes worked out by hand. The check symbol is Luhn mod 32: from the right, every other value doubled
# (a doubled value of 32 or more counts its two base-32 digits: 2 × 31 = 62 → 1 + 30 = 31), then the symbol that
# brings the sum to a multiple of 32.
ZEROS = "0000000000"  # 0 → "0"
FIRST_ONE = "100000000Y"  # the 1 is 9th from the right, an odd place: doubled, 2 → 32 - 2 = 30 → "Y"
LAST_ONE = "000000001Y"  # the 1 is 1st from the right: doubled, 2 → 32 - 2 = 30 → "Y"
ALL_Z = "ZZZZZZZZZ9"  # five doubled (31 each) and four single (31 each): 279 ≡ 23 → 32 - 23 = 9 → "9"
REAL = "7K3M9QX2PJ"


# -- tracking codes -------------------------------------------------------------------------------------------

def test_the_alphabet_has_no_look_alike_letters():
    assert len(ALPHABET) == len(set(ALPHABET)) == 32
    assert not set("ILOU") & set(ALPHABET)
    assert CODE_LENGTH == 10


def test_new_code_ends_with_the_check_symbol_of_its_random_body(monkeypatch):
    symbols = iter("ZZZZZZZZZ")
    monkeypatch.setattr(engine.secrets, "choice", lambda alphabet: next(symbols))
    assert new_code() == ALL_Z


def test_new_codes_are_valid_and_different():
    codes = [new_code() for _ in range(1000)]
    assert all(len(c) == CODE_LENGTH and set(c) <= set(ALPHABET) and clean_code(c) == c for c in codes)
    assert len(set(codes)) == 1000  # 45 random bits: a repeat in 1000 would be a one in 70 million event
    assert len({c[0] for c in codes}) > 20  # every position is drawn from the whole alphabet


@pytest.mark.parametrize(("typed", "code"), [
    (ZEROS, ZEROS),
    (FIRST_ONE, FIRST_ONE),
    (LAST_ONE, LAST_ONE),
    (ALL_Z, ALL_Z),
    (REAL, REAL),
    ("7k3m9qx2pj", REAL),  # lower case
    ("7K3 M9Q-X2P J", REAL),  # grouped as printed
    ("\u30007K3M9QX2PJ\n", REAL),  # an ideographic space from a Chinese keyboard, a newline from a paste
    ("7K3M9QX2PJ" + "-" * 40, REAL),  # separators do not count towards the length
    ("OOOOOOOOOO", ZEROS),  # O for 0
    ("oooooooooo", ZEROS),
    ("I00000000Y", FIRST_ONE),  # I and L for 1
    ("l0000000oy", FIRST_ONE),
    ("L00000001I", None),  # the check symbol still has to match
])
def test_clean_code_forgives_how_a_code_is_typed(typed, code):
    assert clean_code(typed) == code


@pytest.mark.parametrize("typed", [
    None, "", "   ", "-",
    "7K3M9QX2PZ",  # wrong check symbol
    "7K3M9QX2P",  # too short
    "7K3M9QX2PJJ",  # too long
    "U000000000",  # U is not in the alphabet
    "7K3M9.QX2PJ",  # punctuation other than a dash
    "７K3M9QX2PJ",  # a full-width digit
    "7K3M9QX2PJ" * 1000,
])
def test_clean_code_refuses_what_is_no_code(typed):
    assert clean_code(typed) is None


def test_the_check_symbol_catches_any_swap_of_neighbours_in_the_body_but_0_and_z():
    missed = []
    for position in range(CODE_LENGTH - 2):
        for a, b in itertools.permutations(ALPHABET, 2):
            body = REAL[:position] + a + b + REAL[position + 2:CODE_LENGTH - 1]
            code = body + engine._check_symbol(body)
            assert clean_code(code) == code
            swapped = code[:position] + b + a + code[position + 2:]
            if clean_code(swapped) is not None:
                missed.append((a, b))
    assert set(missed) == {("0", "Z"), ("Z", "0")}  # Luhn mod N's one blind spot: 0 and N - 1


def test_the_check_symbol_catches_any_one_mistyped_symbol():
    # The sum changes by weight × (new − old), whatever the other symbols are: one base code covers every case.
    missed = [code for position in range(CODE_LENGTH) for symbol in ALPHABET if symbol != REAL[position]
              if clean_code(code := REAL[:position] + symbol + REAL[position + 1:]) is not None]
    assert missed == []


# -- masks and phone numbers ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("phone", "masked"), [
    (None, None),
    ("", None),
    ("13800138000", "138****8000"),
    ("138 0013-8000", "138****8000"),
    ("+86 138 0013 8000", "861******8000"),  # first three digits and last four, whatever they are
    ("010-12345678", "010****5678"),
    ("12345678", "123***78"),  # a short number shows two digits at the end, not four
    ("123456", "******"),  # too short to show any digit
    ("12345", "*****"),
    ("abc", ""),
])
def test_mask_phone(phone, masked):
    assert mask_phone(phone) == masked


@pytest.mark.parametrize("length", [5, 6, 7, 8, 11, 15])
def test_a_masked_phone_hides_digits_at_every_valid_length(length):
    digits = "".join(str(i % 10) for i in range(1, length + 1))
    masked = mask_phone(digits)
    assert valid_phone(digits)
    assert len(masked) == length and "*" in masked
    assert masked.strip("*") == "" or (masked[:3] == digits[:3] and masked.count("*") >= 2)


def test_a_seven_digit_phone_is_masked_too():
    assert valid_phone("1234567")
    assert "*" in mask_phone("1234567")


@pytest.mark.parametrize(("name", "masked"), [
    (None, None),
    ("", None),
    ("张", "张*"),
    ("张三", "张*"),
    ("李小龙", "李**"),
    ("欧阳娜娜", "欧***"),
    ("司马相如某某", "司***"),  # never more than three stars: the length tells nothing
    ("  王五 ", "王*"),
    ("Smith", "S***"),
])
def test_mask_name(name, masked):
    assert mask_name(name) == masked


@pytest.mark.parametrize("phone", [
    "13800138000", "+86 138 0013 8000", "010-12345678", "12345", "123456789012345", "+8613800138000",
])
def test_valid_phone(phone):
    assert valid_phone(phone) is True


@pytest.mark.parametrize("phone", [
    "", "1234", "1 2 3 4", "1234567890123456",  # 4 and 16 digits
    "-----", "abc", "138o0138000", "86+13800138000", "++8613800138000", "(010) 12345678", "138.0013.8000",
    "1-2-3-4-5-6-7-8-9-0-1",  # 21 characters
])
def test_invalid_phone(phone):
    assert valid_phone(phone) is False


# -- anti-bot checks ------------------------------------------------------------------------------------------

DAY = 24 * 3600


@pytest.mark.parametrize(("honeypot", "rendered_at", "now", "expected"), [
    (None, 1000.0, 1010.0, BotCheck(True)),
    ("", 1000.0, 1010.0, BotCheck(True)),
    ("http://spam.example", 1000.0, 1010.0, BotCheck(False, "honeypot")),
    ("x", None, 1000.5, BotCheck(False, "honeypot")),  # the honeypot is looked at first
    (None, None, 1010.0, BotCheck(False, "stale")),  # no (readable) stamp
    (None, 1000.0, 1002.9, BotCheck(False, "too_fast")),
    (None, 1000.0, 1003.0, BotCheck(True)),  # exactly the minimum is fine
    (None, 2000.0, 1000.0, BotCheck(False, "too_fast")),  # a stamp from the future
    (None, 1000.0, 1000.0 + DAY, BotCheck(True)),  # exactly a day is fine
    (None, 1000.0, 1000.5 + DAY, BotCheck(False, "stale")),
])
def test_bot_check(honeypot, rendered_at, now, expected):
    assert bot_check(honeypot, rendered_at, now, min_seconds=3) == expected


def test_bot_check_with_its_own_maximum():
    assert bot_check(None, 0.0, 61.0, 3, max_seconds=60) == BotCheck(False, "stale")
    assert bot_check(None, 0.0, 59.0, 3, max_seconds=60) == BotCheck(True)
    assert BotCheck(True).reason is None


# -- Open311 --------------------------------------------------------------------------------------------------

def zh(text):  # noqa: ANN001, ANN201 - a stand-in for the app's translation of a definition text
    return text.get("zh", "") if isinstance(text, dict) else (text or "")


@pytest.mark.parametrize(("field_type", "datatype"), sorted(OPEN311_DATATYPES.items()))
def test_each_offered_field_type_has_its_datatype(field_type, datatype):
    (attribute,) = open311_attributes([FieldSpec("f", field_type)], zh)
    assert attribute["datatype"] == datatype


def test_open311_datatypes():
    assert OPEN311_DATATYPES == {
        "text": "string", "textarea": "text", "integer": "number", "decimal": "number", "date": "datetime",
        "datetime": "datetime", "single_choice": "singlevaluelist", "multiple_choice": "multivaluelist"}


def test_open311_attributes():
    fields = [
        FieldSpec("photos", "photo", label={"zh": "照片"}),
        FieldSpec("plate", "text", label={"zh": "车牌"}, hint={"zh": "如 京A12345"}, required=True),
        FieldSpec("where", "location"),
        FieldSpec("size", "single_choice", label={"zh": "体量"}, choices=(("small", {"zh": "小"}), ("big", None))),
        FieldSpec("floors", "multiple_choice", choices=((1, {"zh": "一层"}), (2, {"zh": "二层"}))),
        FieldSpec("count", "integer", choices=((1, "one"),)),
        FieldSpec("ok", "boolean"),
    ]
    assert open311_attributes(fields, zh) == [
        {"variable": True, "code": "plate", "datatype": "string", "required": True,
         "datatype_description": "如 京A12345", "order": 1, "description": "车牌", "values": []},
        {"variable": True, "code": "size", "datatype": "singlevaluelist", "required": False,
         "datatype_description": None, "order": 2, "description": "体量",
         "values": [{"key": "small", "name": "小"}, {"key": "big", "name": "big"}]},
        {"variable": True, "code": "floors", "datatype": "multivaluelist", "required": False,
         "datatype_description": None, "order": 3, "description": "floors",  # no label: the id
         "values": [{"key": "1", "name": "一层"}, {"key": "2", "name": "二层"}]},
        {"variable": True, "code": "count", "datatype": "number", "required": False,
         "datatype_description": None, "order": 4, "description": "count", "values": []},  # no list, no values
    ]


def test_open311_attributes_of_a_form_with_nothing_to_offer():
    assert open311_attributes([], zh) == []
    assert open311_attributes([FieldSpec("p", "photo"), FieldSpec("r", "repeat")], zh) == []


@pytest.mark.parametrize(("kind", "status"), [("final", "closed"), ("open", "open"), ("waiting", "open")])
def test_open311_status(kind, status):
    assert open311_status(kind) == status


# -- the satisfaction follow-up -------------------------------------------------------------------------------

@pytest.mark.parametrize(("answers", "satisfied", "rate"), [
    ([], {"satisfied"}, None),
    (["satisfied", "basic", "unsatisfied", "satisfied"], {"satisfied", "basic"}, 0.75),
    (["satisfied", "unsatisfied", "unsatisfied"], {"satisfied"}, 1 / 3),
    (["unsatisfied"], {"satisfied"}, 0.0),
    (["satisfied"], set(), 0.0),
    (["satisfied", "satisfied"], {"satisfied"}, 1.0),
])
def test_satisfaction_rate(answers, satisfied, rate):
    assert satisfaction_rate(answers, satisfied) == rate


@pytest.mark.parametrize(("kind", "outcome", "days", "answered", "is_open"), [
    ("final", "resolved", 3.0, False, True),
    ("final", "resolved", 0.0, False, True),
    ("final", "resolved", 15.0, False, True),  # the last day of the window
    ("final", "resolved", 15.01, False, False),
    ("final", "resolved", 3.0, True, False),  # once only
    ("final", "rejected", 3.0, False, False),  # nothing was solved
    ("final", None, 3.0, False, False),
    ("open", "resolved", 3.0, False, False),
    ("final", "resolved", None, False, False),  # no closing time
])
def test_followup_open(kind, outcome, days, answered, is_open):
    assert followup_open(kind, outcome, days, 15, answered) is is_open


# -- public_text ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "text"), [
    (None, ""),
    (123, "123"),
    ("  路灯不亮  ", "路灯不亮"),
    ("\u3000路灯\u3000", "路灯"),
    ("a\x00b\x1bc\x08d", "abcd"),
    ("第一行\r\n第二行\t完", "第一行\n第二行\t完"),  # CR dropped, LF and tab kept
    ("\n\t  ", ""),
])
def test_public_text(value, text):
    assert public_text(value) == text


def test_public_text_is_bounded_after_trimming():
    assert public_text("x" * 2500) == "x" * 2000
    assert public_text("   abcdef", 3) == "abc"
    assert public_text("ab\x00\x00cd", 3) == "abc"  # control characters do not use up the limit


@pytest.mark.parametrize("control", ["\x7f", "\x85", "\x9b"], ids=["DEL", "NEL", "CSI"])
def test_public_text_removes_every_control_character(control):
    assert public_text(f"a{control}b") == "ab"


# -- Open311 clients ------------------------------------------------------------------------------------------

def test_open311_clients():
    clients = open311_clients({
        "screen-key": {"name": "大屏", "limit": "600 per minute"},
        " mini-key ": "小程序",
        "bare-key": {},
        "nameless-key": {"limit": "1/second"},
    })
    assert {key: (c.name, c.limit) for key, c in clients.items()} == {
        "screen-key": ("大屏", "600 per minute"),
        "mini-key": ("小程序", DEFAULT_CLIENT_LIMIT),  # the key is stripped
        "bare-key": ("client", DEFAULT_CLIENT_LIMIT),
        "nameless-key": ("client", "1/second"),
    }


def test_each_client_is_counted_under_a_digest_of_its_own_key():
    clients = open311_clients({"key-one": {}, "key-two": {}, " key-three ": "x"})
    counters = [c.counter for c in clients.values()]
    assert len(set(counters)) == 3  # two nameless clients never share a budget
    assert all(len(c) == 16 and set(c) <= set("0123456789abcdef") for c in counters)
    assert not any("key" in c for c in counters)  # the key itself is never the counter
    # the same key gives the same counter whatever its name, limit or surrounding spaces
    again = open311_clients({"key-one": {"name": "renamed", "limit": "1/second"}, "key-three": {}})
    assert again["key-one"].counter == clients["key-one"].counter
    assert again["key-three"].counter == clients["key-three"].counter


@pytest.mark.parametrize("keys", [None, {}])
def test_no_keys_no_clients(keys):
    assert open311_clients(keys) == {}


def test_a_client_without_a_limit_of_its_own_has_the_default():
    clients = open311_clients({"a": "A", "b": {"name": "B", "limit": "9 per hour"}, "c": {"name": "C", "limit": ""}},
                              default_limit="3 per minute")
    assert [c.limit for c in clients.values()] == ["3 per minute", "9 per hour", "3 per minute"]
    assert open311_clients({"a": "A"}, default_limit="")["a"].limit == DEFAULT_CLIENT_LIMIT


@pytest.mark.parametrize(("keys", "message"), [
    ({"": "x"}, "non-empty string"),
    ({"   ": "x"}, "non-empty string"),
    ({5: "x"}, r"found 5\)"),
    ({"k": {"name": "x", "rate": "1/second"}}, r"found \['rate'\]"),
    ({"k": {"name": "x", "limit": "lots"}}, "client 'x' has a limit that cannot be read: 'lots'"),
    ({"k": {"name": "x", "limit": "5"}}, "cannot be read"),
    ({"k": {"name": "x", "limit": "1 per fortnight"}}, "cannot be read"),
])
def test_open311_clients_refuses_what_it_cannot_read(keys, message):
    with pytest.raises(ValueError, match=message):
        open311_clients(keys)


def test_a_default_limit_that_cannot_be_read_is_refused_too():
    with pytest.raises(ValueError, match="cannot be read: 'often'"):
        open311_clients({"k": "x"}, default_limit="often")


CLIENTS = open311_clients({"alpha-key": "alpha", "beta-key": "beta"})


@pytest.mark.parametrize(("given", "name"), [
    ("alpha-key", "alpha"),
    ("beta-key", "beta"),
    (" beta-key\n", "beta"),
    ("alpha", None),  # a prefix is not the key
    ("alpha-key-2", None),
    ("ALPHA-KEY", None),
    ("钥匙", None),
    ("", None),
    ("  ", None),
    (None, None),
])
def test_client_of(given, name):
    found = client_of(CLIENTS, given)
    assert (found.name if found else None) == name


def test_client_of_no_clients():
    assert client_of({}, "alpha-key") is None


def test_client_of_compares_with_every_key_even_after_a_match(monkeypatch):
    compared = []

    def compare_digest(a: bytes, b: bytes) -> bool:
        compared.append(a)
        return a == b

    monkeypatch.setattr(hmac, "compare_digest", compare_digest)
    assert client_of(CLIENTS, "alpha-key") == CLIENTS["alpha-key"]
    assert compared == [b"alpha-key", b"beta-key"]


def test_codes_issued_under_the_earlier_check_symbol_are_still_looked_up():
    """Codes handed out before the Luhn check keep working: their check symbol was ALPHABET[Σ (i + 1) × v_i
    mod 32] (here 7K3M9QX2PY), and a lookup honours it; the strict check is for new codes."""
    from server.public.engine import code_to_look_up

    assert clean_code("7K3M9QX2PY") is None
    assert code_to_look_up("7k3m9qx2py") == "7K3M9QX2PY"
    assert code_to_look_up(REAL) == REAL
    assert code_to_look_up("7K3M9QX2PZ") is None  # neither check symbol
    assert code_to_look_up("too short") is None
