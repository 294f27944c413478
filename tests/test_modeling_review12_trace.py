"""Review 2 of svc_modeling, F3 and F4: a call about one customer names it in the audit record, and a job runs in
the caller's trace: its span is a child of the RPC that started it, and its calls to svc_profile (the score
write-back) carry that trace, so the tags' provenance.trace_id leads back to the caller."""

from __future__ import annotations

import asyncio

import grpc
import numpy as np
import pandas as pd
import pytest
from opentelemetry import trace

from svc_common.errors import InvalidArgument
from svc_common.pb.qiming.common.v1 import types_pb2
from svc_common.pb.qiming.modeling.v1 import modeling_pb2 as pb
from svc_common.pb.qiming.profile.v1 import profile_pb2 as ppb
from svc_common.pb.qiming.profile.v1 import profile_pb2_grpc as pgrpc
from svc_common.server._call import CallInfo, _current
from svc_modeling import server
from tests import test_modeling_profiles as with_profiles
from tests.modeling_helpers import finished, upload_frame
from tests.test_modeling_profiles import SNAPSHOT_US, VIP, at, build, label_rule, train

CUSTOMER = types_pb2.ID_TYPE_CUSTOMER
suite, modeling = with_profiles.suite, with_profiles.modeling  # fixtures: real svc_collect and svc_profile


def _in_call(function):
    """Runs ``function`` as an RPC handler would (on a thread of a call); returns its result and the call."""

    async def scenario():
        call = CallInfo("/qiming.modeling.v1.CausalService/WhatIf", "peer", {})
        _current.set(call)
        return await function(), call

    return asyncio.run(scenario())


def test_a_what_if_for_one_customer_names_it_in_the_audit_record(modeling) -> None:
    rng = np.random.default_rng(5)
    n = 400
    x = rng.normal(size=n)
    data = pd.DataFrame({"cid": [f"k{i}" for i in range(n)], "x": x, "y": 2 * x + rng.normal(size=n)})
    dataset = upload_frame(modeling, "drivers", data, customer_id_column="cid")
    job = finished(
        modeling,
        modeling.drivers.estimate(
            pb.EstimateDriversRequest(dataset_id=dataset.dataset_id, outcome_column="y", factors=["x"])
        ),
    )
    causal = server.CausalServicer(modeling)

    def what_if(**population) -> pb.WhatIfRequest:
        return pb.WhatIfRequest(
            analysis_id=job.result_name, factor="x", shift_by=1.0, population=pb.Population(**population)
        )

    answer, call = _in_call(lambda: causal.WhatIf(what_if(user=types_pb2.UserRef(type=CUSTOMER, value="k7")), None))
    assert answer.population_size == 1 and call.customers == {"k7"}
    _, call = _in_call(lambda: causal.WhatIf(what_if(everyone=True), None))
    assert call.customers == set()  # bulk: no list
    with pytest.raises(InvalidArgument) as refused:
        _in_call(
            lambda: causal.WhatIf(
                what_if(user=types_pb2.UserRef(type=types_pb2.ID_TYPE_FUND_ACCOUNT, value="k7")), None
            )
        )
    assert refused.value.violations[0].field == "population.user.type"


def test_a_jobs_write_back_carries_the_callers_trace(modeling, suite, span_exporter) -> None:
    dataset, _ = build(modeling, name="traced", snapshot_at=at(SNAPSHOT_US), label=label_rule())
    train(modeling, dataset)
    span_exporter.clear()
    with trace.get_tracer("test").start_as_current_span("caller ScoreCustomers") as caller:
        request = pb.ScoreCustomersRequest(model_name="fund_buyer", segment_id="vip", tag_name="score_traced")
        job = modeling.models.score_customers(request)
    finished(modeling, job)
    caller_context = caller.get_span_context()
    spans = span_exporter.get_finished_spans()
    runs = [s for s in spans if s.name == "modeling job score_customers"]
    assert len(runs) == 1 and runs[0].attributes["qiming.job_id"] == job.job_id
    assert runs[0].context.trace_id == caller_context.trace_id
    assert runs[0].parent is not None and runs[0].parent.span_id == caller_context.span_id
    _, profile = suite
    with grpc.insecure_channel(profile.address) as channel:
        tags = pgrpc.TagServiceStub(channel)
        ref = types_pb2.UserRef(type=CUSTOMER, value=VIP[1])
        held = {t.name: t for t in tags.ListUserTags(ppb.ListUserTagsRequest(user=ref), timeout=10).tags}
    assert held["score_traced"].provenance.trace_id == format(caller_context.trace_id, "032x")
