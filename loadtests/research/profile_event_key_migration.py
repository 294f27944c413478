"""How long profile_0003 (the retained events re-keyed by person, time and event id) takes on a table of a given
size: the rows are copied into the rebuilt table, so an upgrade's time grows with retention.

    PYTHONPATH=$PWD .venv/bin/python loadtests/research/profile_event_key_migration.py --rows 1000000 \
        [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]   # a fresh database is made on it

Without --database-url it runs on a fresh SQLite file. Prints rows, seconds, rows/s and the table's size.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

from svc_common.config import load_settings
from svc_common.db import Database
from svc_common.protection import generate_keyring
from svc_profile.config import ProfileSettings
from svc_profile.store import SCHEMA
from svc_profile.store._sql import ProfileStore


def fill(db: Database, rows: int, persons: int = 100_000) -> None:
    rng = random.Random(7)
    columns = ProfileStore.EVENT_COLUMNS
    insert = sa.text(
        f"INSERT INTO profile_event ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)})"
    )
    start_us = 1_790_000_000_000_000
    for offset in range(0, rows, 50_000):
        batch = []
        for i in range(offset, min(rows, offset + 50_000)):
            person = rng.randrange(persons)
            batch.append(
                dict(
                    zip(
                        columns,
                        (
                            str(uuid.UUID(int=rng.getrandbits(128))),
                            f"p{person:010d}",
                            start_us + i * 1000,
                            rng.choice(("page_view", "quote_view", "fund_view", "trade_filled")),
                            f"s{person}",
                            "home",
                            "{}",
                        ),
                        strict=True,
                    )
                )
            )
        with db.connection(write=True) as conn:
            conn.execute(insert, batch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="qiming-0003-"))
    admin = None
    name = ""
    if args.database_url:
        admin = sa.create_engine(args.database_url, isolation_level="AUTOCOMMIT")
        name = f"qiming_research_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        url = sa.engine.make_url(args.database_url).set(database=name).render_as_string(hide_password=False)
    else:
        url = f"sqlite:///{tmp / 'profile.db'}"
    settings = load_settings(ProfileSettings, data_dir=tmp, database_url=url, keyring_json=generate_keyring().to_json())
    db = Database.from_settings(settings)
    try:
        SCHEMA.migrations.upgrade(db.engine, "profile_0002")
        fill(db, args.rows)
        started = time.perf_counter()
        SCHEMA.migrations.upgrade(db.engine)
        seconds = time.perf_counter() - started
        print(f"{db.engine.dialect.name}: {args.rows:,} rows re-keyed in {seconds:.1f} s ({args.rows / seconds:,.0f} rows/s)")
    finally:
        db.dispose()
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


if __name__ == "__main__":
    main()
