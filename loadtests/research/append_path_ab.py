"""Session 18's two savings on the append path, against an earlier commit (docs/benchmarks.md, "Session 18"):
the audit chain's ``seal`` (one line of 1, 100 and 1,000 customers) and a group's per-minute statistics (5 event
types, SQLite, after the minute's first group), each the minimum of 5 repeats, the old and the new alternated.
The old code is read from git (``git show REV:path``), so run it in a checkout that has REV.

    PYTHONPATH=$PWD .venv/bin/python loadtests/research/append_path_ab.py [--base e683098]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
import timeit
import types
from pathlib import Path

ROOT = Path(__file__).parents[2]
sys.path[:0] = [str(ROOT / "tests")]

from collect_helpers import collect_settings, running_service  # noqa: E402

from svc_common.audit import _chain  # noqa: E402
from svc_common.protection import generate_keyring  # noqa: E402


def old_module(base: str, path: str, name: str) -> types.ModuleType:
    source = subprocess.run(["git", "show", f"{base}:{path}"], cwd=ROOT, check=True, capture_output=True, text=True)
    module = types.ModuleType(name)
    sys.modules[name] = module  # dataclasses look their module up
    exec(compile(source.stdout, f"{base}:{path}", "exec"), module.__dict__)
    return module


def seal(base: str) -> None:
    old = old_module(base, "svc_common/audit/_chain.py", "base_chain")
    key = _chain.chain_key(generate_keyring())
    macs = {"old": old.ChainMac(key), "new": _chain.ChainMac(key)}
    for customers in (1, 100, 1000):
        body = {
            "at": "2026-12-06T23:10:00.123456+00:00",
            "principal": "anonymous",
            "roles": [],
            "method": "/qiming.collect.v1.CollectService/Ingest",
            "status": "OK",
            "peer": "ipv4:127.0.0.1:5000",
            "trace_id": "ab" * 16,
            "customers": [f"c{i:07d}" for i in range(customers)],
        }
        assert old.seal(macs["old"], body, 5, _chain.GENESIS) == _chain.seal(macs["new"], body, 5, _chain.GENESIS)
        for name, module in (("old", old), ("new", _chain)) * 2:
            best = min(timeit.repeat(lambda: module.seal(macs[name], body, 5, _chain.GENESIS), number=2000, repeat=5))
            print(f"seal, {customers} customers, {name}: {best / 2000 * 1e6:.1f} µs")


async def counts(base: str) -> None:
    old = old_module(base, "svc_collect/store/_log.py", "base_log")
    with tempfile.TemporaryDirectory() as directory:
        async with running_service(collect_settings(Path(directory))) as (service, _):
            log = service._log
            # The old method's statements, as its constructor made them.
            log._count_update_sql, log._count_insert_sql = log._counts._update_sql, log._counts._insert_sql
            now = time.time_ns() // 1000
            group = {t: [200, 0, 0] for t in ("page_view", "quote_view", "fund_view", "app_click", "trade_filled")}
            with log._db.connection(write=True) as conn:
                log._counts.add(conn, group, now)()  # the minute's first group: every row made

            def new(conn: object) -> None:
                log._counts.add(conn, group, now)()

            def before(conn: object) -> None:
                old.SqlEventLog._count(log, conn, group, now)

            for name, add in (("old", before), ("new", new)) * 3:
                with log._db.connection(write=True) as conn:
                    best = min(timeit.repeat(lambda add=add, conn=conn: add(conn), number=300, repeat=5))
                print(f"statistics of a 5-type group, {name}: {best / 300 * 1e6:.0f} µs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default="e683098", help="the commit to compare with")
    args = parser.parse_args()
    seal(args.base)
    asyncio.run(counts(args.base))


if __name__ == "__main__":
    main()
