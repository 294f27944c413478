"""What svc_collect's gRPC health follows: its service database and, on the JetStream backend, NATS."""

from __future__ import annotations

from svc_collect.service import CollectService
from svc_collect.store import SqlEventLog
from svc_common.runtime import ServiceRuntime
from svc_common.server import DependencyProbe


def dependency_probes(runtime: ServiceRuntime, service: CollectService) -> list[DependencyProbe]:
    """Health follows the service database and, on the JetStream backend, NATS; an append that finds the log
    unavailable turns it NOT_SERVING at once (``CollectService.log_unavailable``)."""
    interval = runtime.settings.dependency_probe_interval_millis  # type: ignore[attr-defined]
    probes = [runtime.database_probe(interval)]
    event_log = service.event_log
    if isinstance(event_log, SqlEventLog):
        service.log_unavailable = probes[0].failed
    else:
        probes.append(DependencyProbe("nats", event_log.probe, interval))  # type: ignore[attr-defined]
        service.log_unavailable = probes[1].failed
    return probes
