"""Shared builders for svc_modeling tests: settings, a started service on a given database, datasets."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from collect_helpers import KEYRING

from svc_common.config import load_settings
from svc_common.pb.qiming.common.v1 import job_pb2
from svc_common.pb.qiming.modeling.v1 import modeling_pb2
from svc_common.runtime import ServiceRuntime
from svc_modeling.config import ModelingSettings
from svc_modeling.server import build_service
from svc_modeling.service import ModelingService
from svc_modeling.store import SCHEMA

SUCCEEDED = job_pb2.JOB_STATE_SUCCEEDED


def modeling_settings(tmp_path: Path, database_url: str | None = None, **overrides: Any) -> ModelingSettings:
    # follow_erasures off: running_service starts the service on an event loop that ends at once (the log
    # follower is a task of the serving loop); tests/test_modeling_erasure.py follows the log in served processes.
    values: dict[str, Any] = {
        "data_dir": tmp_path,
        "job_progress_interval_millis": 50,
        "follow_erasures": False,
        "keyring_json": KEYRING,  # one for every instance a test opens on a database (<service>_key_check)
        **overrides,
    }
    if database_url:
        values["database_url"] = database_url
    return load_settings(ModelingSettings, **values)


@contextlib.contextmanager
def running_service(settings: ModelingSettings) -> Iterator[ModelingService]:
    runtime = ServiceRuntime.open(SCHEMA, settings)
    service = build_service(runtime)
    asyncio.run(service.start())
    try:
        yield service
    finally:
        asyncio.run(service.stop())
        runtime.database.dispose()


def upload_frame(service: ModelingService, name: str, data: pd.DataFrame, **dataset: Any) -> modeling_pb2.Dataset:
    definition = modeling_pb2.Dataset(name=name, **dataset)
    content = data.to_csv(index=False).encode()
    return service.upload_file(definition, modeling_pb2.FILE_FORMAT_CSV, content).dataset


def finished(service: ModelingService, job: job_pb2.Job, timeout_seconds: float = 300) -> job_pb2.Job:
    done = service.jobs.wait(job.job_id, timeout_seconds)
    assert done.state == SUCCEEDED, f"{done.kind}: {job_pb2.JobState.Name(done.state)} {done.error_message}"
    return done


def planted_uplift(n: int, seed: int = 0) -> pd.DataFrame:
    """Randomised data with two interventions and planted heterogeneity: the coupon's effect is max(x0, 0)
    (mean 1/sqrt(2 pi)), the push's is 0.7 when x3 > 0 and -0.3 otherwise (mean 0.2)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    arm = rng.choice(["control", "coupon", "push"], size=n)
    base = 0.5 * x[:, 1] + 0.2 * x[:, 2]
    tau_coupon = 1.0 * np.maximum(x[:, 0], 0)
    tau_push = 1.0 * (x[:, 3] > 0) - 0.3  # harms half the customers
    y = base + np.where(arm == "coupon", tau_coupon, 0) + np.where(arm == "push", tau_push, 0) + rng.normal(size=n)
    frame = pd.DataFrame({f"x{i}": x[:, i] for i in range(4)})
    frame["customer_id"] = [f"c{i}" for i in range(n)]
    frame["arm"] = arm
    frame["y"] = y
    return frame
