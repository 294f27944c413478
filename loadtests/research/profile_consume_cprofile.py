"""cProfile of the log consumer's timed batches (``bench_profile.py --only consume``'s workload: 20,000 persons,
40,000 events after the batches that create them), for the tree on PYTHONPATH: the 25 functions of most own time.

    PYTHONPATH=<tree> .venv/bin/python <tree>/loadtests/research/profile_consume_cprofile.py [--events 40000]

Run it for two trees to see which function a change made costlier (session 27: 48,346 ``Fraction`` constructions in
40,000 events, the dormant score's exact path taken for every half; docs/benchmarks.md "Session 27").
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "loadtests"), str(ROOT / "tests")]

import bench_profile  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=40_000)
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="profile-cprofile-"))
    try:
        app = bench_profile.open_app("", data_dir)
        profiler = cProfile.Profile()
        entry = "submit" if hasattr(app.consumer, "submit") else "handle"
        batch = getattr(app.consumer, entry)

        def timed(events, cursor):  # the timed batches only (cursors c0, c1, ...; w… create the persons)
            if not cursor.startswith("c"):
                return batch(events, cursor)
            profiler.enable()
            try:
                return batch(events, cursor)
            finally:
                profiler.disable()

        setattr(app.consumer, entry, timed)
        bench_profile.bench_consume(app, 20_000, args.events)
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
        print(out.getvalue())
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
