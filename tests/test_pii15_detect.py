"""Content detection of undeclared personal data (svc_common.protection._detect): each detector, its accepted forms,
and the numbers it must leave alone (order ids, timestamps, hex digests, codes), checked by checksum and date."""

from __future__ import annotations

import random
import uuid

import pytest

from svc_common.pb.qiming.common.v1 import event_pb2
from svc_common.protection import find_personal_data, mask_personal_data, may_hold_personal_data
from svc_common.protection._detect import luhn_ok, valid_card_number, valid_id_number

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def id_number(first17: str) -> str:
    """``first17`` with its GB 11643-1999 check character."""
    return first17 + "10X98765432"[sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True)) % 11]


def card_number(prefix: str, length: int) -> str:
    """A number of ``length`` digits starting with ``prefix`` whose last digit makes the Luhn check pass."""
    body = prefix + "3" * (length - len(prefix) - 1)
    return next(body + d for d in "0123456789" if luhn_ok(body + d))


ID = id_number("11010519491231002")  # ends in X
ID_DIGIT = id_number("44030619850817123")
UNIONPAY = card_number("622202", 19)
VISA = card_number("411111", 16)


def kinds(text: str) -> list[str]:
    return [f.kind for f in find_personal_data(text)]


def test_the_helpers_make_valid_numbers() -> None:
    assert ID.endswith("X") and valid_id_number(ID) and valid_id_number(ID.lower())
    assert valid_id_number(ID_DIGIT)
    assert valid_card_number(UNIONPAY) and valid_card_number(VISA)


@pytest.mark.parametrize(
    "text",
    [
        "13812345678",
        "call me on 13812345678 tonight",
        "手机13912345678，谢谢",
        "+86 138 1234 5678",
        "+86-13812345678",
        "8613812345678",
        "0086 13812345678",
        "138-1234-5678",
        "138 1234 5678",
        "https://m.example.com/bind?mobile=19912345678&from=app",
        "https://m.example.com/bind?mobile=%2B8617712345678",
        "the number is 15012345678.",
    ],
)
def test_mobile_numbers_are_found(text: str) -> None:
    assert kinds(text) == ["mobile"]


@pytest.mark.parametrize("text", [ID, ID.lower(), ID_DIGIT, f"证件号 {ID}", f"id={ID_DIGIT}&x=1"])
def test_identity_numbers_with_a_valid_check_and_date_are_found(text: str) -> None:
    assert kinds(text) == ["id_number"]


@pytest.mark.parametrize(
    "text",
    [
        UNIONPAY,
        VISA,
        " ".join(UNIONPAY[i : i + 4] for i in range(0, 19, 4)),
        "-".join(VISA[i : i + 4] for i in range(0, 16, 4)),
        f"卡号{card_number('6228', 16)}",
        card_number("5500", 16),
        card_number("37", 15),
        card_number("4000", 13),
    ],
)
def test_bank_card_numbers_with_a_valid_luhn_digit_are_found(text: str) -> None:
    assert kinds(text) == ["bank_card"]


@pytest.mark.parametrize("text", ["mail zhang.san+fund@example.com.cn please", "a_b@sub.mail-host.org"])
def test_email_addresses_are_found(text: str) -> None:
    assert kinds(text) == ["email"]


def test_several_values_in_one_string_are_found_in_order_and_masked() -> None:
    text = f"tel 13812345678, id {ID}, card {VISA}, mail a@b.cn"
    assert kinds(text) == ["mobile", "id_number", "bank_card", "email"]
    masked = mask_personal_data(text, find_personal_data(text))
    assert masked == f"tel ****5678, id ****{ID[-4:]}, card ****{VISA[-4:]}, mail ****@b.cn"
    assert find_personal_data(masked) == []


def test_a_gansu_identity_number_is_an_identity_number_not_a_card() -> None:
    gansu = id_number("62010219900307001")  # 62 is also UnionPay's prefix, and 18 digits a UnionPay length
    assert kinds(gansu) == ["id_number"]


