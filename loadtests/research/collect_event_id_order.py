"""Why producers should send UUIDv7 event ids: the durable insert rate of log rows into SQLite as the log grows,
with random (UUIDv4) against time-ordered (UUIDv7) ids, everything else equal.

    PYTHONPATH=. .venv/bin/python loadtests/research/collect_event_id_order.py [--existing 200000] [--rows 30000]

A table shaped like ``collect_event`` (unique ``event_id``, ~300-byte payload), WAL with ``synchronous=FULL``
(the collector's settings), pre-filled with ``--existing`` rows of the same id kind, then ``--rows`` rows in
1,000-row transactions. Also prints the WAL bytes written per row: a random id dirties its own index page, and
SQLite's WAL holds whole pages, so each commit writes (and fsyncs) about one page per row.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
import time
import uuid

from svc_common.ids import new_event_id

KINDS = {"v4": lambda: str(uuid.uuid4()), "v7": new_event_id}


def run(kind: str, existing: int, count: int, user_index: bool) -> tuple[float, float]:
    make_id = KINDS[kind]
    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/log.db"
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute(
            "CREATE TABLE collect_event (seq INTEGER PRIMARY KEY, event_id VARCHAR(36) NOT NULL UNIQUE, "
            "event_type TEXT, user_id TEXT, occurred_us INTEGER, fingerprint TEXT, payload BLOB)"
        )
        if user_index:  # the collector's read index by customer (random customers: random pages, like v4 ids)
            db.execute("CREATE INDEX ix_user_seq ON collect_event (user_id, seq)")
        payload = os.urandom(300)

        def rows(start: int, stop: int) -> list[tuple]:
            return [
                (i, make_id(), "page_view", f"C{(i * 7919) % 100_000:08d}", i, os.urandom(16).hex(), payload)
                for i in range(start, stop)
            ]

        insert = "INSERT INTO collect_event VALUES (?, ?, ?, ?, ?, ?, ?)"
        for start in range(0, existing, 10_000):
            db.execute("BEGIN")
            db.executemany(insert, rows(start, min(start + 10_000, existing)))
            db.execute("COMMIT")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.execute("PRAGMA wal_autocheckpoint=0")
        batches = [rows(start, start + 1000) for start in range(existing, existing + count, 1000)]
        started = time.perf_counter()
        for batch in batches:
            db.execute("BEGIN IMMEDIATE")
            db.executemany(insert, batch)
            db.execute("COMMIT")
        elapsed = time.perf_counter() - started
        wal = os.path.getsize(path + "-wal")
        db.close()
    return count / elapsed, wal / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--existing", type=int, default=200_000, help="rows already in the log")
    parser.add_argument("--rows", type=int, default=30_000, help="rows to insert, 1,000 a transaction")
    parser.add_argument("--user-index", action="store_true", help="also index (user_id, seq) as collect_event does")
    args = parser.parse_args()
    for kind in ("v4", "v7", "v4", "v7"):
        rate, wal = run(kind, args.existing, args.rows, args.user_index)
        print(f"UUID{kind}: {rate:>9,.0f} rows/s   WAL {wal:>6,.0f} bytes/row", flush=True)


if __name__ == "__main__":
    main()
