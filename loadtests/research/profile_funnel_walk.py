"""What one person's funnel walk costs as their step-one events grow (svc_profile/analytics.py ``_walk``): a person
with N events of step one and no step two, steps [a, b], a 400-day window. Before 0.2.7 each step-one occurrence
scanned the rest of its window (quadratic: seconds for a few thousand); the walk now jumps to the next event that
can take each step.

    PYTHONPATH=$PWD .venv/bin/python loadtests/research/profile_funnel_walk.py [--events 1000 2000 4000]

Run it in a worktree of an earlier commit to compare (it finds the walk where that tree has it).
"""

from __future__ import annotations

import argparse
import time
from types import SimpleNamespace

from svc_profile import analytics

WINDOW_US = 400 * 86_400 * 1_000_000


def _row(at: int, kind: str) -> SimpleNamespace:
    return SimpleNamespace(
        occurred_us=at,
        event_type=kind,
        session_id="",
        screen="",
        properties={},
        channel=None,
        user_id=None,
        anonymous_id=None,
        context_fields=None,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, nargs="+", default=[1000, 2000, 4000])
    args = parser.parse_args()
    walk = getattr(analytics, "_walk", None) or analytics.Analytics._walk  # before 0.2.7: a static method
    steps = [("", "a", None), ("", "b", None)]
    for n in args.events:
        rows = [_row(i * 1000, "a") for i in range(n)]
        out: dict = {}
        started = time.perf_counter()
        walk("p", rows, steps, None, None, WINDOW_US, out)
        print(f"{n} step-one events: {time.perf_counter() - started:.3f} s (reached {len(out['p'])} step)")


if __name__ == "__main__":
    main()
