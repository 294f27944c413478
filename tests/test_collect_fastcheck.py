"""The event check in C (svc_collect/_fastcheck.c) answers exactly as the Python check, on every event it answers.

It accepts only what it can vouch for and hands everything else to the Python check, so the collector's answers
must be those of the Python check alone: compared here on generated events of every kind the check looks at (ids,
times, channels, identities, context, each value kind, schemas with types, allowed values, lengths, required and
unknown properties, policies), on their byte-level mutations, and through a whole service.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import math
import os
import random
import subprocess
import sys
import sysconfig
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest
from collect_helpers import collect_settings, make_event, running_service
from google.protobuf.descriptor import FieldDescriptor

from svc_collect import protect, validation
from svc_collect import service as service_module
from svc_collect.config import CollectSettings
from svc_collect.output_only import OUTPUT_ONLY_FIELDS
from svc_collect.validation import EventValidator, Rejection, compile_schema
from svc_common.config import load_settings
from svc_common.pb.qiming.collect.v1 import collect_pb2
from svc_common.pb.qiming.common.v1 import errors_pb2, event_pb2, types_pb2
from svc_common.protection import JsonKeyProvider, SystemEventSigner, generate_keyring, may_hold_personal_data

NOW_US = 1_790_000_000_000_000
KEYS = JsonKeyProvider(generate_keyring().to_json())

needs_native = pytest.mark.skipif(
    not validation.NATIVE_AVAILABLE and os.environ.get("CI") != "true",
    reason="this install has no C extension (a pure-Python build); under CI it must have one",
)


def _schemas() -> dict[str, Any]:
    def spec(name: str, type_: int, **kw: Any) -> collect_pb2.PropertySpec:
        return collect_pb2.PropertySpec(name=name, type=type_, **kw)

    s = types_pb2
    order = collect_pb2.EventSchema(
        event_type="order_placed",
        version=3,
        properties=[
            spec("side", s.VALUE_TYPE_STRING, required=True, allowed_values=[s.Value(string_value=v) for v in "BS"]),
            spec("qty", s.VALUE_TYPE_INT, allowed_values=[s.Value(int_value=v) for v in (100, 200, 1)]),
            spec("price", s.VALUE_TYPE_DOUBLE),
            spec("ok", s.VALUE_TYPE_BOOL, allowed_values=[s.Value(bool_value=True)]),
            spec("note", s.VALUE_TYPE_STRING, max_length=5),
            spec("at", s.VALUE_TYPE_TIMESTAMP),
            spec("tags", s.VALUE_TYPE_STRING_LIST),
            spec("amount", s.VALUE_TYPE_MONEY_FEN, sensitivity=s.SENSITIVITY_LEVEL_3),
        ],
    )
    strict = collect_pb2.EventSchema(
        event_type="strict_view",
        version=1,
        reject_unknown_properties=True,
        properties=[spec("screen", s.VALUE_TYPE_STRING), spec("n", s.VALUE_TYPE_INT)],
    )
    return {schema.event_type: compile_schema(schema, 256) for schema in (order, strict)}


SCHEMAS = _schemas()
TYPES = ["page_view", "order_placed", "strict_view", "fund_view", "$identify", "$segment_entered", "Bad Type", ""]
NAMES = ["side", "qty", "price", "ok", "note", "at", "tags", "amount", "screen", "n", "x", "bad name", "$sig", "ü"]
TEXTS = ["", "B", "S", "hello", "a" * 40, "中文字符", "tab\there", "nul\x00", "\u200bzw", "x" * 300, "'; DROP TABLE"]


def _settings(**overrides: Any) -> CollectSettings:
    values: dict[str, Any] = {"max_string_chars": 64, "max_event_bytes": 1024, "max_properties_per_event": 6}
    return load_settings(CollectSettings, **{**values, **overrides})


def _validators(**overrides: Any) -> tuple[EventValidator, EventValidator]:
    native = EventValidator(_settings(**overrides), SCHEMAS.get, SystemEventSigner(KEYS))
    python = EventValidator(_settings(native_checks=False, **overrides), SCHEMAS.get, SystemEventSigner(KEYS))
    assert native.native and not python.native
    return native, python


GOOD_TEXTS = ["B", "S", "hello", "中文字符", "'; DROP TABLE x", "a" * 40]


def _random_value(rng: random.Random, value: types_pb2.Value, odd: bool) -> None:
    """A value of any kind; ``odd``: also the values a check refuses (NaN, bad times, long text, no kind)."""
    kind = rng.randrange(9 if odd else 7)
    texts = TEXTS if odd else GOOD_TEXTS
    if kind == 0:
        value.string_value = rng.choice(texts)
    elif kind == 1:
        value.int_value = rng.choice((0, 1, 100, 200, -5, 2**62))
    elif kind == 2:
        value.double_value = rng.choice((0.0, 1.5, -2.25, 1e308) + ((math.nan, math.inf, -math.inf) if odd else ()))
    elif kind == 3:
        value.bool_value = rng.random() < 0.5
    elif kind == 4:
        bad_seconds = (-62_135_596_801, 253_402_300_800) if odd else ()
        value.timestamp_value.seconds = rng.choice((0, 1_700_000_000, *bad_seconds))
        value.timestamp_value.nanos = rng.choice((0, 5, 999_999_999) + ((1_000_000_000, -1) if odd else ()))
    elif kind == 5:
        value.string_list_value.values.extend(rng.choice(texts) for _ in range(rng.choice((0, 1, 3))))
    elif kind == 6:
        value.money_fen_value = rng.choice((0, 12_345, -1))
    elif kind == 7:
        value.string_value = rng.choice(("B", "S", "note", "toolong"))
    # kind 8: an empty Value (no kind)


def random_event(rng: random.Random) -> event_pb2.Event:
    """An event that is often acceptable, each thing the check looks at sometimes changed into what it refuses or
    cannot vouch for (~40 % of the events are left as made)."""

    def odd(chance: float = 0.06) -> bool:
        return rng.random() < chance

    event = event_pb2.Event(
        event_id=str(uuid.UUID(int=rng.getrandbits(128))),
        event_type=rng.choice(TYPES) if odd() else rng.choice(TYPES[:4]),
        user_id=rng.choice(("a" * 129, "c\u00e9", "c\x00", "c\u202e1", ""))
        if odd()
        else rng.choice(("C01", "c-2", "a" * 128)),
        anonymous_id=rng.choice(("dev 02", "\u00a0d", "d\x00")) if odd() else rng.choice(("", "dev-01")),
        session_id=rng.choice(("s" * 129, "s\x00", "会话" * 65)) if odd() else rng.choice(("", "s-1", "会话" * 64)),
        channel=rng.choice((0, 14, 99)) if odd() else rng.choice((1, 2, 9, 13)),
    )
    if not event.user_id and not event.anonymous_id and not odd(0.3):
        event.user_id = "C02"
    if odd(0.08):
        event.event_id = event.event_id.upper()
    if odd(0.03):
        event.event_id = rng.choice(("", "not-a-uuid", event.event_id[:35] + "g", event.event_id.replace("-", "")))
    if odd(0.05):
        if rng.random() < 0.5:
            event.occurred_at.seconds, event.occurred_at.nanos = rng.choice(((0, 0), (0, -1), (253_402_300_800, 0)))
    else:
        shift = rng.choice((-(10**6) * 86_400 * 40, 10**6 * 600)) if odd() else rng.choice((0, -1, 1, -(10**9)))
        event.occurred_at.FromMicroseconds(NOW_US + shift)
    if rng.random() < 0.2:
        bad = odd(0.2)
        identity = event.identities.add(type=rng.choice((0, 8, 40)) if bad else rng.choice((2, 3, 5)))
        identity.value = rng.choice(("", "x" * 129, "w\u200b", "微信")) if odd(0.2) else rng.choice(("F123", "ok"))
    if rng.random() < 0.5:
        event.context.screen = rng.choice(TEXTS) if odd() else rng.choice(GOOD_TEXTS)
        if rng.random() < 0.3:
            event.context.ip = "10.0.0.1"
    for _ in range(rng.choice((0, 1, 2, 3, 4, 7) if odd(0.2) else (0, 1, 2, 3))):
        name = rng.choice(NAMES) if odd(0.1) else rng.choice(NAMES[:11])
        _random_value(rng, event.properties[name], odd(0.1))
    if odd(0.04):  # more properties than allowed (6 in these tests), each one acceptable
        for name in NAMES[:11]:
            event.properties[name].int_value = 1
    if odd(0.04):  # larger than max_event_bytes (1,024 in these tests), each string short enough
        event.properties[rng.choice(NAMES[:11])].string_list_value.values.extend(["a" * 40] * 30)
    if event.event_type == "order_placed" and not odd(0.2):
        event.properties["side"].string_value = rng.choice("BS")
    return event


def _same(native: Any, python: Any) -> bool:
    if isinstance(native, Rejection) or isinstance(python, Rejection):
        return native == python
    return native == python  # the property names too, sorted by both (protection's order depends on them)


def _compare(events: list[event_pb2.Event], native: EventValidator, python: EventValidator) -> tuple[int, int]:
    """Both checks over copies of each event, twice (the second pass meets names and types found valid): the same
    verdicts and the same events afterwards. Returns, of the second pass, how many events the C check answered
    itself and how many the Python check accepted."""
    answered = accepted = 0
    for round_ in range(2):
        for event in events:
            a, b = event_pb2.Event(), event_pb2.Event()
            a.CopyFrom(event)
            b.CopyFrom(event)
            if round_ == 1 and native._native is not None:
                answered += bool(native._native(a.SerializeToString(deterministic=True), NOW_US))
            verdict, expected = native.check(a, NOW_US), python.check(b, NOW_US)
            assert _same(verdict, expected), (event, verdict, expected)
            assert a.SerializeToString(deterministic=True) == b.SerializeToString(deterministic=True)
            accepted += round_ == 1 and not isinstance(expected, Rejection)
    return answered, accepted


@needs_native
@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"unknown_event_type_policy": "quarantine", "out_of_range_time_policy": "quarantine"},
        {"max_string_chars": 4096, "max_event_bytes": 65_536, "max_properties_per_event": 256},
    ],
    ids=["flag-accept", "quarantine", "large-limits"],
)
def test_the_c_check_answers_as_the_python_check_on_generated_events(overrides: dict[str, Any]) -> None:
    native, python = _validators(**overrides)
    rng = random.Random(20261207)
    events = [random_event(rng) for _ in range(4000)]
    answered, accepted = _compare(events, native, python)
    # Not vacuous: the C check vouched for most acceptable events (it leaves Unicode ids and system types).
    assert accepted > 300 and answered > 0.8 * accepted, (answered, accepted)


@needs_native
def test_the_c_check_answers_as_the_python_check_on_mutated_encodings() -> None:
    """Bytes of valid encodings changed at random: whatever upb still parses, both checks answer alike."""
    native, python = _validators()
    rng = random.Random(7)
    base = [random_event(rng) for _ in range(300)]
    mutated: list[event_pb2.Event] = []
    while len(mutated) < 3000:
        data = bytearray(rng.choice(base).SerializeToString(deterministic=True))
        for _ in range(rng.choice((1, 1, 2, 3))):
            at = rng.randrange(len(data))
            if rng.random() < 0.7:
                data[at] = rng.randrange(256)
            else:
                data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 4)))
        try:
            mutated.append(event_pb2.Event.FromString(bytes(data)))
        except Exception:  # not an Event any more: the gRPC layer refuses it before any check
            continue
    _compare(mutated, native, python)


@needs_native
def test_the_c_check_vouches_for_the_usual_events_and_leaves_the_rest() -> None:
    """What it answers itself: ids in upper case (after lowering them), values of every kind; what it leaves to the
    Python check: names and types not yet found valid, signed system types, non-ASCII ids, unknown fields."""
    native, _ = _validators()
    checker = native._native
    assert checker is not None

    def encoded(event: event_pb2.Event) -> bytes:
        return event.SerializeToString(deterministic=True)

    event = make_event("order_placed", side="B", qty=100, price=1.5, note="abc", ok=True)
    event.occurred_at.FromMicroseconds(NOW_US)
    assert checker(encoded(event), NOW_US) is None  # its type and names are new: the Python check first
    assert not isinstance(native.check(event, NOW_US), Rejection)
    verdict = checker(encoded(event), NOW_US)
    assert verdict[0] == 0 and verdict[1] == encoded(event) and verdict[2] == NOW_US
    assert verdict[3] is SCHEMAS["order_placed"] and verdict[4] == sorted(event.properties)  # Python's order
    assert verdict[5:] == (False, event.event_id, "order_placed", "c1", "")

    upper = event_pb2.Event()
    upper.CopyFrom(event)
    upper.event_id = event.event_id.upper()
    assert checker(encoded(upper), NOW_US) is False  # lower it, encode again, ask again
    assert native.check(upper, NOW_US)[6] == event.event_id and upper.event_id == event.event_id

    unknown = event_pb2.Event.FromString(encoded(event) + b"\xa0\x06\x01")  # field 100, a varint: kept by upb
    assert checker(encoded(unknown), NOW_US) is None  # refused by the Python check (test_collect_unknown_fields.py)
    assert native.check(unknown, NOW_US).reason == errors_pb2.ERROR_REASON_UNKNOWN_FIELD

    for change in (
        lambda e: setattr(e, "user_id", "c\u00e9"),  # Unicode decides what is printable
        lambda e: setattr(e, "event_type", "$identify"),  # signed: its signature is checked in Python
        lambda e: e.properties["side"].ClearField("string_value"),  # an empty value: a rejection to word
        lambda e: setattr(e.properties["side"], "string_value", "X"),  # not allowed
        lambda e: setattr(e.properties["note"], "string_value", "toolong"),  # over max_length 5
        lambda e: e.properties.pop("side"),  # required
        lambda e: setattr(e, "channel", 99),
    ):
        changed = event_pb2.Event()
        changed.CopyFrom(event)
        change(changed)
        assert checker(encoded(changed), NOW_US) is None, changed


@needs_native
def test_the_first_look_for_personal_data_in_c_answers_as_the_python_one() -> None:
    """``may_hold_personal_data`` in one pass in C: the same answer as the translate-and-search of
    svc_common.protection on bytes rich in digits, spaces, dashes, "@" and dots, with and without an event id."""
    from svc_collect import _fastcheck

    rng = random.Random(11)
    alphabet = b"0123456789 -@.aZ_\n$\x00\xff"
    found = 0
    for _ in range(40_000):
        size = rng.choice((0, 1, 2, 5, 13, 20, 40, 80, 200))
        digits = rng.random()
        data = bytes(rng.choice(alphabet[:12]) if rng.random() < digits else rng.choice(alphabet) for _ in range(size))
        if rng.random() < 0.3:
            data = b"\n$" + data  # an event id's field first: its 36 bytes are not searched for digits
        if rng.random() < 0.2:
            at = rng.randrange(len(data) + 1)
            label = bytes(rng.choice(b"abc-9") for _ in range(rng.choice((1, 5, 62, 63, 64, 65))))
            data = data[:at] + b"@" + label + rng.choice((b".a", b".", b".9", b"a", b"")) + data[at:]
        expected = may_hold_personal_data(data)
        assert _fastcheck.may_hold_personal_data(data) is expected, data
        found += expected
    assert 2_000 < found < 38_000, found


def test_an_install_without_the_extension_checks_every_event_in_python_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A pure-Python install (no C compiler where the wheel was built): the same service, every event checked in
    Python, protection's first look in Python, and the start's log line says why."""
    monkeypatch.setattr(validation, "_fastcheck", None)
    monkeypatch.setattr(validation, "NATIVE_AVAILABLE", False)
    monkeypatch.setattr(protect, "fastcheck", None)
    monkeypatch.setattr(service_module, "NATIVE_AVAILABLE", False)

    async def scenario() -> None:
        with caplog.at_level(logging.INFO, logger="qiming.collect"):
            async with running_service(collect_settings(tmp_path)) as (service, _):
                assert not service._validator.native
                assert service._protector._may_hold is may_hold_personal_data
                outcomes = await service.ingest([make_event(), make_event(user_id="")])
                assert [o.status for o in outcomes] == [1, 3]  # accepted; rejected (no user_id, no anonymous_id)
        assert "events are checked in Python: this install has no C extension" in caplog.text

    asyncio.run(scenario())


