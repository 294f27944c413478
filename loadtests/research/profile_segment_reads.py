"""What CheckMembership and GetSegmentSize (a sample of one) cost on a segment of a million members against one of
one member (svc_profile/segments.py ``check`` and ``size_and_sample``), on SQLite.

    PYTHONPATH=$PWD .venv/bin/python loadtests/research/profile_segment_reads.py [--members 1000000]

Before 0.2.7 CheckMembership counted the segment's members and GetSegmentSize read every member id to draw its
sample; run it in a worktree of an earlier commit to compare.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))

from profile_helpers import CUSTOMER, event, profile_app, profile_settings

from svc_common.pb.qiming.profile.v1 import profile_pb2 as pb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--calls", type=int, default=20)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="qiming-segment-reads-"))
    try:
        with profile_app(profile_settings(work, finance_pack=False)) as app:
            for sid in ("big", "small"):
                app.definitions.create_segment(pb.Segment(segment_id=sid, static_list=pb.StaticSegment()))
            app.consumer.handle([event("login", user_id="U1")], "c1")
            key = app.core.policy.ref(CUSTOMER, "U1", "user")
            app.segments.set_static("small", [key], True)
            m = app.core.store.t["member"]
            with app.core.writing() as conn:
                for start in range(0, args.members, 100_000):
                    rows = [
                        {"segment_id": "big", "profile_id": str(uuid.uuid4()), "is_member": True, "seq": 1,
                         "entered_us": 1, "changed_us": 1}
                        for _ in range(min(100_000, args.members - start))
                    ]  # fmt: skip
                    conn.execute(m.insert(), rows)
            for sid in ("small", "big"):
                started = time.perf_counter()
                for _ in range(args.calls):
                    app.segments.check(sid, key)
                per_call = (time.perf_counter() - started) / args.calls * 1000
                print(f"CheckMembership, segment {sid!r}: {per_call:.2f} ms a call")
            for size in (1, 1000):
                started = time.perf_counter()
                count, sample, _ = app.segments.size_and_sample("big", size)
                elapsed = (time.perf_counter() - started) * 1000
                drawn = len(set(sample))
                print(f"GetSegmentSize of {count:,} members, sample of {size}: {elapsed:.0f} ms ({drawn} drawn)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
