"""How long a JetStream collector takes to start when the de-duplication window holds many events: it rebuilds its
index from the window's packs before it serves (docs/collect.md, "JetStream: how it works").

    PYTHONPATH=$PWD .venv/bin/python loadtests/research/collect_jetstream_start.py [--events 200000] [--starts 3]

A nats-server of its own (``sync_interval: always``, svc_collect.natsd); the collector in process (``build_service``
on a fresh data directory), fed ``--events`` events in 1,000-event batches of the bench's events
(loadtests/bench_collect.py), then stopped and started again ``--starts`` times: each start's seconds, and µs per
event of the window.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))

import bench_collect  # noqa: E402

from svc_collect.config import CollectSettings  # noqa: E402
from svc_collect.natsd import NatsServer  # noqa: E402
from svc_collect.server import build_service  # noqa: E402
from svc_collect.store import SCHEMA  # noqa: E402
from svc_common.config import load_settings  # noqa: E402
from svc_common.pb.qiming.collect.v1 import collect_pb2  # noqa: E402
from svc_common.runtime import ServiceRuntime  # noqa: E402


async def started(settings: CollectSettings):  # type: ignore[no-untyped-def]
    runtime = ServiceRuntime.open(SCHEMA, settings)
    service, _ = build_service(runtime)
    began = time.perf_counter()
    await service.start()
    return runtime, service, time.perf_counter() - began


async def main(events: int, starts: int) -> None:
    root = Path(tempfile.mkdtemp(prefix="qiming-js-start-"))
    with NatsServer(root / "nats") as server:
        settings = load_settings(
            CollectSettings,
            data_dir=root / "data",
            log_backend="jetstream",
            nats_url=server.url,
            jetstream_stream=f"START{int(time.time())}",
        )
        runtime, service, _ = await started(settings)
        batches = bench_collect.make_batches(events // 1000, 1000)
        fed = time.perf_counter()
        for data in batches:
            await service.ingest(collect_pb2.IngestRequest.FromString(data).events)
        print(f"fed {events:,} events in {time.perf_counter() - fed:.1f} s")
        await service.stop()
        runtime.database.dispose()
        for i in range(1, starts + 1):
            runtime, service, seconds = await started(settings)
            indexed = len(service._log._index)
            await service.stop()
            runtime.database.dispose()
            print(
                f"start {i}: {seconds:.2f} s with {indexed:,} ids in the window ({seconds / indexed * 1e6:.2f} µs each)"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--starts", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.events, args.starts))