@needs_native
def test_what_the_c_check_assumes_is_what_the_python_check_and_the_protos_say() -> None:
    """The limits and the protos' layout the C file hard-codes: a change on the Python side or in a proto fails
    here, not silently in what the C check accepts."""
    from svc_collect import _fastcheck as c

    assert (c.MAX_ID_CHARS, c.MAX_LIST_ITEMS) == (validation.MAX_ID_CHARS, validation.MAX_LIST_ITEMS)
    assert (c.MIN_SECONDS, c.MAX_SECONDS) == (validation._MIN_SECONDS, validation._MAX_SECONDS)
    assert set(c.ALWAYS_CHECKED) == validation._KINDS_TO_CHECK and c.TIME_LIMIT_US == validation._TIME_LIMIT_US
    assert (c.FLAG_OCCURRED_IN_FUTURE, c.FLAG_OCCURRED_TOO_OLD) == (
        validation.FLAG_OCCURRED_IN_FUTURE,
        validation.FLAG_OCCURRED_TOO_OLD,
    )
    string, enum, message = (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_ENUM, FieldDescriptor.TYPE_MESSAGE)
    layout = {f.number: (f.name, f.type, f.is_repeated) for f in event_pb2.Event.DESCRIPTOR.fields}
    assert max(layout) == c.LAST_EVENT_FIELD
    assert {n: t for n, (_, t, _) in layout.items()} == {
        1: string, 2: string, 3: message, 4: message, 5: string, 6: string, 7: message, 8: string, 9: enum,
        10: message, 11: message, 12: string, 13: string, 14: string, 15: string,
    }  # fmt: skip
    assert {n for n, (name, _, _) in layout.items() if name in OUTPUT_ONLY_FIELDS} == {4, 12, 13, 14, 15}
    assert event_pb2.Event.DESCRIPTOR.fields_by_number[10].message_type.GetOptions().map_entry
    context = event_pb2.EventContext.DESCRIPTOR.fields
    assert [f.number for f in context] == list(range(1, c.LAST_CONTEXT_FIELD + 1))
    assert {f.type for f in context} == {string} and not any(f.is_repeated for f in context)
    identity = {f.number: f.type for f in types_pb2.Identity.DESCRIPTOR.fields}
    assert identity == {1: enum, 2: string}
    kinds = types_pb2.Value.DESCRIPTOR.oneofs_by_name["kind"].fields
    assert tuple(f.name for f in sorted(kinds, key=lambda f: f.number)) == c.VALUE_KINDS
    assert [f.number for f in sorted(kinds, key=lambda f: f.number)] == list(range(1, 8))
    assert len(types_pb2.Value.DESCRIPTOR.fields) == 7
    assert {f.number: f.type for f in types_pb2.StringList.DESCRIPTOR.fields} == {1: string}


