"""Memory of the consumer's cached day buckets (``HotPersons.days``, bounded by ``hot_day_buckets``): 10,000 persons
with 30 active days of 3 types each in 91 (900,000 buckets) stored as a batch stores them, measured with tracemalloc.

    PYTHONPATH=$PWD .venv/bin/python loadtests/research/profile_day_cache_memory.py
"""

from __future__ import annotations

import random
import tracemalloc

from svc_profile.hot import HotPersons, PersonRow


def main() -> None:
    rng = random.Random(1)
    persons = [f"{i:036d}" for i in range(10_000)]
    types = ("login", "quote_view", "page_view")
    days = {
        p: {t: {20_400 + d: [rng.randrange(1, 20), 0] for d in rng.sample(range(91), 30)} for t in types}
        for p in persons
    }
    rows = {p: PersonRow(p, 0, 0, "{}", None, {}, "NEW", 0) for p in persons}
    hot = HotPersons(100_000, 10**9)
    hot.day_rows([], types, 20_400)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    hot.store({}, {}, rows, days=days)
    after = tracemalloc.get_traced_memory()[0]
    print(f"{hot.day_buckets} buckets: {(after - before) / hot.day_buckets:.0f} bytes a bucket (person rows included)")


if __name__ == "__main__":
    main()
