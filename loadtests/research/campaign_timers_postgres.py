"""The 100,000-timer restart of ``bench_campaign.py --timers`` on PostgreSQL (the bench's observer reads SQLite).

    PYTHONPATH=$PWD .venv/bin/python loadtests/research/campaign_timers_postgres.py [--timers 100000]

The bench's ``prepare`` enters N customers into a journey whose one-hour wait is due, against a fresh database
on the local server (127.0.0.1:5432, dropped at the end); then ``qiming serve campaign`` starts on it, and the
timer table is polled every 100 ms until it is empty. Prints the seconds to serving and to the last timer fired,
the service's CPU seconds and the messages written (one per customer).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))

import bench_campaign_timers as timers  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from cpu_account import cpu_seconds  # noqa: E402

from svc_common.process import ServerProcess  # noqa: E402

ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--timers", type=int, default=100_000)
    count = parser.parse_args().timers
    admin = sa.create_engine(ADMIN, isolation_level="AUTOCOMMIT")
    name = f"research_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(ADMIN).set(database=name).render_as_string(hide_password=False)
    service = timers._service
    timers._service = lambda data_dir, clock, **settings: service(data_dir, clock, database_url=url, **settings)
    engine = sa.create_engine(url)
    try:
        work = Path(tempfile.mkdtemp(prefix="qiming-timers-pg-"))
        print(f"prepare: {timers.prepare(work, count):.1f} s", flush=True)
        env = {"QIMING_CAMPAIGN_DATABASE_URL": url, "PYTHONPATH": str(timers.REPO)}
        server = ServerProcess("campaign", work_dir=work / "serve", env=env)
        spawned = time.perf_counter()
        server.start()
        serving = time.perf_counter() - spawned
        assert server.process is not None
        while True:
            with engine.connect() as conn:
                if not conn.execute(sa.text("SELECT count(*) FROM campaign_timer")).scalar():
                    break
            time.sleep(0.1)
        fired = time.perf_counter() - spawned
        cpu = cpu_seconds(server.process.pid)
        with engine.connect() as conn:
            messages = conn.execute(sa.text("SELECT count(*) FROM campaign_message")).scalar()
        server.terminate()
        print(f"serving {serving:.1f} s, all fired {fired:.1f} s, service CPU {cpu:.1f} s, messages {messages}")
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
