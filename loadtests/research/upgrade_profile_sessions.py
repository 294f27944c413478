"""An upgrade of svc_profile across 0.2.7's change of the ``sessions`` feature (distinct session ids, where it
counted each switch to another session than the last): a log consumer of ``--base`` consumes the first batches, this
tree's the next ones on the same database; this tree alone consumes them all on another.

    PYTHONPATH=$PWD .venv/bin/python loadtests/research/upgrade_profile_sessions.py --base cceab2d

Each consumer runs in a process of its own with its tree first on PYTHONPATH (``--base`` extracted with ``git
archive``), on SQLite, with one keyring. A count kept by the base stays as it was (switches) and goes on from the
last session it saw: the next event of that session adds nothing, a new session one.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SESSIONS = [["a", "b", "a"], ["a", "a", "c", "b"]]
"""The sessions of customer K1's page views, batch by batch."""


def consume(data_dir: str, keyring: str, now_us: int, first: int, last: int) -> None:
    """Batches ``first`` to ``last`` (exclusive) through the log consumer of the tree on PYTHONPATH."""
    sys.path.insert(0, str(ROOT / "tests"))
    from profile_helpers import event

    from svc_common.config import load_settings
    from svc_common.runtime import ServiceRuntime
    from svc_profile.config import ProfileSettings
    from svc_profile.server import build_app
    from svc_profile.store import SCHEMA

    settings = load_settings(ProfileSettings, data_dir=Path(data_dir), keyring_json=keyring)
    runtime = ServiceRuntime.open(SCHEMA, settings)
    app = build_app(runtime)
    app.definitions.load()
    for i in range(first, last):
        at = now_us - 3_600_000_000 + i * 60_000_000
        batch = [event("page_view", "K1", session_id=s, at_us=at + j) for j, s in enumerate(SESSIONS[i])]
        app.consumer.handle(batch, f"c{i}")
    runtime.database.dispose()


def run(tree: Path, data_dir: Path, keyring: str, now_us: int, first: int, last: int) -> None:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    args = ["consume", str(data_dir), keyring, str(now_us), str(first), str(last)]
    subprocess.run([sys.executable, __file__, *args], check=True, env=env)


def features(data_dir: Path) -> dict[str, object]:
    (path,) = [p for p in data_dir.rglob("*.db")]
    with sqlite3.connect(path) as db:
        query = (
            "SELECT p.features FROM profile_customer c JOIN profile_person p USING (profile_id) WHERE c.customer_id = ?"
        )
        (text,) = db.execute(query, ("K1",)).fetchone()
    doc = json.loads(text)
    return {name: doc[name] for name in ("sessions", "_last_session", "_sessions") if name in doc}


def scenario(root: Path, base: Path, revision: str) -> None:
    from svc_common.protection import generate_keyring

    keyring, now_us = generate_keyring().to_json(), time.time_ns() // 1000
    upgraded, alone = root / "upgraded", root / "alone"
    run(base, upgraded, keyring, now_us, 0, 1)
    print(f"{revision}, sessions {' '.join(SESSIONS[0])}: {features(upgraded)}")
    run(ROOT, upgraded, keyring, now_us, 1, 2)
    print(f"then this tree, sessions {' '.join(SESSIONS[1])}: {features(upgraded)}")
    run(ROOT, alone, keyring, now_us, 0, 2)
    print(f"this tree alone, both batches: {features(alone)}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["consume"]:
        data_dir, keyring, now_us, first, last = sys.argv[2:]
        consume(data_dir, keyring, int(now_us), int(first), int(last))
    else:
        sys.path.insert(0, str(Path(__file__).parent))
        from upgrade_jetstream_index import run_upgrade

        run_upgrade(__doc__, scenario)
