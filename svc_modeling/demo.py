"""svc_modeling's part of ``qiming demo``: upload the Hillstrom experiment, estimate each e-mail's effect."""

from __future__ import annotations

from collections.abc import Callable

import grpc

from svc_common.pb.qiming.modeling.v1 import modeling_pb2 as pb
from svc_common.pb.qiming.modeling.v1 import modeling_pb2_grpc as pb_grpc
from svc_modeling.datasets import HILLSTROM_GROUP_MEANS, hillstrom_bytes

CHUNK = 1024 * 1024


def run(channel: grpc.Channel, step: Callable[[str], None]) -> None:
    datasets = pb_grpc.DatasetServiceStub(channel)
    causal = pb_grpc.CausalServiceStub(channel)
    step("svc_modeling: upload the Hillstrom e-mail experiment (64,000 customers) as CSV")
    content = hillstrom_bytes()

    def messages():
        yield pb.UploadFileRequest(dataset=pb.Dataset(name="hillstrom"), format=pb.FILE_FORMAT_CSV)
        for i in range(0, len(content), CHUNK):
            yield pb.UploadFileRequest(chunk=content[i : i + CHUNK])

    try:
        dataset = datasets.UploadFile(messages(), timeout=60).dataset
    except grpc.RpcError as exc:
        if exc.code() != grpc.StatusCode.UNIMPLEMENTED:
            raise
        print("  not available in this install: pip install 'qiming[modeling]' (make venv) to try it")
        return
    print(f"  dataset {dataset.dataset_id}: {dataset.row_count} rows, SM3 {dataset.content_digest[:16]}…")
    step("CausalService/EstimateAverageEffects: each e-mail's effect against no e-mail, with 95% intervals")
    answer = causal.EstimateAverageEffects(
        pb.EstimateAverageEffectsRequest(
            dataset_id=dataset.dataset_id,
            treatment_column="segment",
            control_value="No E-Mail",
            outcome_columns=["visit", "conversion", "spend"],
        ),
        timeout=60,
    )
    control = HILLSTROM_GROUP_MEANS["No E-Mail"]
    for e in answer.effects:
        readme = HILLSTROM_GROUP_MEANS[e.arm][1 + ["visit", "conversion", "spend"].index(e.outcome)]
        expected = readme - control[1 + ["visit", "conversion", "spend"].index(e.outcome)]
        inside = "inside" if e.effect.ci_low <= expected <= e.effect.ci_high else "OUTSIDE"
        print(
            f"  {e.arm:14} {e.outcome:10} {e.effect.value:+.5f} [{e.effect.ci_low:+.5f}, {e.effect.ci_high:+.5f}]"
            f"  README {expected:+.5f} ({inside})"
        )