@needs_native
def test_the_c_check_stays_safe_at_the_edges_of_its_numbers_and_of_its_own_set_up() -> None:
    """Windows longer than any clock, a time no clock gives, and a checker whose set-up failed."""
    event = make_event("page_view")
    events = [event, make_event("page_view", occurred_at_us=-62_135_596_800_000_000)]  # in year 1
    events.append(make_event("page_view", occurred_at_us=253_402_300_799_000_000))  # in year 9999
    edges = (NOW_US, 2**61, -(2**61), 2**61 + 1, 2**62, -(2**62), 2**62 + 1, -(2**62) - 1, 2**63, -(2**63), 10**30)
    for windows in ({"max_event_age_seconds": 10**13, "max_future_skew_seconds": 10**14}, {}):
        native, python = _validators(**windows)
        python.check(_copy(event), NOW_US)  # the type is known to the C check from here on
        native.check(_copy(event), NOW_US)
        for now_us, edge in ((n, e) for n in edges for e in events):
            expected = python.check(_copy(edge), now_us)
            assert _same(native.check(_copy(edge), now_us), expected), (windows, now_us, edge)
    from svc_collect import _fastcheck

    half = _fastcheck.Checker.__new__(_fastcheck.Checker)
    with pytest.raises(TypeError):
        half.__init__(
            max_chars=1, max_bytes=1, max_props=1, future_us=1, age_us=1, quarantine_out_of_range=False,
            quarantine_unknown=False, good_types=[], good_names=set(), channels=set(), id_types=set(),
            signed_types=set(), schema_for=print,
        )  # fmt: skip
    with pytest.raises(RuntimeError, match="not initialized"):
        half.check(event.SerializeToString(deterministic=True), NOW_US)


