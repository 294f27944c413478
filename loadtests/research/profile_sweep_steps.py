"""The time sweep on one generated SQLite database, reused across runs and trees (the generation of 100,000 profiles
takes ~70 s; a sweep ~6 s): ``bench_profile.py --only sweep``'s population and segment, generated once into
``--dir``/base, copied for each run. Each run sweeps three times across the same day boundary at the instant stored
with the database (the first sweep writes what the boundary changes, the next two find nothing to change), prints
their seconds (wall, CPU), and with ``--dump`` writes a digest of what the sweeps left (tags, stages and their history,
memberships, outbox) so that two trees' results can be compared.

    PYTHONPATH=<tree> .venv/bin/python loadtests/research/profile_sweep_steps.py --dir /tmp/sweepdb --profiles 100000
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import time
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))

import bench_profile
from profile_helpers import DAY

from svc_common.pb.qiming.common.v1 import condition_pb2 as C
from svc_common.pb.qiming.common.v1 import event_pb2
from svc_common.pb.qiming.profile.v1 import profile_pb2 as pb
from svc_common.protection import generate_keyring

DIGEST = {
    "tags": "SELECT profile_id, name, tag_value, writer_version, written_us FROM profile_tag",
    "stages": "SELECT profile_id, lifecycle_stage, lifecycle_since_us FROM profile_person",
    "history": "SELECT profile_id, from_stage, to_stage, at_us, rule FROM profile_lifecycle",
    "members": "SELECT profile_id, segment_id, is_member, seq, entered_us, changed_us FROM profile_member",
    "outbox": "SELECT event_id, body FROM profile_outbox",
}


def prepare(base: Path, profiles: int) -> None:
    base.mkdir(parents=True)
    (base / "keyring.json").write_text(generate_keyring().to_json())
    bench_profile.KEYRING = (base / "keyring.json").read_text()
    app = bench_profile.open_app("", base)
    started = time.perf_counter()
    bench_profile.generate(app, profiles, 91, 400)
    condition = C.Condition(event_count=C.EventCount(event_type="login", min_count=12, window_seconds=30 * 86_400))
    app.definitions.create_segment(pb.Segment(segment_id="sweep_bench", condition=condition))
    (base / "now").write_text(str(time.time_ns() // 1000))
    app.core.database.dispose()
    print(f"generated {profiles} profiles in {time.perf_counter() - started:.1f}s", flush=True)


def _plain(value):
    if isinstance(value, bytes | memoryview):  # an outbox body: a map's order is not stable across processes
        event = event_pb2.Event.FromString(bytes(value))
        event.properties.pop("$signature", None)  # queued unsigned since 0.2.8 (the outbox signs as it publishes)
        return event.SerializeToString(deterministic=True).hex()
    return value


def digest(app) -> dict[str, str]:
    out = {}
    with app.core.database.connection() as conn:
        for key, sql in DIGEST.items():
            rows = sorted(tuple(_plain(v) for v in r) for r in conn.execute(sa.text(sql)))
            out[key] = f"{len(rows)} {hashlib.sha256(json.dumps(rows, default=str).encode()).hexdigest()[:16]}"
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--profiles", type=int, default=100_000)
    parser.add_argument("--sweeps", type=int, default=3)
    parser.add_argument("--dump", action="store_true", help="print a digest of the tables the sweeps write")
    parser.add_argument(
        "--serving-gc", type=int, default=0, help="tune the collector as a served process does (gc_young_threshold)"
    )
    args = parser.parse_args()
    base = args.dir / "base"
    if not base.exists():
        prepare(base, args.profiles)
    run = args.dir / "run"
    shutil.rmtree(run, ignore_errors=True)
    shutil.copytree(base, run)
    bench_profile.KEYRING = (run / "keyring.json").read_text()
    now = int((run / "now").read_text())
    app = bench_profile.open_app("", run)
    if args.serving_gc:
        from svc_common.gctune import tune_for_serving

        tune_for_serving(args.serving_gc)
    out = []
    for _ in range(args.sweeps):
        started, cpu = time.perf_counter(), time.process_time()
        result = app.segments.sweep(now - DAY, now)
        wall = time.perf_counter() - started
        out.append((result["candidates"], round(wall, 2), round(time.process_time() - cpu, 2)))
    load = Path("/proc/loadavg").read_text().split()[0]
    print(json.dumps({"sweeps": out, "load": load}), flush=True)
    if args.dump:
        print(json.dumps(digest(app), indent=1), flush=True)
    app.core.database.dispose()


if __name__ == "__main__":
    main()
