"""Memory and CPU of the JetStream collector's de-duplication index (``DedupIndex``), this tree's against another
commit's, each in a child process of its own.

    PYTHONPATH=$PWD .venv/bin/python loadtests/research/collect_index_memory.py [--ids 1000000] [--base REV]

Per tree: the resident memory the index adds per id once it holds ``--ids`` ids (1,000-event packs of random UUIDs
and 32-hex fingerprints, as the collector writes them), the CPU µs per event of ``add_new`` (min of the packs'
means over 5 passes), of ``get`` for indexed ids (1,000 of each of 20 packs, as a retried batch hits), and of ``get``
of one id in each of 100 packs (scattered duplicates). ``--base`` reads that commit's ``_jetstream_parts.py`` with
``git show`` (the module must import against this tree).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODULE = "svc_collect/store/_jetstream_parts.py"

CHILD = r"""
import gc, importlib.util, json, os, sys, time, uuid
spec = importlib.util.spec_from_file_location("parts_under_test", sys.argv[1])
parts = importlib.util.module_from_spec(spec)
sys.modules["parts_under_test"] = parts  # dataclasses look their module up
spec.loader.exec_module(parts)
n = int(sys.argv[2])

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

def packs(count, t0):
    out = []
    for s in range(count):
        ids = tuple(str(uuid.uuid4()) for _ in range(1000))
        fps = tuple(os.urandom(16).hex() for _ in range(1000))
        out.append(parts.Pack(t0 + s, ids, (), (), (), (), fps, (), (), ()))
    return out

# Memory: the packs are made and dropped in chunks, so what stays is what the index keeps.
index = parts.DedupIndex(3_600 * 10**6)
gc.collect()
before = rss()
t0 = 1_700_000_000_000_000
seq = 0
for _ in range(n // 10_000):
    for pack in packs(10, t0 + seq):
        seq += 1
        index.add_new(seq, pack)
gc.collect()
per_id = (rss() - before) / len(index)

# CPU: add_new of fresh packs into an index of 100,000 ids, and get of indexed ids.
best_add = best_get = best_scattered = float("inf")
for _ in range(5):
    small = parts.DedupIndex(3_600 * 10**6)
    fresh = packs(100, t0)
    start = time.process_time()
    for s, pack in enumerate(fresh, 1):
        small.add_new(s, pack)
    best_add = min(best_add, (time.process_time() - start) / 100_000 * 1e6)
    ids = [i for pack in fresh[:20] for i in pack.event_ids]
    get = small.get
    start = time.process_time()
    for event_id in ids:
        get(event_id)
    best_get = min(best_get, (time.process_time() - start) / len(ids) * 1e6)
    scattered = [pack.event_ids[(7 * k) % 1000] for k, pack in enumerate(fresh)]  # one hit per pack
    start = time.process_time()
    for event_id in scattered:
        get(event_id)
    best_scattered = min(best_scattered, (time.process_time() - start) / len(scattered) * 1e6)
print(json.dumps({"bytes_per_id": per_id, "add_new_us": best_add, "get_us": best_get, "scattered_us": best_scattered}))
"""


def measure(module: Path, ids: int) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", CHILD, str(module), str(ids)], capture_output=True, text=True, cwd=ROOT)
    if out.returncode:
        raise SystemExit(out.stderr)
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ids", type=int, default=1_000_000)
    parser.add_argument("--base", help="a commit whose index to measure beside this tree's")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    trees = {"this tree": ROOT / MODULE}
    with tempfile.TemporaryDirectory() as tmp:
        if args.base:
            old = Path(tmp) / "base_parts.py"
            old.write_text(
                subprocess.run(
                    ["git", "show", f"{args.base}:{MODULE}"], check=True, capture_output=True, text=True, cwd=ROOT
                ).stdout
            )
            trees = {args.base: old, **trees}
        for round_ in range(1, args.rounds + 1):
            for name, module in trees.items():
                m = measure(module, args.ids)
                print(
                    f"round {round_} {name:>10}: {m['bytes_per_id']:6.1f} bytes per id at {args.ids:,} ids; "
                    f"add_new {m['add_new_us']:.3f} µs, get {m['get_us']:.3f} µs per event; "
                    f"get of one id in each of 100 packs {m['scattered_us']:.2f} µs"
                )


if __name__ == "__main__":
    main()