@pytest.mark.parametrize("undeclared_pii", ["seal", "reject"])
def test_a_service_checks_events_alike_with_and_without_the_c_check(tmp_path: Path, undeclared_pii: str) -> None:
    """``native_checks = false`` switches the C check off (for comparison): the same outcomes (reason, field and
    message of each rejection), and the same events in the log (level 3+ values sealed, personal data found in free
    text sealed and flagged, ``masked_fields`` in the same order) but for the sealed blobs' own nonces."""
    rng = random.Random(3)
    events = [random_event(rng) for _ in range(400)]
    pii = ["call 13812345678 today", "mail zhang.san@example.cn", "card 6222 0212 3456 7890 123"]
    for event in events:
        if event.HasField("occurred_at"):
            event.occurred_at.GetCurrentTime()
        if rng.random() < 0.15:
            event.properties["remark"].string_value = rng.choice(pii)
        if rng.random() < 0.1:  # several fields found: which one a rejection names first must not depend on the check
            event.properties["a_note"].string_value = rng.choice(pii)
            event.context.page_url = "https://m.example.cn/?mobile=13912345678"
        if rng.random() < 0.15:
            event.properties["amount_fen"].money_fen_value = 12_300

    async def run(directory: Path, native: bool) -> tuple[list[tuple[int, str]], list[bytes]]:
        directory.mkdir()
        settings = collect_settings(directory, native_checks=native, undeclared_pii=undeclared_pii)
        async with running_service(settings) as (service, _):
            assert service._validator.native is (native and validation.NATIVE_AVAILABLE)
            first = await service.ingest([_copy(e) for e in events])
            again = await service.ingest([_copy(e) for e in events])  # names and types known: C answers most
            stored: list[bytes] = []
            async for batch, _cursor in service.read(collect_pb2.ReadEventsRequest(batch_size=1000), frozenset()):
                for event in batch:
                    event.ClearField("received_at")
                    event.ClearField("cursor")  # each log has its own id
                    stored.append(event.SerializeToString(deterministic=True))
            return [(o.status, o.reason, o.field, o.message) for o in list(first) + list(again)], stored

    with_c = asyncio.run(run(tmp_path / "c", True))
    without = asyncio.run(run(tmp_path / "py", False))
    assert with_c == without
    statuses = {outcome[0] for outcome in with_c[0]}
    assert len(statuses) == 3 and len(with_c[1]) > 150  # accepted, duplicate and rejected; most stored
    assert sum(b"amount_fen" in e for e in with_c[1]) > 10
    if undeclared_pii == "seal":
        assert sum(e.count(b"personal_data_sealed") > 1 for e in with_c[1]) > 5
    else:
        assert sum("personal data in fields" in outcome[3] for outcome in with_c[0]) > 20


