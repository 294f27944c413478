"""CPU of one JetStream append of 1,000 new events by collector b, in process: alone, and right after collector a
wrote a pack of 1,000 to the same shard (b's view is stale: its publish is refused, or with the read-ahead it
reads the news first, then indexes a's pack and publishes). The difference is what each event of another
collector's pack costs b. 40 rounds on the local nats-server (127.0.0.1:4222), a stream of its own, removed.

    cd /tmp && PYTHONPATH=<tree> .venv/bin/python <tree>/loadtests/research/collect_s14_contention.py
"""

from __future__ import annotations

import asyncio
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

import nats

sys.path[:0] = [str(Path(__file__).parents[1]), str(Path(__file__).parents[2] / "tests")]

import bench_collect  # noqa: E402
from collect_helpers import collect_settings, running_service  # noqa: E402

from svc_common.pb.qiming.collect.v1 import collect_pb2  # noqa: E402

NATS = "nats://127.0.0.1:4222"
ROUNDS = 40


async def measure(name: str) -> None:
    stream = {
        "jetstream_stream": name,
        "jetstream_subject_prefix": f"{name}.events",
        "log_backend": "jetstream",
        "nats_url": NATS,
    }
    async with (
        running_service(collect_settings(Path(tempfile.mkdtemp()), **stream)) as (a, _),
        running_service(collect_settings(Path(tempfile.mkdtemp()), **stream)) as (b, _),
    ):
        now = time.time_ns() // 1000
        batches = bench_collect.make_batches(3 + 3 * ROUNDS, 1000, seed=random.randrange(1 << 30))
        groups = [a._prepare(collect_pb2.IngestRequest.FromString(data).events, now)[0] for data in batches]
        log_a, log_b = a._log, b._log
        log_a.append([groups[0]], now)
        log_b.append([groups[1]], now)
        log_a.append([groups[2]], now)
        alone = after_a = 0.0
        for i in range(3, 3 + 3 * ROUNDS, 3):
            log_a.append([groups[i]], now)  # a moves the shard
            started = time.process_time()
            log_b.append([groups[i + 1]], now)
            after_a += time.process_time() - started
            started = time.process_time()
            log_b.append([groups[i + 2]], now)
            alone += time.process_time() - started
        events = ROUNDS * 1000
        print(
            f"b's append of 1,000 new events: alone {alone / events * 1e6:.2f} µs CPU per event, right after a wrote"
            f" 1,000: {after_a / events * 1e6:.2f}; per event of a's pack: {(after_a - alone) / events * 1e6:.2f}"
        )


async def drop(name: str) -> None:
    connection = await nats.connect(NATS)
    await connection.jetstream().delete_stream(name)
    await connection.close()


def main() -> None:
    name = f"research_{uuid.uuid4().hex[:8]}"
    try:
        asyncio.run(measure(name))
    finally:
        asyncio.run(drop(name))


if __name__ == "__main__":
    main()
