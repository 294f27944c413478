"""Time of one full cyclic-GC collection with a 1,000,000-event JetStream de-duplication index (1,000 packs of
1,000), start-up objects frozen as ``qiming serve`` freezes them: what the index adds to every full collection.

    cd /tmp && PYTHONPATH=<tree> .venv/bin/python <tree>/loadtests/research/collect_s14_index_gc.py
"""

import gc
import time
import uuid

import svc_collect
from svc_collect.store._jetstream_parts import DedupIndex, Pack
from svc_collect.store._log import LogRow

gc.collect()
gc.freeze()  # as qiming serve does after start-up
idx = DedupIndex(10**15)
ids = [str(uuid.uuid4()) for _ in range(1_000_000)]
for k in range(1000):
    p = Pack.of_rows(
        k, [LogRow(ids[k * 1000 + i], "t", "u", None, 1, ids[k * 1000 + i][:32], 0, b"x", None) for i in range(1000)]
    )
    idx.add(k + 1, p)
del p, ids
gc.collect()
timings = []
for _ in range(3):
    started = time.perf_counter()
    gc.collect()
    timings.append(time.perf_counter() - started)
print(f"{svc_collect.__file__}: {len(gc.get_objects())} objects tracked by the GC besides the frozen ones;")
print(f"a full collection with a 1,000,000-event index: {min(timings) * 1000:.1f} ms")
