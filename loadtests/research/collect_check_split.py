"""CPU per event of the collector's hot-path steps, in process, with the event check in C and without it: the bench's
1,000-event batches parsed as the servicer parses them, then each step timed over all their events.

    PYTHONPATH=$PWD .venv/bin/python loadtests/research/collect_check_split.py --batches 20 --rounds 3

Steps: ``check`` (``EventValidator.check``: the C check first — its deterministic encoding and ``Checker.check``
alone also timed —; ``check_in_python``: the Python check alone, its test for unknown fields also timed), the first look for undeclared personal data (C,
Python), the ``protect`` of events with nothing to protect and of those with a level-3 value to seal (C or Python first look
for undeclared personal data), ``fingerprint``, and the whole ``_prepare`` with ``native_checks`` on and off (two
services on temporary SQLite databases, the GC as ``qiming serve`` sets it). Prints the minimum over the rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[2] / "tests")]

import bench_collect
from collect_helpers import collect_settings, running_service

from svc_collect import _fastcheck, server
from svc_collect.service import now_micros
from svc_collect.unknown_fields import holds_unknown
from svc_common.pb.qiming.collect.v1 import collect_pb2
from svc_common.pb.qiming.common.v1 import event_pb2

from svc_common.protection import may_hold_personal_data as may_hold_py

parse = server._sized(collect_pb2.IngestRequest.FromString, 1 << 30)
may_hold_c = _fastcheck.may_hold_personal_data


def serialize(event: event_pb2.Event) -> bytes:
    return event.SerializeToString(deterministic=True)


def per_event(step: Callable[[], object], events: int) -> float:
    started = time.process_time()
    step()
    return (time.process_time() - started) / events * 1e6


def copies(events: list[event_pb2.Event]) -> list[event_pb2.Event]:
    out = []
    for event in events:
        copy = event_pb2.Event()
        copy.CopyFrom(event)
        out.append(copy)
    return out


async def measure(batches: int, rounds: int) -> None:
    datas = bench_collect.make_batches(batches + 1, 1000, seed=11)
    # Printed in this order: the check and its parts first.
    best: dict[str, float] = dict.fromkeys(
        (
            "check, C first",
            "  of which the deterministic encoding",
            "  of which Checker.check alone",
            "check, Python",
            "  of which the unknown-field test (holds_unknown)",
        ),
        float("inf"),
    )

    def keep(name: str, value: float) -> None:
        best[name] = min(best.get(name, value), value)

    with tempfile.TemporaryDirectory(prefix="collect-split-") as tmp:
        on, off = Path(tmp, "on"), Path(tmp, "off")
        on.mkdir()
        off.mkdir()
        async with (
            running_service(collect_settings(on)) as (native, _),
            running_service(collect_settings(off, native_checks=False)) as (python, _),
        ):
            for service in (native, python):  # caches of valid names and types warm, as in steady state
                await service.ingest(parse(datas[0]).events)
            gc.collect()
            gc.freeze()
            gc.set_threshold(10_000)
            now = now_micros()
            events = [e for d in datas[1:] for e in parse(d).events]
            n = len(events)
            validator = native._validator
            verdicts = [validator.check(e, now) for e in copies(events)]
            plain = [(e, v) for e, v in zip(events, verdicts, strict=True) if v[3] is None and "amount_fen" not in v[4]]
            sealed = [(e, v) for e, v in zip(events, verdicts, strict=True) if "amount_fen" in v[4]]
            for _ in range(rounds):
                batch = copies(events)
                keep("check, C first", per_event(lambda: [validator.check(e, now) for e in batch], n))  # noqa: B023
                batch = copies(events)
                keep("check, Python", per_event(lambda: [validator.check_in_python(e, now) for e in batch], n))  # noqa: B023
                for label, service in (("C", native), ("Python", python)):
                    protect = service._protector.protect
                    for kind, chosen in (("nothing to protect", plain), ("a level-3 value sealed", sealed)):
                        pairs = [(c, v) for c, (_, v) in zip(copies([e for e, _ in chosen]), chosen, strict=True)]
                        keep(
                            f"protect, {kind}, {label} first look",
                            per_event(lambda: [protect(e, v[3], v[4], v[5], v[1]) for e, v in pairs], len(pairs)),  # noqa: B023
                        )
                encodings = [e.SerializeToString(deterministic=True) for e in events]
                checker = validator._native
                keep("  of which the deterministic encoding", per_event(lambda: [serialize(e) for e in events], n))
                keep("  of which Checker.check alone", per_event(lambda: [checker(d, now) for d in encodings], n))  # noqa: B023
                batch = copies(events)
                keep(
                    "  of which the unknown-field test (holds_unknown)",
                    per_event(lambda: [holds_unknown(e, d) for e, d in zip(batch, encodings, strict=True)], n),  # noqa: B023
                )
                keep("may_hold_personal_data, C", per_event(lambda: [may_hold_c(d) for d in encodings], n))  # noqa: B023
                keep("may_hold_personal_data, Python", per_event(lambda: [may_hold_py(d) for d in encodings], n))  # noqa: B023
                fingerprint = native._fingerprints.fingerprint
                keep("fingerprint", per_event(lambda: [fingerprint(v[1]) for v in verdicts], n))
                for label, service in (("native_checks on", native), ("native_checks off", python)):
                    requests = [parse(d) for d in datas[1:]]
                    keep(
                        f"_prepare (parse before it), {label}",
                        per_event(
                            lambda: [service._prepare(r.events, now, output_only_cleared=True) for r in requests],  # noqa: B023
                            n,
                        ),
                    )
    print(f"{n:,} events of the bench ({len(plain):,} with nothing to protect, {len(sealed):,} with an amount to seal)")
    for name, value in best.items():
        print(f"  {name:<55} {value:6.2f} µs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=20, help="1,000-event batches (default 20)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the minimum is printed (default 3)")
    args = parser.parse_args()
    asyncio.run(measure(args.batches, args.rounds))


if __name__ == "__main__":
    main()
