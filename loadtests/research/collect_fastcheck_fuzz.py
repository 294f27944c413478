"""The event check in C against the Python check on many mutated encodings: the larger run of the comparison
tests/test_collect_fastcheck.py makes (there: 3,000 mutations, here: as many as asked, two sets of limits).

    PYTHONPATH=$PWD .venv/bin/python loadtests/research/collect_fastcheck_fuzz.py --seeds 150

Each seed makes 200 of the tests' generated events and 5,000 byte-level mutations of their encodings (bytes
changed, bits flipped, bytes inserted or deleted); each mutation upb still parses is checked twice by both checks
(the second time with its names and type known to the C check). Prints, per set of limits, how many parsed, how many
answers differed (each shown, up to three) and how many the C check answered itself. Exit 1 on any difference.

Under AddressSanitizer and UndefinedBehaviorSanitizer (a build of the module of its own, preloaded runtimes):

    gcc -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -shared -fPIC $(python3-config --includes) \\
        svc_collect/_fastcheck.c -o /tmp/asan/_fastcheck$(python3-config --extension-suffix)
    cp /tmp/asan/_fastcheck*.so svc_collect/    # the module built in place, for the run (make native after)
    ASAN_OPTIONS=detect_leaks=0 LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)" \\
        PYTHONPATH=$PWD .venv/bin/python loadtests/research/collect_fastcheck_fuzz.py --seeds 20
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))

import test_collect_fastcheck as cases

from svc_common.pb.qiming.common.v1 import event_pb2

LIMITS = ({}, {"max_string_chars": 4096, "max_event_bytes": 65_536, "max_properties_per_event": 256})


def mutated(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 3, 5))):
        at = rng.randrange(len(out))
        roll = rng.random()
        if roll < 0.5:
            out[at] = rng.randrange(256)
        elif roll < 0.7:
            out[at] ^= 1 << rng.randrange(8)
        elif roll < 0.85:
            out[at:at] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 4)))
        else:
            del out[at : at + rng.randrange(1, 4)]
    return bytes(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=20, help="seeds, each 5,000 mutations (default 20)")
    args = parser.parse_args()
    failed = False
    for limits in LIMITS:
        native, python = cases._validators(**limits)
        parsed = differences = answered = 0
        for seed in range(args.seeds):
            rng = random.Random(1000 + seed)
            base = [cases.random_event(rng).SerializeToString(deterministic=True) for _ in range(200)]
            for _ in range(5000):
                data = mutated(rng, rng.choice(base))
                try:
                    event = event_pb2.Event.FromString(data)
                except Exception:  # not an Event any more: the gRPC layer refuses it before any check
                    continue
                parsed += 1
                for _ in range(2):
                    a, b = cases._copy(event), cases._copy(event)
                    x, y = native.check(a, cases.NOW_US), python.check(b, cases.NOW_US)
                    same = a.SerializeToString(deterministic=True) == b.SerializeToString(deterministic=True)
                    if not (cases._same(x, y) and same):
                        differences += 1
                        if differences <= 3:
                            print("DIFFERENT", repr(data)[:300], x, y, sep="\n  ")
                answered += bool(native._native(event.SerializeToString(deterministic=True), cases.NOW_US))
        print(f"limits {limits or 'default (tests)'}: {parsed:,} parsed, {differences} different, {answered:,} by C")
        failed = failed or differences > 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
