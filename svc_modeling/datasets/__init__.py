"""Data shipped with svc_modeling for tests, demos and benchmarks.

``hillstrom.csv.gz``: Kevin Hillstrom's MineThatData e-mail analytics challenge (2008), 64,000 customers
randomly split into a Mens e-mail, a Womens e-mail and a no-e-mail group, outcomes over the two weeks
after (visit, conversion, spend). Published by Kevin Hillstrom on the MineThatData blog for public
analysis; shipped here unchanged (gzip of the CSV). See docs/modeling.md, "Data shipped".
"""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

HILLSTROM_FILE = "hillstrom.csv.gz"
HILLSTROM_TREATMENT = "segment"
HILLSTROM_CONTROL = "No E-Mail"
HILLSTROM_ARMS = ("Mens E-Mail", "Womens E-Mail")
HILLSTROM_OUTCOMES = ("visit", "conversion", "spend")
HILLSTROM_FEATURES = ("recency", "history", "mens", "womens", "zip_code", "newbie", "channel")

# Group means of the whole file (the table in the data's README): segment → (rows, visit, conversion, spend).
HILLSTROM_GROUP_MEANS = {
    "No E-Mail": (21_306, 0.1062, 0.00573, 0.6528),
    "Womens E-Mail": (21_387, 0.1514, 0.00884, 1.0772),
    "Mens E-Mail": (21_307, 0.1828, 0.01253, 1.4226),
}


def hillstrom_bytes() -> bytes:
    """The CSV, uncompressed (what a client would upload)."""
    import gzip

    return gzip.decompress(resources.files(__package__).joinpath(HILLSTROM_FILE).read_bytes())


def load_hillstrom() -> pd.DataFrame:
    import pandas as pd

    with resources.files(__package__).joinpath(HILLSTROM_FILE).open("rb") as f:
        return pd.read_csv(f, compression="gzip")