def _copy(event: event_pb2.Event) -> event_pb2.Event:
    copy = event_pb2.Event()
    copy.CopyFrom(event)
    return copy


REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("pure", [pytest.param(False, marks=needs_native), True], ids=["with-c", "pure-python"])
def test_the_wheel_carries_the_c_check_unless_a_pure_python_build_is_asked(tmp_path: Path, pure: bool) -> None:
    """The wheel as a bundle builds it (hatch_build.py): with the extension, tagged for this platform, and loadable;
    with QIMING_PURE_PYTHON=1, pure Python. Neither carries the C source or a module built in place before."""
    env = {**os.environ, "QIMING_PURE_PYTHON": "1" if pure else "0"}
    command = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation"]
    run = subprocess.run(
        [*command, "--wheel-dir", str(tmp_path), str(REPO)], env=env, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr
    (wheel,) = tmp_path.glob("qiming-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        native = [name for name in archive.namelist() if name.startswith("svc_collect/_fastcheck")]
        if pure:
            assert wheel.name.endswith("-py3-none-any.whl") and native == []
            return
        tag = sysconfig.get_config_var("EXT_SUFFIX")
        assert native == [f"svc_collect/_fastcheck{tag}"], native
        assert not wheel.name.endswith("-py3-none-any.whl") and "-cp3" in wheel.name
        archive.extract(native[0], tmp_path / "unpacked")
    spec = importlib.util.spec_from_file_location("svc_collect._fastcheck", tmp_path / "unpacked" / native[0])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.Checker.__name__ == "Checker"
