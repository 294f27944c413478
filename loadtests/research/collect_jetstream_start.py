"""How long a JetStream collector takes to start when the de-duplication window holds many events: it rebuilds its
index from the window's packs before it serves (docs/collect.md, "JetStream: how it works").

    PYTHONPATH=$PWD .venv/bin/python loadtests/research/collect_jetstream_start.py [--events 200000] [--starts 3]

A nats-server of its own (``sync_interval: always``, svc_collect.natsd); the collector in process (``build_service``
on a fresh data directory), fed ``--events`` events in 1,000-event batches of the bench's events
(loadtests/bench_collect.py), then stopped and started again ``--starts`` times: each start's seconds, µs per event
of the window, and the CPU µs per event of each step in the thread that reads the window (fetching the packs,
reading their ids and fingerprints, indexing them: ``time.thread_time`` around each call). Then, for one pack of
1,000 of the bench's events, ``Pack.decode`` (every column) against ``Pack.decode_ids`` (what a start reads), min
of 5 × 200 each.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))

import bench_collect  # noqa: E402

from svc_collect.config import CollectSettings  # noqa: E402
from svc_collect.natsd import NatsServer  # noqa: E402
from svc_collect.server import build_service  # noqa: E402
from svc_collect.service import now_micros  # noqa: E402
from svc_collect.store import SCHEMA, jetstream  # noqa: E402
from svc_collect.store._jetstream_parts import DedupIndex, Pack  # noqa: E402
from svc_common.config import load_settings  # noqa: E402
from svc_common.pb.qiming.collect.v1 import collect_pb2  # noqa: E402
from svc_common.runtime import ServiceRuntime  # noqa: E402

STEPS = {"fetch": 0.0, "ids": 0.0, "index": 0.0}


def time_the_steps() -> None:
    """Wrap the three steps of a start's read of the window so that their thread CPU adds up in STEPS."""
    log = jetstream.JetStreamEventLog
    fetch, read_ids, add = log._next_msg, log._decode_ids, DedupIndex.add

    async def next_msg(self, *args):  # type: ignore[no-untyped-def]
        began = time.thread_time()
        msg = await fetch(self, *args)
        STEPS["fetch"] += time.thread_time() - began
        return msg

    def decode_ids(self, *args):  # type: ignore[no-untyped-def]
        began = time.thread_time()
        ids = read_ids(self, *args)
        STEPS["ids"] += time.thread_time() - began
        return ids

    def index(self, *args):  # type: ignore[no-untyped-def]
        began = time.thread_time()
        add(self, *args)
        STEPS["index"] += time.thread_time() - began

    log._next_msg, log._decode_ids, DedupIndex.add = next_msg, decode_ids, index  # type: ignore[method-assign]


async def started(settings: CollectSettings):  # type: ignore[no-untyped-def]
    runtime = ServiceRuntime.open(SCHEMA, settings)
    service, _ = build_service(runtime)
    began = time.perf_counter()
    await service.start()
    return runtime, service, time.perf_counter() - began


def decode_costs(root: Path) -> None:
    """Pack.decode against Pack.decode_ids for a pack of the bench's events, prepared by a collector."""
    runtime = ServiceRuntime.open(SCHEMA, load_settings(CollectSettings, data_dir=root / "decode"))
    service, _ = build_service(runtime)
    request = collect_pb2.IngestRequest.FromString(bench_collect.make_batches(1, 1000)[0])
    batch, _ = service._prepare(request.events, now_micros())
    runtime.database.dispose()
    data = Pack.of_rows(now_micros(), batch.rows).encode()
    for name, read in (("Pack.decode", Pack.decode), ("Pack.decode_ids", Pack.decode_ids)):
        best = min(timeit.repeat(lambda read=read: read(data), number=200, repeat=5)) / 200
        print(f"{name}: {best * 1000:.3f} ms a pack of {len(batch.rows):,} events ({len(data):,} bytes)")


async def main(events: int, starts: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="qiming-js-start-"))
    try:
        with NatsServer(root / "nats") as server:
            settings = load_settings(
                CollectSettings,
                data_dir=root / "data",
                log_backend="jetstream",
                nats_url=server.url,
                jetstream_stream=f"START{int(time.time())}",
            )
            runtime, service, _ = await started(settings)
            fed = time.perf_counter()
            for data in bench_collect.make_batches(events // 1000, 1000):
                await service.ingest(collect_pb2.IngestRequest.FromString(data).events)
            print(f"fed {events:,} events in {time.perf_counter() - fed:.1f} s")
            await service.stop()
            runtime.database.dispose()
            time_the_steps()
            for i in range(1, starts + 1):
                STEPS.update(dict.fromkeys(STEPS, 0.0))
                runtime, service, seconds = await started(settings)
                indexed = len(service._log._index)
                await service.stop()
                runtime.database.dispose()
                steps = ", ".join(f"{name} {cpu / indexed * 1e6:.2f}" for name, cpu in STEPS.items())
                print(
                    f"start {i}: {seconds:.2f} s with {indexed:,} ids in the window ({seconds / indexed * 1e6:.2f} µs"
                )
                print(f"  each; CPU µs per id: {steps})")
        decode_costs(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--starts", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.events, args.starts))
