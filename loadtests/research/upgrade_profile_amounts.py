"""svc_profile across 0.2.9's reading of trade amounts: each tree's log consumer, on a database of its own, folds
a trade of ``amount_yuan`` 12345.67 (yuan, as many trading systems send it) and then one of ``amount`` 1e300 (a valid
event).

    PYTHONPATH=$PWD .venv/bin/python loadtests/research/upgrade_profile_amounts.py --base 0cb785e

Each tree runs in a process of its own with its tree first on PYTHONPATH (``--base`` extracted with ``git archive``),
on SQLite, with one keyring. The base has no unit for ``amount_yuan`` (no turnover) and fails the second batch, at
every retry; this tree counts 1,234,567 fen and bounds the absurd amount at 10^12 fen.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DAY_US = 86_400_000_000


def fold(data_dir: str, keyring: str, label: str) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    from profile_helpers import event, ref

    from svc_common.config import load_settings
    from svc_common.runtime import ServiceRuntime
    from svc_profile.config import ProfileSettings
    from svc_profile.server import build_app
    from svc_profile.store import SCHEMA

    settings = load_settings(ProfileSettings, data_dir=Path(data_dir), keyring_json=keyring, finance_pack=False)
    runtime = ServiceRuntime.open(SCHEMA, settings)
    app = build_app(runtime)
    app.definitions.load()
    at = time.time_ns() // 1000 - DAY_US
    for i, (user, name, number) in enumerate((("T1", "amount_yuan", 12345.67), ("T2", "amount", 1e300))):
        trade = event("trade_filled", user, at_us=at)
        trade.properties[name].double_value = number
        outcome = ""
        for _ in range(2):  # the consumer retries a failed batch
            try:
                app.consumer.handle([trade], f"c{i}")
                features = app.profiles.get(ref(user), [], frozenset({"unmask"})).features
                turnover = features["turnover_fen"].money_fen_value if "turnover_fen" in features else 0
                outcome = f"turnover_fen {turnover:,}"
                break
            except Exception as exc:  # what the base raises, at every retry
                outcome = f"batch failed twice: {type(exc).__name__}: {str(exc).splitlines()[0][:60]}"
        print(f"{label}, {name} {number!r}: {outcome}")
    runtime.database.dispose()


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    from upgrade_jetstream_index import run_each_tree

    run_each_tree(__doc__, __file__, fold)
