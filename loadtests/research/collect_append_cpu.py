"""CPU per event of the log's append alone, in process: ``SqlEventLog.append`` on PostgreSQL (or SQLite) or
``JetStreamEventLog.append`` on NATS, 50 groups of 1,000 bench events after 10 to warm up; with ``--batch 100
--groups 500``, groups of 100 events, with the p50 / p99 wall time of one append (what a 100-event batch's
acknowledgement waits for at least when it arrives alone).

    PYTHONPATH=$PWD .venv/bin/python loadtests/research/collect_append_cpu.py postgresql [--batch 100 --groups 500]
    PYTHONPATH=$PWD .venv/bin/python loadtests/research/collect_append_cpu.py jetstream
    PYTHONPATH=$PWD .venv/bin/python loadtests/research/collect_append_cpu.py sqlite [--batch 100 --groups 500]

Run it from two checkouts in turn (each with its own PYTHONPATH) for an A/B. Uses a database, or a stream, of its
own on the local servers (127.0.0.1:5432, 127.0.0.1:4222) and removes it.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path[:0] = [str(Path(__file__).parents[1]), str(Path(__file__).parents[2] / "tests")]

import bench_collect  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from collect_helpers import collect_settings, running_service  # noqa: E402

from svc_common.pb.qiming.collect.v1 import collect_pb2  # noqa: E402

ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
NATS = "nats://127.0.0.1:4222"


async def measure(overrides: dict, batch: int, count: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        await _measure(Path(directory), overrides, batch, count)


async def _measure(directory: Path, overrides: dict, batch: int, count: int) -> None:
    async with running_service(collect_settings(directory, **overrides)) as (service, _):
        now = time.time_ns() // 1000
        seed = random.randrange(1 << 30)
        groups = [
            service._prepare(collect_pb2.IngestRequest.FromString(data).events, now)[0]
            for data in bench_collect.make_batches(count + 10, batch, seed=seed)
        ]
        for group in groups[:10]:
            service._log.append([group], now)
        walls = []
        cpu, wall = time.process_time(), time.perf_counter()
        for group in groups[10:]:
            started = time.perf_counter()
            service._log.append([group], now)
            walls.append((time.perf_counter() - started) * 1000)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        events = count * batch
        walls.sort()
        p50, p99 = walls[len(walls) // 2], walls[int(len(walls) * 0.99) - 1]
        print(
            f"append of {batch}-event groups: {cpu / events * 1e6:.2f} µs CPU and {wall / events * 1e6:.2f} µs wall"
            f" per event; one append p50 {p50:.2f} ms, p99 {p99:.2f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("backend", nargs="?", default="postgresql", choices=("postgresql", "jetstream", "sqlite"))
    parser.add_argument("--batch", type=int, default=1000, help="events per group")
    parser.add_argument("--groups", type=int, default=50, help="groups measured (after 10 to warm up)")
    parser.add_argument("--prefix", default="research", help="prefix of the database or stream made for the run")
    args = parser.parse_args()
    backend = args.backend
    name = f"{args.prefix}_{uuid.uuid4().hex[:8]}"
    if backend == "sqlite":  # a database file of its own in a fresh directory (the service's default)
        asyncio.run(measure({}, args.batch, args.groups))
    elif backend == "postgresql":
        admin = sa.create_engine(ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        try:
            url = sa.engine.make_url(ADMIN).set(database=name).render_as_string()
            asyncio.run(measure({"database_url": url}, args.batch, args.groups))
        finally:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    else:
        import nats

        stream = {"jetstream_stream": name, "jetstream_subject_prefix": f"{name}.events"}
        try:
            asyncio.run(measure({"log_backend": "jetstream", "nats_url": NATS, **stream}, args.batch, args.groups))
        finally:

            async def drop() -> None:
                nc = await nats.connect(NATS)
                await nc.jetstream().delete_stream(name)
                await nc.close()

            asyncio.run(drop())


if __name__ == "__main__":
    main()
