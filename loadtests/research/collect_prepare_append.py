"""Rough per-event cost of svc_collect on SQLite, in process (until `make bench` exists).

    .venv/bin/python loadtests/research/collect_prepare_append.py

Prints µs/event for validation+protection (prepare), the SQLite append, and a whole ingest call, then a cProfile of prepare."""
import time, uuid, asyncio, cProfile, pstats
from pathlib import Path
from svc_common.config import load_settings
from svc_collect.config import CollectSettings
from svc_common.runtime import ServiceRuntime
from svc_collect.store import SCHEMA
from svc_collect.server import build_service
from svc_collect.service import now_micros
from svc_common.pb.qiming.common.v1 import event_pb2
from svc_common.pb.qiming.collect.v1 import collect_pb2
import tempfile
settings = load_settings(CollectSettings, data_dir=Path(tempfile.mkdtemp(prefix="qiming-prof-")))
rt = ServiceRuntime.open(SCHEMA, settings)
svc, cat = build_service(rt)
def ev(i):
    e = event_pb2.Event(event_id=str(uuid.uuid4()), event_type="page_view", user_id=f"c{i%100}", anonymous_id=f"a{i}")
    e.occurred_at.GetCurrentTime()
    e.properties["screen"].string_value = "fund_detail"
    e.properties["n"].int_value = i
    return e
batches = [collect_pb2.IngestRequest(events=[ev(i) for i in range(1000)]).SerializeToString() for _ in range(30)]
reqs = [collect_pb2.IngestRequest.FromString(b) for b in batches]
async def main():
    await svc.start()
    t=time.perf_counter()
    for r in reqs[:10]:
        svc._prepare(r.events, now_micros())
    print("prepare us/event", (time.perf_counter()-t)/10000*1e6)
    reqs2 = [collect_pb2.IngestRequest.FromString(b) for b in batches]
    prepared = [svc._prepare(r.events, now_micros())[0] for r in reqs2[10:20]]
    t=time.perf_counter()
    for b in prepared:
        svc._log.append([b], now_micros())
    print("append us/event", (time.perf_counter()-t)/10000*1e6)
    t=time.perf_counter()
    for r in reqs2[20:30]:
        await svc.ingest(r.events)
    print("ingest us/event", (time.perf_counter()-t)/10000*1e6)
    reqs3 = [collect_pb2.IngestRequest.FromString(b) for b in batches]
    pr = cProfile.Profile(); pr.enable()
    for r in reqs3[:5]:
        svc._prepare(r.events, now_micros())
    pr.disable(); pstats.Stats(pr).sort_stats("tottime").print_stats(12)
    await svc.stop()
asyncio.run(main())
