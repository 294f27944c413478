#!/usr/bin/env python3
"""svc_modeling benchmarks over real gRPC, each beside the raw library doing the same work in the same run.

    .venv/bin/python loadtests/bench_modeling.py            # or: make bench-modeling
    .venv/bin/python loadtests/bench_modeling.py --customers 200000 --repeats 1   # a quick run

What it measures (svc_modeling runs as its own process, `qiming serve modeling`, SQLite, default settings):

1. Propensity training on Hillstrom (visit ~ 7 features + arm, LightGBM 200 rounds, isotonic calibration,
   held-out metrics): TrainModel until the job SUCCEEDED (watched with WatchJob), against LightGBM + isotonic
   fitted directly on the same rows with the same parameters.
2. Uplift training on Hillstrom's Mens-vs-No-E-Mail split (visit, T-learner, S-learner baseline, 50 bootstrap
   rounds): TrainUplift until SUCCEEDED, against the same fits and bootstrap done directly.
3. Batch scoring of N customers (default 1,000,000: Hillstrom rows resampled, each with its own customer id):
   ScoreCustomers until SUCCEEDED (the score table stored in the database), against LightGBM's predict on the
   same rows. The upload is timed separately. The write-back to svc_profile is not connected (not timed).
4. What-if: WhatIf (shift recency by one month for all 64,000 Hillstrom customers) and ResponseCurve (20
   points), median latency over repeated calls after a first call that loads the analysis.

Prints a Markdown table; ratios are service time over raw-library time (best of ``--repeats`` runs each).

With ``--writeback N`` it measures only the score write-back instead (``qiming serve all``, SQLite): N profiles
are bulk-inserted into svc_profile's database (set-up), svc_profile's start-up sweep is waited for (set-up) and
N customers uploaded; then ScoreCustomers scores them and writes each score to svc_profile as a tag, batch by
batch as they are scored. The job's own timers (score table lineage ``seconds``) give scoring and the write-back
(from the start of scoring to svc_profile's reply: the two overlap), beside the same N tags written straight to
svc_profile's WriteTagsStream by this client (the write-back's own floor, no svc_modeling in between).

    PYTHONPATH=$PWD .venv/bin/python loadtests/bench_modeling.py --writeback 100000 \
        [--profile-sweep-seconds 3600] [--separate]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import grpc
import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression
from sklearn.model_selection import train_test_split

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from svc_common.pb.qiming.common.v1 import job_pb2, types_pb2
from svc_common.pb.qiming.modeling.v1 import modeling_pb2 as pb
from svc_common.pb.qiming.modeling.v1 import modeling_pb2_grpc as pb_grpc
from svc_common.pb.qiming.profile.v1 import profile_pb2 as ppb
from svc_common.pb.qiming.profile.v1 import profile_pb2_grpc as pgrpc
from svc_common.process import ServerProcess
from svc_modeling.datasets import load_hillstrom
from svc_modeling.methods import uplift as uplift_methods
from svc_modeling.methods.checks import FeatureEncoder
from svc_modeling.methods.stats import lgb_params

FEATURES = ["recency", "history", "mens", "womens", "zip_code", "newbie", "channel", "segment"]
UPLIFT_FEATURES = ["recency", "history", "mens", "womens", "zip_code", "newbie", "channel"]
CHUNK = 1024 * 1024
ROOT = Path(__file__).resolve().parent.parent


def upload(stub: pb_grpc.DatasetServiceStub, name: str, frame: pd.DataFrame, **dataset: object) -> pb.Dataset:
    content = frame.to_csv(index=False).encode()

    def messages():
        yield pb.UploadFileRequest(dataset=pb.Dataset(name=name, **dataset), format=pb.FILE_FORMAT_CSV)
        for i in range(0, len(content), CHUNK):
            yield pb.UploadFileRequest(chunk=content[i : i + CHUNK])

    return stub.UploadFile(messages(), timeout=600).dataset


def run_job(jobs: pb_grpc.JobServiceStub, start) -> tuple[job_pb2.Job, float]:
    began = time.perf_counter()
    job = start()
    for update in jobs.WatchJob(pb.WatchJobRequest(job_id=job.job_id), timeout=1800):
        job = update.job
    elapsed = time.perf_counter() - began
    if job.state != job_pb2.JOB_STATE_SUCCEEDED:
        raise SystemExit(f"{job.kind} ended {job_pb2.JobState.Name(job.state)}: {job.error_message}")
    return job, elapsed


def best(times: list[float]) -> float:
    return min(times)


def raw_propensity(data: pd.DataFrame) -> tuple[float, object]:
    """LightGBM + isotonic on the same split, matrix and parameters as the service (seed 0, 25% test).
    Returns the seconds and a scorer (encode + predict + calibrate) for the scoring comparison."""
    began = time.perf_counter()
    text = [c for c in FEATURES if pd.api.types.is_string_dtype(data[c])]
    encoder = FeatureEncoder(FEATURES, {c: sorted(str(v) for v in data[c].dropna().unique()) for c in text})
    x = encoder.transform(data)
    y = data["visit"].to_numpy(dtype=float)
    train, test = train_test_split(np.arange(y.size), test_size=0.25, random_state=0, stratify=y)
    fit, cal = train_test_split(train, test_size=0.2, random_state=1, stratify=y[train])
    model = lgb.LGBMClassifier(
        n_estimators=200, learning_rate=0.05, num_leaves=31, max_depth=-1, n_jobs=1, random_state=0,
        deterministic=True, force_row_wise=True, verbose=-1,
    )  # fmt: skip
    model.fit(x[fit], y[fit], categorical_feature=encoder.categorical_indices)
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(model.predict_proba(x[cal])[:, 1], y[cal])
    iso.predict(model.predict_proba(x[test])[:, 1])
    seconds = time.perf_counter() - began
    return seconds, lambda frame: iso.predict(model.predict_proba(encoder.transform(frame))[:, 1])


def raw_uplift(data: pd.DataFrame, rounds: int) -> float:
    """T-learner, S-learner baseline and the bootstrap, with the library directly, on the same split."""
    began = time.perf_counter()
    rows = data[data["segment"].isin(["Mens E-Mail", "No E-Mail"])].reset_index(drop=True)
    x = pd.get_dummies(rows[UPLIFT_FEATURES], dtype=float).to_numpy()
    t = (rows["segment"] == "Mens E-Mail").to_numpy(dtype=float)
    y = rows["visit"].to_numpy(dtype=float)
    test = np.random.default_rng(0).random(y.size) < 0.3
    params = lgb_params(0)
    mu1 = lgb.LGBMRegressor(**params).fit(x[~test & (t == 1)], y[~test & (t == 1)])
    mu0 = lgb.LGBMRegressor(**params).fit(x[~test & (t == 0)], y[~test & (t == 0)])
    s = lgb.LGBMRegressor(**params).fit(np.column_stack([x[~test], t[~test]]), y[~test])
    xt = x[test]
    score = mu1.predict(xt) - mu0.predict(xt)
    base = s.predict(np.column_stack([xt, np.ones(len(xt))])) - s.predict(np.column_stack([xt, np.zeros(len(xt))]))
    uplift_methods.bootstrap_quality(score, base, t[test], y[test], rounds, 0)
    return time.perf_counter() - began


def create_profiles(data_dir: Path, n: int) -> tuple[list[str], float]:
    """n profiles bulk-inserted into svc_profile's database before it starts (bench_profile's generator)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_profile import generate, open_app

    began = time.perf_counter()
    app = open_app("", data_dir)
    ids = [customer for _pid, customer, _device in generate(app, n)]
    app.core.database.dispose()
    return ids, time.perf_counter() - began


