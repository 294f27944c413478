"""Whether the log consumer's staging (svc_profile/store/_stage.py) could hand its rows over as JSON instead: the cost
of staging a batch's 10,000 retained-event rows (11 columns) on the consumer's thread, against encoding them with
orjson there and having SQLite read them back with ``json_each`` on the pipeline's thread (row arrays with ``->>``,
and one flat array pivoted by ``GROUP BY``).

    PYTHONPATH=$PWD .venv/bin/python loadtests/research/profile_stage_json.py [--rows 10000] [--rounds 3]

Prints milliseconds per batch for each step (the least of the rounds). Staging binds each value while holding the
GIL; JSON is cheaper to make, but SQLite parses it again for every column on the pipeline's thread, which has less
time to spare than that (docs/benchmarks.md, "Session 23").
"""

from __future__ import annotations

import argparse
import itertools
import random
import sqlite3
import time
import uuid
from collections.abc import Callable

import orjson

from svc_profile.store._stage import Stage

WIDTH = 11


def rows_like_a_batch(count: int) -> list[tuple[object, ...]]:
    """Retained events as the consumer writes them (ProfileStore.EVENT_COLUMNS): two columns None throughout."""
    rng = random.Random(7)
    properties = '{"product_category":"fund_equity","code":"600000"}'
    return [
        (
            str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            f"p{rng.randrange(20_000):07d}",
            1_796_000_000_000_000 + i,
            "page_view",
            f"s{i}",
            "home/quotes",
            properties,
            "app",
            f"c{i:07d}",
            None,
            None,
        )
        for i in range(count)
    ]


def least_ms(run: Callable[[], object], rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rows = rows_like_a_batch(args.rows)

    def stage() -> bytes:
        staged = Stage()
        staged.add(rows, WIDTH)
        return staged.image()

    as_rows = orjson.dumps(rows)
    flat = orjson.dumps(list(itertools.chain.from_iterable(rows)))
    db = sqlite3.connect(":memory:")
    db.execute(f"CREATE TABLE t ({', '.join(f'c{i}' for i in range(WIDTH))})")
    by_arrow = ", ".join(f"value->>{i}" for i in range(WIDTH))
    by_group = ", ".join(f"max(CASE WHEN key % {WIDTH} = {i} THEN value END)" for i in range(WIDTH))
    steps = {
        "consumer: stage the rows (Stage.add + image)": stage,
        "consumer: orjson.dumps of the rows": lambda: orjson.dumps(rows),
        "pipeline: INSERT … SELECT value->>i FROM json_each": lambda: db.execute(
            f"INSERT INTO t SELECT {by_arrow} FROM json_each(?)", (as_rows,)
        ),
        "pipeline: INSERT … flat array GROUP BY key / 11": lambda: db.execute(
            f"INSERT INTO t SELECT {by_group} FROM json_each(?) GROUP BY key / {WIDTH}", (flat,)
        ),
    }
    print(f"{args.rows:,} rows of {WIDTH} columns, SQLite {sqlite3.sqlite_version}; ms, least of {args.rounds}:")
    for label, run in steps.items():
        print(f"  {label:52s} {least_ms(run, args.rounds):7.1f}")


if __name__ == "__main__":
    main()
