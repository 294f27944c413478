"""Lines/s through the chained audit sink (docs/benchmarks.md, "Session 15 (audit)"): N records recorded on the
event loop, then close() (written, fsynced, anchored).

    PYTHONPATH=$PWD .venv/bin/python loadtests/research/audit_chain_bench.py [N]

``AUDIT_LIMITS='{"queue_lines": 1000000}'`` passes limits to the sink (here: a queue that is never full).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from svc_common.audit import ChainedAuditSink, chain_key
from svc_common.protection import generate_keyring
from svc_common.server import AuditRecord

LIMITS = json.loads(os.environ.get("AUDIT_LIMITS", "{}"))
KEY = chain_key(generate_keyring())
RECORD = AuditRecord(
    at=datetime.now(UTC),
    principal="anonymous",
    roles=(),
    method="/qiming.collect.v1.CollectService/Ingest",
    peer="ipv4:127.0.0.1:5000",
    trace_id="0" * 32,
    status="OK",
    customers=("c1",),
)


async def run(directory: Path, n: int) -> tuple[float, float, float]:
    sink = ChainedAuditSink.open(directory, KEY, "collect", host="h1", **LIMITS)
    cpu, started = time.process_time(), time.perf_counter()
    for i in range(n):
        await sink.record(RECORD)
        if i % 1000 == 0:
            await asyncio.sleep(0)  # let the loop breathe, as a server's would
    recorded = time.perf_counter() - started
    sink.close()
    return recorded, time.perf_counter() - started, time.process_time() - cpu


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    with tempfile.TemporaryDirectory() as directory:
        recorded, total, cpu = asyncio.run(run(Path(directory), n))
        lines = sum(1 for path in Path(directory).glob("*.jsonl") for _ in path.open("rb"))
    print(
        f"lines={lines} record_us_per_call={recorded / n * 1e6:.2f} lines_per_s={lines / total:,.0f} "
        f"cpu_us_per_line={cpu / lines * 1e6:.2f}"
    )


if __name__ == "__main__":
    main()
