"""Instructions (callgrind) or CPU per event of the collector's hot ingest path, in process, on the bench's events.

    PYTHONHASHSEED=0 valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        python loadtests/research/collect_s13_instr.py prepare N     # N = 0, then 5: (I(5) - I(0)) / 5,000
    PYTHONPATH=$PWD .venv/bin/python loadtests/research/collect_s13_instr.py prepare 30 --cpu  # process_time per event

Stages: ``prepare`` (parse the request, then ``CollectService._prepare``), ``ingest`` (parse, ``ingest`` on SQLite
with its group commit, and the encoded response), ``encode`` (the encoded response only, from outcomes prepared and
appended before the measured part). The service runs on a temporary SQLite database, as the tests build it; the GC
is set as ``qiming serve`` sets it (start-up objects frozen, young threshold 10,000).
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).parents[1]), str(Path(__file__).parents[2] / "tests")]

import bench_collect  # noqa: E402
from collect_helpers import collect_settings, running_service  # noqa: E402

from svc_collect import server  # noqa: E402
from svc_collect.server import encode_ingest_response  # noqa: E402
from svc_collect.service import now_micros  # noqa: E402
from svc_common.pb.qiming.collect.v1 import collect_pb2  # noqa: E402

BATCH = 1000


async def main(stage: str, count: int, cpu: bool) -> None:
    async with running_service(collect_settings(Path(tempfile.mkdtemp(prefix="coll-s13-")))) as (service, _):
        # Always the same batches made (their making is not what is measured): N of them measured.
        datas = bench_collect.make_batches(max(count, 5) + 1, BATCH, seed=11)
        # As the servicer parses (a tree whose deserializer clears the output-only fields says so to _prepare).
        parse = server._sized(collect_pb2.IngestRequest.FromString, 1 << 30)
        cleared = "output_only_cleared" in inspect.signature(service._prepare).parameters
        kw = {"output_only_cleared": True} if cleared else {}
        # One batch first: every cache (names, schemas, modes) warm before the measured part.
        outcomes = await service.ingest(parse(datas[0]).events)
        encode_ingest_response(outcomes)
        measured = datas[1 : count + 1]
        done = []
        if stage == "encode":
            done = [await service.ingest(parse(d).events) for d in measured]
        gc.collect()
        gc.freeze()
        gc.set_threshold(10_000)
        started = time.process_time()
        if stage == "prepare":
            now = now_micros()
            for data in measured:
                service._prepare(parse(data).events, now, **kw)
        elif stage == "ingest":
            for data in measured:
                encode_ingest_response(await service.ingest(parse(data).events, **kw))
        elif stage == "encode":
            for outcomes in done:
                encode_ingest_response(outcomes)
        spent = time.process_time() - started
        if cpu and count:
            print(f"{stage}: {spent / (count * BATCH) * 1e6:.2f} µs CPU per event over {count} batches")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), "--cpu" in sys.argv))
