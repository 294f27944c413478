"""The consumer's retained-event rows staged two ways, 10,000 synthetic rows of the 11 columns, min of 5 each (CPU ms of
this thread): bound into the in-memory staging table (``store/_stage.py``'s ``Stage``, what the consumer does), and
encoded as one JSON array for an ``INSERT … SELECT value->>0, … FROM json_each(?)`` on the pipeline's thread; then
that insert's own cost.

    PYTHONPATH=$PWD .venv/bin/python loadtests/research/profile_stage_json_each.py

Session 27 (docs/benchmarks.md): 19.1–19.7 ms staged against 13.7–20.3 ms encoded, and 66.6 ms for the json_each
insert on the other thread; not adopted.
"""

from __future__ import annotations

import json
import random
import sqlite3
import time
import uuid

from svc_profile.store._stage import Stage

WIDTH = 11


def rows() -> list[tuple]:
    rng = random.Random(7)
    out = []
    for i in range(10_000):
        out.append(
            (
                str(uuid.uuid4()),
                str(uuid.uuid4()),
                1_700_000_000_000_000 + i,
                rng.choice(["page_view", "quote_view", "trade", "login"]),
                f"sess-{rng.randint(1, 5000)}",
                f"home/screen{rng.randint(1, 40)}",
                '{"a":["s","x"]}' if i % 3 else "{}",
                1,
                f"C{rng.randint(1, 20000):08d}",
                None,
                None,
            )
        )
    return out


def best_ms(run, times: int = 5) -> float:
    best = float("inf")
    for _ in range(times):
        start = time.thread_time()
        run()
        best = min(best, time.thread_time() - start)
    return best * 1000


def main() -> None:
    data = rows()

    def staged() -> None:
        stage = Stage()
        stage.add(data, WIDTH)
        stage.image()

    def encoded() -> str:
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))

    print(f"staged table: {best_ms(staged):.1f} ms; one JSON array: {best_ms(encoded):.1f} ms")
    db = sqlite3.connect(":memory:")
    db.execute(f"CREATE TABLE t ({', '.join(f'c{i}' for i in range(WIDTH))})")
    columns = ", ".join(f"value->>{i}" for i in range(WIDTH))
    text = encoded()
    start = time.thread_time()
    db.execute(f"INSERT INTO t SELECT {columns} FROM json_each(?)", (text,))
    print(f"json_each insert: {(time.thread_time() - start) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
