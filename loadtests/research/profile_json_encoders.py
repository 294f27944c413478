"""What a features document costs to write: svc_profile's two JSON encoders (``model.compact_json``, the standard
library's C encoder made once; ``model.document_json``, orjson with that fallback) on the documents the log consumer
writes, as ``loadtests/bench_profile.py --only consume`` leaves them.

    PYTHONPATH=$PWD .venv/bin/python loadtests/research/profile_json_encoders.py [--events 40000]

Prints µs per document (the minimum of five rounds) for each encoder, and how many documents' texts differ.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "loadtests"), str(ROOT / "tests")]

import bench_profile  # noqa: E402

from svc_profile.model import compact_json, document_json  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=40_000)
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="profile-json-"))
    try:
        app = bench_profile.open_app("", data_dir)
        bench_profile.bench_consume(app, 20_000, args.events)
        docs = [row[4] for row in app.core.hot.rows.values()]  # the cached persons' features, as the fold leaves them
        app.core.database.dispose()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    entries = sum(len(d) for d in docs) / len(docs)
    print(f"{len(docs):,} features documents, {entries:.1f} entries each on average")
    for name, encode in (("compact_json (standard library)", compact_json), ("document_json (orjson)", document_json)):
        seconds = min(timeit.repeat(lambda e=encode: [e(d) for d in docs], number=1, repeat=5))
        print(f"  {name:34} {seconds / len(docs) * 1e6:6.2f} µs a document")
    differ = sum(compact_json(d) != document_json(d) for d in docs)
    print(f"  texts that differ: {differ}")


if __name__ == "__main__":
    main()