def define_direct_tag(channel: grpc.Channel) -> float:
    """The baseline's tag; also waits until svc_profile answers writes (its start-up work on a large database)."""
    definition = ppb.TagDefinition(
        name="bench_direct",
        display_name="bench_direct",
        value_type=types_pb2.VALUE_TYPE_DOUBLE,
        external=ppb.ExternalTag(writer="bench"),
    )
    began = time.perf_counter()
    request = ppb.CreateTagDefinitionRequest(definition=definition)
    pgrpc.TagServiceStub(channel).CreateTagDefinition(request, timeout=1800, wait_for_ready=True)
    return time.perf_counter() - began


def wait_for_sweep(process: ServerProcess, timeout: float = 3600) -> float:
    """Wait until svc_profile's first time sweep has ended (its log says ``sweep: … in …s`` at DEBUG).

    At start svc_profile sweeps for the day boundaries that passed while it was down: with generated profiles
    that re-evaluates most of them, holding its writer for seconds (minutes at 1,000,000). Set-up, not the
    write-back: measured while it runs, the first stream shared svc_profile with it and the next did not."""
    began = time.perf_counter()
    while time.perf_counter() - began < timeout:
        if '"message": "sweep: ' in process.log_path.read_text(errors="replace"):
            return time.perf_counter() - began
        time.sleep(0.5)
    raise SystemExit(f"svc_profile's start-up sweep did not end in {timeout:.0f} s")


