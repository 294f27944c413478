"""Garbage-collector settings for a serving process.

A batch of 1,000 events allocates tens of thousands of short-lived objects. With Python's default young
threshold (700 allocations) and nothing frozen, a collector spent 0.9-1.3 s of a ~6 s run in the cyclic
collector (docs/benchmarks.md). Nearly all of that garbage is freed by reference counting anyway; the cyclic
collector is only a backstop, so it can run less often. Freezing what exists at start-up (modules, classes, the
gRPC and SQLAlchemy machinery: ~100,000 objects) keeps full collections from walking it again and again.
"""

from __future__ import annotations

import gc

# The older generations keep Python's ratios: a middle collection every 10 young ones, a full one every 10
# middle ones (and then only when the long-lived objects grew by a quarter, CPython's own rule).
_OLDER_RATIO = 10


def tune_for_serving(young_threshold: int) -> None:
    """Collect once, freeze the survivors, and collect the young generation every ``young_threshold``
    allocations. Call after start-up, before serving."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(young_threshold, _OLDER_RATIO, _OLDER_RATIO)
