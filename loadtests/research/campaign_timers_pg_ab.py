"""The 100,000-timer drain on PostgreSQL, A/B between checkouts, from one prepared template database.

    # once: N customers waiting on due timers, kept as a template database (<prefix>_tpl_<N>; --prefix, default
    # camp: give each checkout's runs its own)
    PYTHONPATH=$PWD .venv/bin/python loadtests/research/campaign_timers_pg_ab.py prepare --timers 100000
    # per run: a copy of the template (CREATE DATABASE ... TEMPLATE), `qiming serve campaign` from TREE on it
    PYTHONPATH=$PWD .venv/bin/python loadtests/research/campaign_timers_pg_ab.py restart --timers 100000 --tree TREE
    # per run: the same engine fires the copy in-process (add --statements: time every statement by its SQL)
    PYTHONPATH=$PWD .venv/bin/python loadtests/research/campaign_timers_pg_ab.py inprocess --timers 100000
    PYTHONPATH=$PWD .venv/bin/python loadtests/research/campaign_timers_pg_ab.py drop --timers 100000

The prepare runs the bench's own (``bench_campaign_timers.prepare``) with ``database_url`` set; the restart is the
one of ``campaign_timers_postgres.py`` (poll of the timer table every 100 ms), with the serving process's CPU
seconds, the database's (``database_cpu_s``: every ``postgres`` process of the machine, other users included;
``service_backends_cpu_s``: the backends of the service's own connections, read before it stops) and the load average
before and after. ``--py-spy FILE`` records the serving process (speedscope JSON);
``--activity`` samples ``pg_stat_activity`` of the service every 50 ms and prints the most frequent active
statements (what the server is busy with). Times before the prepare's clock are still due: every timer fires.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))

import bench_campaign_timers as timers
import sqlalchemy as sa
from cpu_account import cpu_seconds

from svc_common.process import ServerProcess

ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
# Prefix of this script's database names (--prefix): runs of two checkouts at once must not share a template.
PREFIX = "camp"


def url_of(name: str) -> str:
    return sa.engine.make_url(ADMIN).set(database=name).render_as_string(hide_password=False)


def admin(sql: str) -> None:
    engine = sa.create_engine(ADMIN, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(sql))
    finally:
        engine.dispose()


def prepare(count: int) -> None:
    name = f"{PREFIX}_tpl_{count}"
    admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin(f'CREATE DATABASE "{name}"')
    url = url_of(name)
    service = timers._service
    timers._service = lambda data_dir, clock, **settings: service(data_dir, clock, database_url=url, **settings)
    work = Path(tempfile.mkdtemp(prefix="camp-timers-pg-"))
    print(f"prepare {count}: {timers.prepare(work, count):.1f} s into {name}", flush=True)
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text("VACUUM ANALYZE"))
    engine.dispose()


def copy(count: int) -> tuple[str, str]:
    name = f"{PREFIX}_run_{os.getpid()}"
    admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin(f'CREATE DATABASE "{name}" TEMPLATE "{PREFIX}_tpl_{count}"')
    return name, url_of(name)


def database_cpu() -> float:
    """CPU seconds of every ``postgres`` process on this machine, with their exited children's (backends that
    ended). Other users of the same server count too: compare runs made under the same conditions."""
    tick, total = os.sysconf("SC_CLK_TCK"), 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name, fields = text[text.index("(") + 1 : text.rindex(")")], text[text.rindex(")") + 2 :].split()
        if name == "postgres":
            total += sum(int(v) for v in fields[11:15])  # utime, stime, cutime, cstime
    return total / tick


def backends_cpu(url: str) -> float:
    """CPU seconds so far of the backends connected to ``url``'s database (the service's connections alone, unlike
    :func:`database_cpu`: other users of the server do not count)."""
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            pids = conn.execute(
                sa.text(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            ).scalars()
            tick, total = os.sysconf("SC_CLK_TCK"), 0
            for pid in pids:
                try:
                    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                total += int(fields[11]) + int(fields[12])  # utime, stime
            return total / tick
    finally:
        engine.dispose()


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().split(" ", 1)[0]


class Activity(threading.Thread):
    """Samples the active statements of other connections to ``database``."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        self.samples: collections.Counter[str] = collections.Counter()
        self.total = 0
        self.stop = threading.Event()

    def run(self) -> None:
        query = sa.text(
            "SELECT state, wait_event_type, wait_event, left(query, 90) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        )
        with self.engine.connect() as conn:
            while not self.stop.wait(0.05):
                for state, wtype, wevent, query_text in conn.execute(query):
                    self.total += 1
                    if state == "active":
                        self.samples[f"{wtype or '-'}:{wevent or '-'} {' '.join(query_text.split())}"] += 1
                    else:
                        self.samples[f"[{state}]"] += 1

    def report(self) -> None:
        self.stop.set()
        self.join()
        self.engine.dispose()
        print(f"pg_stat_activity: {self.total} samples of the service's connections")
        for text, n in self.samples.most_common(15):
            print(f"  {n:6d}  {text}")


def restart(
    count: int,
    tree: Path,
    batch: int,
    spy: str | None,
    activity: bool,
    workers: int | None = None,
    spy_gil: bool = False,
) -> None:
    name, url = copy(count)
    engine = sa.create_engine(url)
    try:
        work = Path(tempfile.mkdtemp(prefix="camp-timers-pg-"))
        env = {
            "QIMING_CAMPAIGN_DATABASE_URL": url,
            "QIMING_CAMPAIGN_TIMER_BATCH_SIZE": str(batch),
            "QIMING_CAMPAIGN_DELIVERY_POLL_MILLIS": "1000",
            "PYTHONPATH": str(tree.resolve()),
        }
        if workers is not None:  # a tree without the setting ignores it
            env["QIMING_CAMPAIGN_TIMER_WORKERS"] = str(workers)
        load_before = loadavg()
        server = ServerProcess("campaign", work_dir=work / "serve", env=env)
        spawned = time.perf_counter()
        server.start()
        serving = time.perf_counter() - spawned
        assert server.process is not None
        cpu_start, db_start = cpu_seconds(server.process.pid), database_cpu()
        sampler = Activity(url) if activity else None
        if sampler:
            sampler.start()
        recorder = None
        if spy:
            py_spy = Path(sys.executable).parent / "py-spy"
            recorder = subprocess.Popen(
                [str(py_spy), "record", "-p", str(server.process.pid), "-f", "speedscope", "-o", spy, "-r", "200"]
                + (["--gil"] if spy_gil else []),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        while True:
            with engine.connect() as conn:
                if not conn.execute(sa.text("SELECT count(*) FROM campaign_timer")).scalar():
                    break
            time.sleep(0.1)
        fired = time.perf_counter() - spawned
        cpu, db_cpu = cpu_seconds(server.process.pid) - cpu_start, database_cpu() - db_start
        backends = backends_cpu(url)  # before the service goes: its connections' backends are still there
        if recorder:
            recorder.send_signal(signal.SIGINT)
            recorder.wait()
        if sampler:
            sampler.report()
        with engine.connect() as conn:
            messages = conn.execute(sa.text("SELECT count(*) FROM campaign_message")).scalar()
            users = conn.execute(sa.text("SELECT count(DISTINCT user_id) FROM campaign_message")).scalar()
        server.terminate()
        result = {
            "tree": str(tree),
            "batch": batch,
            "timer_workers": workers,
            "serving_s": round(serving, 2),
            "all_fired_s": round(fired, 2),
            "server_cpu_s": round(cpu, 2),
            "database_cpu_s": round(db_cpu, 2),
            "service_backends_cpu_s": round(backends, 2),
            "messages": messages,
            "users": users,
            "load": f"{load_before} -> {loadavg()}",
        }
        print(json.dumps(result), flush=True)
    finally:
        engine.dispose()
        admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def inprocess(count: int, batch: int, statements: bool, activity: bool, shares: int = 1) -> None:
    name, url = copy(count)
    try:
        service, runtime = timers._service(
            Path(tempfile.mkdtemp(prefix="camp-timers-pg-")),
            timers.SystemClock(),
            database_url=url,
            timer_batch_size=batch,
        )
        spent: collections.Counter[str] = collections.Counter()
        calls: collections.Counter[str] = collections.Counter()
        if statements:
            engine = runtime.database.engine if hasattr(runtime.database, "engine") else None
            assert engine is not None, "no engine to time statements on"

            @sa.event.listens_for(engine, "before_cursor_execute")
            def _before(conn, cursor, statement, parameters, context, executemany):
                conn.info["camp_t"] = time.perf_counter()

            @sa.event.listens_for(engine, "after_cursor_execute")
            def _after(conn, cursor, statement, parameters, context, executemany):
                key = " ".join(statement.split())[:80]
                spent[key] += time.perf_counter() - conn.info.pop("camp_t")
                calls[key] += 1

            # Not cursor executions: the COPYs of a batch's rows (where the tree has them) and the commits.
            def timed(owner, attribute, key):
                original = getattr(owner, attribute)

                def wrapper(*args, **kwargs):
                    begun = time.perf_counter()
                    try:
                        return original(*args, **kwargs)
                    finally:
                        spent[key] += time.perf_counter() - begun
                        calls[key] += 1

                setattr(owner, attribute, wrapper)

            from svc_campaign.store import _bulk

            if hasattr(_bulk.DriverWrite, "_copy"):
                timed(_bulk.DriverWrite, "_copy", "COPY (a batch's inserts)")
            timed(sa.engine.Connection, "commit", "COMMIT (sqlalchemy Connection.commit)")
            timed(sa.engine.Transaction, "commit", "COMMIT (sqlalchemy Transaction.commit)")
        sampler = Activity(url) if activity else None
        if sampler:
            sampler.start()
        load_before = loadavg()
        started, cpu, db_cpu = time.perf_counter(), time.process_time(), database_cpu()
        fired = 0
        if shares == 1:
            while n := service.engine.fire_due_timers().timers_fired:
                fired += n
        else:
            # As `qiming serve` does with timer_workers = shares: a loop per share, each in its own thread.
            counts = [0] * shares

            def loop(share: int) -> None:
                while n := service.engine.fire_due_timers(None, (share, shares)).timers_fired:
                    counts[share] += n

            threads = [threading.Thread(target=loop, args=(k,)) for k in range(shares)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            fired = sum(counts)
        wall, cpu, db_cpu = time.perf_counter() - started, time.process_time() - cpu, database_cpu() - db_cpu
        runtime.database.dispose()
        if sampler:
            sampler.report()
        print(
            json.dumps(
                {
                    "fired": fired,
                    "wall_s": round(wall, 2),
                    "cpu_s": round(cpu, 2),
                    "database_cpu_s": round(db_cpu, 2),
                    "load": f"{load_before} -> {loadavg()}",
                }
            )
        )
        for key, seconds in spent.most_common(20):
            print(f"  {seconds:7.2f} s {calls[key]:6d} x  {key}")
    finally:
        admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("action", choices=["prepare", "restart", "inprocess", "drop"])
    parser.add_argument("--timers", type=int, default=100_000)
    parser.add_argument("--tree", type=Path, default=timers.REPO)
    parser.add_argument("--timer-batch", type=int, default=200)
    parser.add_argument("--py-spy", default=None)
    parser.add_argument("--py-spy-gil", action="store_true", help="--py-spy: only the thread holding the GIL (CPU)")
    parser.add_argument("--activity", action="store_true")
    parser.add_argument("--statements", action="store_true")
    parser.add_argument("--shares", type=int, default=1, help="inprocess: timer loops at once (timer_workers)")
    parser.add_argument("--timer-workers", type=int, default=None, help="restart: the service's timer_workers")
    parser.add_argument("--prefix", default=PREFIX, help="prefix of the template's and the runs' database names")
    args = parser.parse_args()
    globals()["PREFIX"] = args.prefix
    if args.action == "prepare":
        prepare(args.timers)
    elif args.action == "restart":
        restart(
            args.timers, args.tree, args.timer_batch, args.py_spy, args.activity, args.timer_workers, args.py_spy_gil
        )
    elif args.action == "inprocess":
        inprocess(args.timers, args.timer_batch, args.statements, args.activity, args.shares)
    else:
        admin(f'DROP DATABASE IF EXISTS "{PREFIX}_tpl_{args.timers}" WITH (FORCE)')


if __name__ == "__main__":
    main()