def write_tags_directly(channel: grpc.Channel, ids: list[str], values: np.ndarray, batch: int = 5000) -> float:
    """The same number of DOUBLE tags straight to svc_profile: the write-back's floor."""
    tags = pgrpc.TagServiceStub(channel)
    provenance = types_pb2.Provenance(source=types_pb2.Provenance.SOURCE_MODEL, writer="bench", writer_version="1")

    def messages():
        for start in range(0, len(ids), batch):
            writes = [
                ppb.TagWrite(
                    user=types_pb2.UserRef(type=types_pb2.ID_TYPE_CUSTOMER, value=c),
                    tag_name="bench_direct",
                    value=types_pb2.Value(double_value=float(v)),
                )
                for c, v in zip(ids[start : start + batch], values[start : start + batch], strict=True)
            ]
            yield ppb.WriteTagsStreamRequest(writes=writes, provenance=provenance if start == 0 else None)

    began = time.perf_counter()
    reply = tags.WriteTagsStream(messages(), timeout=3600)
    assert reply.written_count == len(ids), reply.written_count
    return time.perf_counter() - began


def bench_writeback(
    n: int, hillstrom: pd.DataFrame, sweep_seconds: int = 0, separate: bool = False
) -> list[tuple[str, str, str, str]]:
    """ScoreCustomers of n customers with the write-back to svc_profile, phase by phase (see the module doc).

    ``separate``: svc_profile and svc_modeling as two processes (a deployment's shape) instead of ``serve all``,
    where the scoring job's client and svc_profile's handler share one interpreter lock."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_profile import KEYRING

    results: list[tuple[str, str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="bench-writeback-") as work:
        ids, seconds = create_profiles(Path(work) / "data", n)
        print(f"created {n:,} profiles in svc_profile's database in {seconds:.1f} s (set-up)", flush=True)
        env = {f"QIMING_{name}_KEYRING_JSON": KEYRING for name in ("COLLECT", "PROFILE", "CAMPAIGN", "MODELING")}
        # The services run in their work directory: a relative PYTHONPATH (``PYTHONPATH=.``) would not reach this
        # checkout there, and they would run whatever checkout the virtualenv installs instead.
        env["PYTHONPATH"] = os.pathsep.join(
            [str(ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
        )
        if sweep_seconds:
            env["QIMING_PROFILE_SWEEP_INTERVAL_SECONDS"] = str(sweep_seconds)
        env["QIMING_PROFILE_LOG_LEVEL"] = env["QIMING_SUITE_LOG_LEVEL"] = "DEBUG"  # the sweep's end (wait_for_sweep)
        with contextlib.ExitStack() as stack:
            options = [("grpc.max_receive_message_length", 1 << 26)]
            if separate:
                profile = stack.enter_context(
                    ServerProcess("profile", work_dir=Path(work), env=env, startup_timeout_seconds=300)
                )
                env = {**env, "QIMING_MODELING_PROFILE_ADDRESS": profile.address}
                server = stack.enter_context(
                    ServerProcess("modeling", work_dir=Path(work) / "modeling", env=env, startup_timeout_seconds=300)
                )
                profile_channel = stack.enter_context(grpc.insecure_channel(profile.address, options=options))
            else:
                server = stack.enter_context(
                    ServerProcess("all", work_dir=Path(work), env=env, startup_timeout_seconds=300)
                )
            channel = stack.enter_context(grpc.insecure_channel(server.address, options=options))
            if not separate:
                profile_channel = channel
            datasets = pb_grpc.DatasetServiceStub(channel)
            models = pb_grpc.ModelServiceStub(channel)
            jobs = pb_grpc.JobServiceStub(channel)
            first = define_direct_tag(profile_channel)
            print(f"svc_profile took a first write after {first:.1f} s (set-up)", flush=True)
            swept = wait_for_sweep(profile if separate else server)
            print(f"svc_profile's start-up sweep ended {swept:.1f} s later (set-up)", flush=True)
            ds = upload(datasets, "hillstrom", hillstrom)
            request = pb.TrainModelRequest(
                model_name="bench_visit", dataset_id=ds.dataset_id, label_column="visit", feature_columns=FEATURES
            )
            run_job(jobs, lambda: models.TrainModel(request, timeout=60).job)
            rng = np.random.default_rng(0)
            big = hillstrom.iloc[rng.integers(0, len(hillstrom), n)].reset_index(drop=True)
            big.insert(0, "customer_id", ids)
            began = time.perf_counter()
            big_ds = upload(datasets, "customers", big, customer_id_column="customer_id")
            print(f"uploaded {n:,} customers in {time.perf_counter() - began:.1f} s (set-up)", flush=True)

            score = pb.ScoreCustomersRequest(model_name="bench_visit", dataset_id=big_ds.dataset_id, tag_name="visit")
            began = time.perf_counter()
            job = models.ScoreCustomers(score, timeout=60).job
            for update in jobs.WatchJob(pb.WatchJobRequest(job_id=job.job_id), timeout=7200):
                job = update.job
            total = time.perf_counter() - began
            if job.state != job_pb2.JOB_STATE_SUCCEEDED:
                raise SystemExit(f"score_customers ended {job_pb2.JobState.Name(job.state)}: {job.error_message}")
            table = datasets.GetDataset(pb.GetDatasetRequest(dataset_id=job.result_name), timeout=60).dataset
            assert table.lineage["profile_writeback"] == f"written {n}", table.lineage["profile_writeback"]
            phases = dict(p.split(" ") for p in table.lineage["seconds"].split(", "))  # the job's own timers
            scoring, writeback = float(phases["scoring"]), float(phases["write-back"])
            print(f"ScoreCustomers with write-back: {total:.1f} s ({table.lineage['seconds']} s)", flush=True)
            direct = write_tags_directly(profile_channel, ids, rng.random(n))
            print(f"{n:,} tags straight to WriteTagsStream: {direct:.1f} s", flush=True)
    results.append(
        (
            f"score {n:,} customers and write the scores to svc_profile as tags "
            + ("(svc_modeling and svc_profile processes)" if separate else "(`qiming serve all`)"),
            f"{total:.1f} s",
            "",
            "",
        )
    )
    results.append(("… scoring (the job's timer; it overlaps the write-back)", f"{scoring:.1f} s", "", ""))
    results.append(
        (
            f"… the write-back of {n:,} tags, from the start of scoring (the job's timer)",
            f"{writeback:.1f} s",
            f"{direct:.1f} s (the same tags sent by a client straight to WriteTagsStream)",
            f"{writeback / direct:.2f}x",
        )
    )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000, help="rows to batch-score")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each training measurement (best is kept)")
    parser.add_argument("--what-if-calls", type=int, default=20)
    parser.add_argument(
        "--writeback", type=int, default=0, metavar="N", help="only measure scoring N customers with the write-back"
    )
    parser.add_argument(
        "--profile-sweep-seconds",
        type=int,
        default=0,
        help="svc_profile's sweep_interval_seconds for --writeback (0: its default, 60 s; its sweep of every "
        "profile then competes with the tag writes)",
    )
    parser.add_argument(
        "--separate",
        action="store_true",
        help="--writeback with svc_profile and svc_modeling as two processes instead of `qiming serve all`",
    )
    args = parser.parse_args()
    if args.writeback:
        print_table(bench_writeback(args.writeback, load_hillstrom(), args.profile_sweep_seconds, args.separate))
        return
    hillstrom = load_hillstrom()
    results: list[tuple[str, str, str, str]] = []

    with (
        tempfile.TemporaryDirectory(prefix="bench-modeling-") as work,
        ServerProcess("modeling", work_dir=Path(work)) as server,
    ):
        options = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]
        with grpc.insecure_channel(server.address, options=options) as channel:
            datasets = pb_grpc.DatasetServiceStub(channel)
            models = pb_grpc.ModelServiceStub(channel)
            uplift = pb_grpc.UpliftServiceStub(channel)
            causal = pb_grpc.CausalServiceStub(channel)
            jobs = pb_grpc.JobServiceStub(channel)
            started = time.perf_counter()
            ds = upload(datasets, "hillstrom", hillstrom)
            print(f"uploaded Hillstrom (64,000 rows) in {time.perf_counter() - started:.2f} s", flush=True)

            # 1. Propensity training.
            service_times, raw_times = [], []
            for i in range(args.repeats):
                request = pb.TrainModelRequest(
                    model_name="bench_visit", dataset_id=ds.dataset_id, label_column="visit", feature_columns=FEATURES
                )
                service_times.append(run_job(jobs, lambda r=request: models.TrainModel(r, timeout=60).job)[1])
                seconds, scorer = raw_propensity(hillstrom)
                raw_times.append(seconds)
                print(
                    f"propensity run {i + 1}: service {service_times[-1]:.2f} s, raw {raw_times[-1]:.2f} s", flush=True
                )
            s, r = best(service_times), best(raw_times)
            results.append(
                (
                    "train propensity (Hillstrom, LightGBM 200 rounds + isotonic)",
                    f"{s:.2f} s",
                    f"{r:.2f} s",
                    f"{s / r:.2f}x",
                )
            )

            # 2. Uplift training (T-learner, Mens vs No E-Mail).
            service_times, raw_times = [], []
            for i in range(args.repeats):
                request = pb.TrainUpliftRequest(
                    model_name="bench_uplift",
                    dataset_id=ds.dataset_id,
                    outcome_column="visit",
                    treatment_column="segment",
                    control_value="No E-Mail",
                    interventions=[pb.Intervention(name="Mens E-Mail")],
                    feature_columns=UPLIFT_FEATURES,
                    learner="t_learner",
                    bootstrap_rounds=50,
                )
                service_times.append(run_job(jobs, lambda r=request: uplift.TrainUplift(r, timeout=60).job)[1])
                raw_times.append(raw_uplift(hillstrom, 50))
                print(f"uplift run {i + 1}: service {service_times[-1]:.2f} s, raw {raw_times[-1]:.2f} s", flush=True)
            s, r = best(service_times), best(raw_times)
            results.append(
                (
                    "train uplift (Mens vs none, T-learner + S baseline + 50 bootstraps)",
                    f"{s:.2f} s",
                    f"{r:.2f} s",
                    f"{s / r:.2f}x",
                )
            )

            # 3. Batch scoring.
            rng = np.random.default_rng(0)
            big = hillstrom.iloc[rng.integers(0, len(hillstrom), args.customers)].reset_index(drop=True)
            big.insert(0, "customer_id", [f"c{i:07d}" for i in range(len(big))])
            started = time.perf_counter()
            big_ds = upload(datasets, "customers", big, customer_id_column="customer_id")
            upload_seconds = time.perf_counter() - started
            print(f"uploaded {args.customers:,} customers in {upload_seconds:.1f} s", flush=True)
            request = pb.ScoreCustomersRequest(model_name="bench_visit", dataset_id=big_ds.dataset_id)
            job, score_seconds = run_job(jobs, lambda: models.ScoreCustomers(request, timeout=60).job)
            table = datasets.GetDataset(pb.GetDatasetRequest(dataset_id=job.result_name), timeout=60).dataset
            assert table.row_count == args.customers
            began = time.perf_counter()
            scorer(big)
            raw_score = time.perf_counter() - began
            results.append(
                (
                    f"score {args.customers:,} customers (table stored; upload {upload_seconds:.1f} s not counted)",
                    f"{score_seconds:.2f} s",
                    f"{raw_score:.2f} s (encode + predict + calibrate, in memory)",
                    f"{score_seconds / raw_score:.2f}x",
                )
            )

            # 4. What-if.
            request = pb.EstimateDriversRequest(
                dataset_id=ds.dataset_id,
                outcome_column="spend",
                factors=["recency", "newbie"],
                confounders=["history", "mens", "womens", "zip_code", "channel"],
            )
            job, drivers_seconds = run_job(jobs, lambda: causal.EstimateDrivers(request, timeout=60).job)
            analysis = job.result_name
            causal.WhatIf(
                pb.WhatIfRequest(analysis_id=analysis, factor="recency", shift_by=1), timeout=60
            )  # warm cache
            everyone, curve = [], []
            for _ in range(args.what_if_calls):
                began = time.perf_counter()
                causal.WhatIf(pb.WhatIfRequest(analysis_id=analysis, factor="recency", shift_by=1), timeout=60)
                everyone.append(time.perf_counter() - began)
                began = time.perf_counter()
                causal.ResponseCurve(pb.ResponseCurveRequest(analysis_id=analysis, factor="recency"), timeout=60)
                curve.append(time.perf_counter() - began)
            results.append(
                (
                    "what-if: shift recency for all 64,000 customers (median)",
                    f"{statistics.median(everyone) * 1000:.0f} ms",
                    "",
                    "",
                )
            )
            results.append(
                ("response curve: recency, 20 points (median)", f"{statistics.median(curve) * 1000:.0f} ms", "", "")
            )
            results.append(
                ("estimate drivers (2 factors, no refutations; first call)", f"{drivers_seconds:.2f} s", "", "")
            )

    print_table(results)


def print_table(results: list[tuple[str, str, str, str]]) -> None:
    print()
    print(f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"LightGBM {lgb.__version__}")  # fmt: skip
    print()
    print("| measurement | through the service | baseline, same run | ratio |")
    print("| --- | ---: | ---: | ---: |")
    for row in results:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
