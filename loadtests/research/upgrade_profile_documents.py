"""An upgrade of svc_profile across 0.2.5's change of JSON encoder (orjson for the features documents and the
retained events): a log consumer of ``--base`` consumes the first half of a stream, this tree's the second half on the
same database; this tree alone consumes the whole stream on another. Every person's features and every retained
event must be the same in both, whoever wrote them.

    PYTHONPATH=$PWD .venv/bin/python loadtests/research/upgrade_profile_documents.py --base c3bb2d4

Each half runs in a process of its own with its tree first on PYTHONPATH (``--base`` extracted with ``git archive``),
on SQLite, with one keyring. Prints what it compared, and how many stored texts this tree wrote otherwise than the
standard library's encoder would have (they parse to the same values).
"""

from __future__ import annotations

import json
import os
import random
import re
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PERSONS = 500
BATCHES = 6
BATCH_EVENTS = 2_000
MIX = ("page_view", "app_click", "quote_view", "fund_view", "login", "trade_filled")


def stream(now_us: int) -> list[list[object]]:
    """The same batches in every process: ids, times and values from one seed."""
    sys.path.insert(0, str(ROOT / "tests"))  # profile_helpers.event, in the tree on PYTHONPATH first
    from profile_helpers import event

    rng = random.Random(5)
    batches = []
    for _ in range(BATCHES):
        batch = []
        for _ in range(BATCH_EVENTS):
            i = rng.randrange(PERSONS)
            kind = rng.choice(MIX)
            props: dict[str, object] = {}
            if kind == "fund_view":
                props = {"product_category": "fund", "fund_type": rng.choice(("equity", "bond", "index"))}
            elif kind == "trade_filled":
                props = {"amount_fen": rng.randrange(100, 10**8), "price": rng.choice((10.5, 1e-07, 2.5e16))}
            batch.append(
                event(
                    kind,
                    user_id=f"K{i:07d}",
                    session_id=f"s{i}-{rng.randrange(3)}",
                    at_us=now_us - rng.randrange(86_400_000_000),
                    screen=kind,
                    event_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    **props,
                )
            )
        batches.append(batch)
    return batches


def consume(data_dir: str, keyring: str, now_us: int, first: int, last: int) -> None:
    """Batches ``first`` to ``last`` (exclusive) through the log consumer of the tree on PYTHONPATH."""
    from svc_common.config import load_settings
    from svc_common.runtime import ServiceRuntime
    from svc_profile.config import ProfileSettings
    from svc_profile.server import build_app
    from svc_profile.store import SCHEMA

    settings = load_settings(ProfileSettings, data_dir=Path(data_dir), keyring_json=keyring)
    runtime = ServiceRuntime.open(SCHEMA, settings)
    app = build_app(runtime)
    app.definitions.load()
    app.definitions.install_pack()
    for i, batch in enumerate(stream(now_us)[first:last], start=first):
        app.consumer.handle(batch, f"c{i}")
    runtime.database.dispose()


def run(tree: Path, data_dir: Path, keyring: str, now_us: int, first: int, last: int) -> None:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    args = ["consume", str(data_dir), keyring, str(now_us), str(first), str(last)]
    subprocess.run([sys.executable, __file__, *args], check=True, env=env)


def stored(data_dir: Path) -> tuple[dict[str, str], dict[str, tuple[str, str | None]]]:
    """Features text by customer id, and (properties, context_fields) text by event id."""
    (path,) = [p for p in data_dir.rglob("*.db")]
    with sqlite3.connect(path) as db:
        features = dict(
            db.execute(
                "SELECT c.customer_id, p.features FROM profile_customer c JOIN profile_person p USING (profile_id)"
            )
        )
        events = {
            row[0]: (row[1], row[2])
            for row in db.execute("SELECT event_id, properties, context_fields FROM profile_event")
        }
    return features, events


def standard(text: str | None) -> str | None:
    return None if text is None else json.dumps(json.loads(text), ensure_ascii=False, separators=(",", ":"))


def scenario(root: Path, base: Path, revision: str) -> None:
    from svc_common.protection import generate_keyring

    keyring, now_us = generate_keyring().to_json(), time.time_ns() // 1000
    upgraded, alone = root / "upgraded", root / "alone"
    half = BATCHES // 2
    run(base, upgraded, keyring, now_us, 0, half)
    run(ROOT, upgraded, keyring, now_us, half, BATCHES)
    run(ROOT, alone, keyring, now_us, 0, BATCHES)
    print(f"{revision} consumed batches 0-{half - 1}, this tree {half}-{BATCHES - 1} on the same database;")
    print(f"this tree alone consumed batches 0-{BATCHES - 1} ({BATCHES * BATCH_EVENTS:,} events) on another")
    up_features, up_events = stored(upgraded)
    al_features, al_events = stored(alone)
    same = sum(json.loads(up_features[c]) == json.loads(al_features.get(c, "null")) for c in up_features)
    print(f"persons: {len(up_features)} and {len(al_features)}; features equal: {same} of {len(al_features)}")
    same = sum(
        [json.loads(t) if t else None for t in up_events[e]] == [json.loads(t) if t else None for t in al_events[e]]
        for e in up_events
        if e in al_events
    )
    print(f"retained events: {len(up_events)} and {len(al_events)}; properties and context equal: {same}")
    texts = [t for t in al_features.values()] + [t for pair in al_events.values() for t in pair if t is not None]
    other = [t for t in texts if t != standard(t)]
    exponents = sum(_exponent(t) == _exponent(standard(t)) for t in other)
    print(f"texts this tree wrote otherwise than the standard encoder would: {len(other)} of {len(texts)}", end="")
    print(f", {exponents} of them in a float's exponent only (e.g. {other[0]})" if other else "")


def _exponent(text: str | None) -> str | None:
    """``text`` with float exponents written one way (orjson ``1e-7``, ``2.5e16``; Python ``1e-07``, ``2.5e+16``)."""
    return None if text is None else re.sub(r"e\+?(-?)0*(\d)", r"e\1\2", text)


if __name__ == "__main__":
    if sys.argv[1:2] == ["consume"]:
        data_dir, keyring, now_us, first, last = sys.argv[2:]
        consume(data_dir, keyring, int(now_us), int(first), int(last))
    else:
        sys.path.insert(0, str(Path(__file__).parent))
        from upgrade_jetstream_index import run_upgrade

        run_upgrade(__doc__, scenario)
