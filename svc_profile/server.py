"""svc_profile's gRPC layer: request → domain call → proto. Nothing else lives here."""

from __future__ import annotations

from svc_common.runtime import ServiceRuntime
from svc_common.server import ServiceSpec, register_not_yet_built


def build_spec(runtime: ServiceRuntime) -> ServiceSpec:
    # The domain of svc_profile is not built yet: its contract is served and every RPC answers
    # UNIMPLEMENTED naming the method, while health, reflection and OpsService work.
    names, register = register_not_yet_built("profile")
    return runtime.spec(names, register)
