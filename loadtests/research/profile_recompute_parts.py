"""Where a full recompute's first pass goes: ``bench_profile.bench_recompute`` over N generated profiles, with timers
around the write's parts (making the ``$segment_*`` events, the persons' ids, the membership and outbox writes) and
the whole set-based recompute, for the tree on PYTHONPATH.

    PYTHONPATH=<tree> .venv/bin/python <tree>/loadtests/research/profile_recompute_parts.py [--profiles 100000]

``_recompute_sql`` and ``load_members`` add up both passes (the first writes the changes, the second finds none);
the others are the first pass's (docs/benchmarks.md, "Session 25").
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "loadtests"), str(ROOT / "tests")]

import bench_profile  # noqa: E402

from svc_profile import engine as engine_module  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--profiles", type=int, default=100_000)
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="profile-recompute-"))
    seconds: dict[str, float] = defaultdict(float)

    def timed(owner, name):
        real = getattr(owner, name)

        def run(*a, **k):
            started = time.perf_counter()
            try:
                return real(*a, **k)
            finally:
                seconds[name] += time.perf_counter() - started

        setattr(owner, name, run)

    try:
        app = bench_profile.open_app("", data_dir)
        bench_profile.generate(app, args.profiles)
        timed(engine_module, "segment_event")
        timed(engine_module, "outbox_row")
        for name in ("event_ids_of", "upsert_members", "add_outbox", "load_members"):
            timed(app.segments.core.store, name)
        timed(app.segments.core.engine, "write_changes")
        timed(app.segments, "_recompute_sql")
        print(bench_profile.bench_recompute(app, args.profiles))
        for name, total in sorted(seconds.items(), key=lambda item: -item[1]):
            print(f"  {name:<16} {total:.3f} s")
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
