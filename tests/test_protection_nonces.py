"""SM4-GCM nonces (a random prefix per run and a counter): never repeated under one key — across many seals, threads,
sealers, processes and forks — and values sealed before the change still open."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest

from svc_collect.protect import EventProtector
from svc_common.pb.qiming.common.v1 import event_pb2
from svc_common.protection import JsonKeyProvider, Keyring, Sealer, _sm

# Sealed by the sealer before nonces were counted (os.urandom per nonce), with this fixed keyring.
OLD_KEYRING = Keyring("k1", {"k1": bytes(range(16))}, bytes(range(32, 64))).to_json()
OLD_SEALED_VALUE = bytes.fromhex(
    "01026b3173b211957f24b16b1aaa62ac4b11b0a10250c6ebf73a12a37e8eee938d7e711b1139d238f2f3ddd995429f7f308a"
)
OLD_SEALED_EVENT = bytes.fromhex(
    "01026b3175ec9a4d521f1c1323b90d839ffbe99b4189d50ad630e5649a6ccab99ae4a51816217d14947d0c62c996919bf7d1fea674460f5a"
    "35443a581a2e25fb"
)
OLD_EVENT_ID = "0190f0c0-1234-7abc-8def-0123456789ab"


def _nonce(sealed: bytes) -> bytes:
    start = 2 + sealed[1]
    return sealed[start : start + 12]


def test_values_sealed_before_still_open() -> None:
    keys = JsonKeyProvider(OLD_KEYRING)
    assert Sealer(keys).open(OLD_SEALED_VALUE, b"event-1") == b"110101199001011234"
    event = event_pb2.Event(event_id=OLD_EVENT_ID, event_type="trade_filled", user_id="C1")
    event.masked_fields.extend(["amount_fen", "context.ip"])
    EventProtector(keys, ("amount_fen",)).unmask(event, OLD_SEALED_EVENT)
    assert event.properties["amount_fen"].int_value == 1234500
    assert event.context.ip == "10.1.2.3"
    assert not event.masked_fields


def test_new_values_open_in_the_same_format() -> None:
    sealer = Sealer(JsonKeyProvider(OLD_KEYRING))
    sealed = sealer.seal(b"13800138000", b"ctx")
    assert sealed[:4] == b"\x01\x02k1" and len(sealed) == 4 + 12 + 11 + 16
    assert Sealer(JsonKeyProvider(OLD_KEYRING)).open(sealed, b"ctx") == b"13800138000"


def test_nonces_never_repeat_across_many_seals_threads_and_sealers() -> None:
    keys = JsonKeyProvider(OLD_KEYRING)
    first, second = Sealer(keys), Sealer(keys)
    nonces = [_nonce(first.seal(b"x")) for _ in range(20_000)] + [_nonce(second.seal(b"x")) for _ in range(20_000)]
    found: list[list[bytes]] = [[] for _ in range(4)]

    def seal_many(into: list[bytes]) -> None:
        into.extend(_nonce(first.seal(b"x")) for _ in range(5_000))

    threads = [threading.Thread(target=seal_many, args=(into,)) for into in found]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    nonces += [n for into in found for n in into]
    assert len(nonces) == 60_000
    assert len(set(nonces)) == len(nonces)
    # Two sealers (as two processes would) draw their own prefixes.
    assert _nonce(first.seal(b"x"))[:8] != _nonce(second.seal(b"x"))[:8]


def test_a_spent_counter_draws_a_new_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_sm, "_NONCE_COUNTER_LIMIT", 3)
    sealer = Sealer(JsonKeyProvider(OLD_KEYRING))
    nonces = [_nonce(sealer.seal(b"x")) for _ in range(10)]
    assert len(set(nonces)) == 10
    assert len({n[:8] for n in nonces}) == 4  # 3 values per prefix
    assert all(int.from_bytes(n[8:], "big") < 3 for n in nonces)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_forked_child_does_not_reuse_the_parents_nonces() -> None:
    sealer = Sealer(JsonKeyProvider(OLD_KEYRING))
    sealer.seal(b"x")  # the parent has started its run before the fork
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next nonces, to the parent
        try:
            os.write(write, b"".join(_nonce(sealer.seal(b"x")) for _ in range(100)))
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        child = pipe.read()
    os.waitpid(pid, 0)
    child_nonces = {child[i : i + 12] for i in range(0, len(child), 12)}
    parent_nonces = {_nonce(sealer.seal(b"x")) for _ in range(100)}
    assert len(child_nonces) == 100
    assert not child_nonces & parent_nonces


def test_two_processes_seal_with_distinct_nonces() -> None:
    code = (
        "import sys; from svc_common.protection import JsonKeyProvider, Sealer\n"
        "s = Sealer(JsonKeyProvider(sys.stdin.read()))\n"
        "print(''.join(s.seal(b'x').hex()[8:32] for _ in range(1000)))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    runs = [
        subprocess.run(
            [sys.executable, "-c", code], input=OLD_KEYRING, capture_output=True, text=True, env=env, check=True
        )
        for _ in range(2)
    ]
    nonces = [run.stdout.strip()[i : i + 24] for run in runs for i in range(0, 24_000, 24)]
    assert len(nonces) == 2_000
    assert len(set(nonces)) == 2_000