@pytest.mark.parametrize(
    "text",
    [
        "1765012345678",  # epoch milliseconds
        "1765012345678123",  # epoch microseconds
        "1765012345678123456",  # epoch nanoseconds
        "1765012345",  # epoch seconds
        "20261206141000123",  # a date-led order number
        "20261206000000012345",
        "ORD13812345678",  # a mobile-shaped run glued to letters: an order id
        "13812345678901",  # 14 digits: not a mobile number
        "013812345678",  # 12 digits
        "12812345678",  # 12x is no mobile segment
        "0.13812345678",  # a decimal
        "3.1415926535897",
        "600519",  # a stock code
        "110105194912310021",  # an identity number with a wrong check digit
        id_number("11010519491331002"),  # month 13
        id_number("11010520991231002"),  # born in the future
        id_number("99010519491231002"),  # no such province
        VISA[:-1] + str((int(VISA[-1]) + 1) % 10),  # a card number failing Luhn
        card_number("1234", 16),  # no card scheme starts with 1
        card_number("86", 15),  # an IMEI (15 digits, Luhn) of a phone
        card_number("35", 15),
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",  # a hex digest
        str(uuid.UUID("12345678-1234-4234-9234-123456789012")),
        "2026-12-06 14:10:00",
        "10.1.2.3",
        "user@localhost",  # no domain
        "@13812345678x",
    ],
)
def test_ids_timestamps_and_codes_are_not_personal_data(text: str) -> None:
    assert find_personal_data(text) == []


def test_random_timestamps_and_snowflake_ids_are_never_caught() -> None:
    rng = random.Random(15)
    for _ in range(20_000):
        ms = rng.randrange(1_500_000_000_000, 1_900_000_000_000)
        snowflake = (ms - 1_288_834_974_657) << 22 | rng.randrange(1 << 22)
        for text in (str(ms), str(ms * 1000 + rng.randrange(1000)), str(snowflake), f"{rng.getrandbits(128):032x}"):
            assert find_personal_data(text) == [], text


def test_long_adversarial_strings_are_searched_in_linear_time() -> None:
    import time

    text = ("a" * 60 + "@") * 130 + "1" * 500 + "-" * 200
    started = time.process_time()
    find_personal_data(text[:8192])
    assert time.process_time() - started < 1.0  # quadratic would take minutes


def _encoded(**fields: str) -> bytes:
    event = event_pb2.Event(event_id=str(uuid.uuid4()), event_type="page_view", user_id="C00012345")
    for name, value in fields.items():
        event.properties[name].string_value = value
    return event.SerializeToString()


@pytest.mark.parametrize(
    "value",
    [
        "13812345678",
        "138 1234 5678",
        "+86-138-1234-5678",
        ID,
        UNIONPAY,
        " ".join(VISA[i : i + 4] for i in (0, 4, 8, 12)),
    ],
)
def test_the_event_level_pre_filter_lets_every_detected_form_through(value: str) -> None:
    assert may_hold_personal_data(_encoded(note=f"x {value} y"))
    assert may_hold_personal_data(_encoded(note="a@example.com"))


def test_the_pre_filter_passes_ordinary_events_and_ignores_the_event_id() -> None:
    assert not may_hold_personal_data(_encoded(stock_code="600519", element="buy_button", page="/fund/000001"))
    digits_id = event_pb2.Event(event_id="12345678-1234-4234-9234-123456789012", event_type="x").SerializeToString()
    assert not may_hold_personal_data(digits_id)


def test_a_value_that_looks_like_an_event_id_header_is_searched_whole() -> None:
    assert kinds("\n$" + "x" * 40 + " 13812345678") == ["mobile"]


def test_long_numeric_ids_do_not_send_events_to_the_value_search() -> None:
    from svc_collect.protect import may_hold_beside_ids
    from svc_common.pb.qiming.common.v1 import types_pb2

    event = event_pb2.Event(event_id=str(uuid.uuid4()), event_type="trade", user_id="310012345678")
    event.identities.add(type=types_pb2.ID_TYPE_FUND_ACCOUNT, value="880012345678")
    event.properties["note"].string_value = "hello"
    data = event.SerializeToString()
    assert may_hold_personal_data(data) and not may_hold_beside_ids(event, data)
    event.properties["note"].string_value = "call 13812345678"
    assert may_hold_beside_ids(event, event.SerializeToString())
