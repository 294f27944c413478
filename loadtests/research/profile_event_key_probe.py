"""Shapes of the retained-events table (profile_event) against the log consumer's insert: 10,000 events of
random persons (of 20,000) with times random within a day, as ``bench_profile.py --only consume`` makes them,
into a table already holding STORED rows, five times; prints the mean insert and commit ms and the file's MB.
Bare ``sqlite3`` with the service's pragmas (WAL, ``synchronous=FULL``, 64 MiB cache), no Python of the service.

    .venv/bin/python loadtests/research/profile_event_key_probe.py STORED VARIANT[,VARIANT...]

A_current: key on event_id + indexes by person, type, time (profile_0002); B: WITHOUT ROWID clustered on
(profile_id, occurred_us, event_id) + type, time; C: key (profile_id, occurred_us, event_id) + type, time
(profile_0003); D, E: B, C without the time index.
"""
import os
import random
import sqlite3
import sys
import time
import uuid

variants = {
 "A_current": """CREATE TABLE e (event_id VARCHAR(36) PRIMARY KEY, profile_id VARCHAR(36) NOT NULL, occurred_us BIGINT NOT NULL, event_type VARCHAR(128) NOT NULL, session_id VARCHAR(128) NOT NULL, screen VARCHAR(256) NOT NULL, properties TEXT NOT NULL);
CREATE INDEX ip ON e(profile_id, occurred_us); CREATE INDEX it ON e(event_type, occurred_us); CREATE INDEX itm ON e(occurred_us);""",
 "B_clustered_wr": """CREATE TABLE e (event_id VARCHAR(36) NOT NULL, profile_id VARCHAR(36) NOT NULL, occurred_us BIGINT NOT NULL, event_type VARCHAR(128) NOT NULL, session_id VARCHAR(128) NOT NULL, screen VARCHAR(256) NOT NULL, properties TEXT NOT NULL, PRIMARY KEY(profile_id, occurred_us, event_id)) WITHOUT ROWID;
CREATE INDEX it ON e(event_type, occurred_us); CREATE INDEX itm ON e(occurred_us);""",
 "C_pk_rowid": """CREATE TABLE e (event_id VARCHAR(36) NOT NULL, profile_id VARCHAR(36) NOT NULL, occurred_us BIGINT NOT NULL, event_type VARCHAR(128) NOT NULL, session_id VARCHAR(128) NOT NULL, screen VARCHAR(256) NOT NULL, properties TEXT NOT NULL, PRIMARY KEY(profile_id, occurred_us, event_id));
CREATE INDEX it ON e(event_type, occurred_us); CREATE INDEX itm ON e(occurred_us);""",
 "D_clustered_notime": """CREATE TABLE e (event_id VARCHAR(36) NOT NULL, profile_id VARCHAR(36) NOT NULL, occurred_us BIGINT NOT NULL, event_type VARCHAR(128) NOT NULL, session_id VARCHAR(128) NOT NULL, screen VARCHAR(256) NOT NULL, properties TEXT NOT NULL, PRIMARY KEY(profile_id, occurred_us, event_id)) WITHOUT ROWID;
CREATE INDEX it ON e(event_type, occurred_us);""",
 "E_pk_rowid_notime": """CREATE TABLE e (event_id VARCHAR(36) NOT NULL, profile_id VARCHAR(36) NOT NULL, occurred_us BIGINT NOT NULL, event_type VARCHAR(128) NOT NULL, session_id VARCHAR(128) NOT NULL, screen VARCHAR(256) NOT NULL, properties TEXT NOT NULL, PRIMARY KEY(profile_id, occurred_us, event_id));
CREATE INDEX it ON e(event_type, occurred_us);""",
}
TYPES = ["page_view"]*9 + ["click"]*5 + ["quote_view"]*3 + ["fund_view", "login"]
def rows(n, rng, now):
    out = []
    for _ in range(n):
        t = rng.choice(TYPES)
        pid = str(uuid.UUID(int=rng.getrandbits(128) % 20000 * 7919 + 1))
        out.append((str(uuid.uuid4()), pid, now - rng.randrange(86_400_000_000), t, "s1", t, "{}"))
    return out
stored = int(sys.argv[1]); order = sys.argv[2].split(",")
res = {}
for name in order:
    path = f"{os.environ.get('TMPDIR', '/tmp')}/profile_event_probe_{name}.db"
    for s in ("", "-wal", "-shm"):
        if os.path.exists(path + s): os.remove(path + s)
    c = sqlite3.connect(path, isolation_level=None)
    c.execute("PRAGMA journal_mode=WAL"); c.execute("PRAGMA synchronous=FULL"); c.execute("PRAGMA cache_size=-65536")
    c.executescript(variants[name])
    rng = random.Random(1); now = 1_780_000_000_000_000
    sql = "INSERT INTO e VALUES (?,?,?,?,?,?,?) ON CONFLICT DO NOTHING"
    for i in range(0, stored, 10000):
        c.execute("BEGIN"); c.executemany(sql, rows(10000, rng, now)); c.execute("COMMIT")
    ins = com = 0.0
    for k in range(5):
        r = rows(10000, rng, now)
        c.execute("BEGIN"); t0 = time.perf_counter(); c.executemany(sql, r); t1 = time.perf_counter(); c.execute("COMMIT"); t2 = time.perf_counter()
        ins += t1 - t0; com += t2 - t1
    res[name] = (round(ins / 5 * 1000, 1), round(com / 5 * 1000, 1), os.path.getsize(path) // 1_000_000)
    c.close()
    for s in ("", "-wal", "-shm"):
        if os.path.exists(path + s):
            os.remove(path + s)
print(stored, open("/proc/loadavg").read().split()[0], res)
