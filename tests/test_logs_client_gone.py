"""A follower of the log that goes away in the middle of a ReadEvents stream (killed, a network drop) ends its call
CANCELLED; svc_collect's log gets no ERROR for it (walk 2026-12-06: gRPC's ``ExecuteBatchError raised in core`` and
OpenTelemetry's ``Failed to detach context``, each at ERROR with a traceback, for every consumer restart)."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import textwrap
from pathlib import Path

from collect_helpers import KEYRING, make_event
from conftest import free_port
from profile_helpers import publish, wait_for

from svc_common.logs import ClientGoneFilter, configure_logging
from svc_common.process import ServerProcess

ROOT = Path(__file__).resolve().parents[1]


def test_a_reader_killed_mid_stream_leaves_no_error_in_the_collector_log(tmp_path: Path) -> None:
    env = {"QIMING_COLLECT_KEYRING_JSON": KEYRING, "QIMING_COLLECT_GRPC_PORT": str(free_port())}
    with ServerProcess("collect", work_dir=tmp_path / "collect", env=env) as collect:
        for start in range(0, 20_000, 5_000):
            publish(collect.address, [make_event("login", f"u{i}") for i in range(start, start + 5_000)])
        reader = textwrap.dedent(
            f"""
            import os, grpc
            from svc_common.pb.qiming.collect.v1 import collect_pb2, collect_pb2_grpc
            channel = grpc.insecure_channel("{collect.address}")
            stub = collect_pb2_grpc.CollectServiceStub(channel)
            read = 0
            for page in stub.ReadEvents(collect_pb2.ReadEventsRequest(follow=True, batch_size=1000), timeout=60):
                read += len(page.events)
                if read >= 2000:
                    os._exit(0)  # gone, as a killed consumer is: no cancel, no goodbye
            """
        )
        for _ in range(3):  # when the abandoned stream is closed (and logged) is up to the garbage collector
            subprocess.run([sys.executable, "-c", reader], check=True, timeout=60, env={"PYTHONPATH": str(ROOT)})
        wait_for(lambda: collect.log_path.read_text().count("CANCELLED") >= 3, timeout=30)  # the calls have ended
        publish(collect.address, [make_event("login", "after")])  # the collector still serves
    lines = [json.loads(line) for line in collect.log_path.read_text().splitlines() if line.startswith("{")]
    errors = [line for line in lines if line.get("level") in ("ERROR", "CRITICAL")]
    assert errors == []
    assert any(line.get("message") == "rpc" and line.get("rpc_status") == "CANCELLED" for line in lines), [
        line.get("rpc_status") for line in lines if line.get("message") == "rpc"
    ]


def test_the_two_records_of_a_client_gone_are_debug_once_logging_is_configured() -> None:
    configure_logging("INFO", "json", io.StringIO())
    try:
        raise ValueError("<Token var=<ContextVar name='current_context'> at 0x1> was created in a different Context")
    except ValueError:
        detach = logging.LogRecord(
            "opentelemetry.context", logging.ERROR, __file__, 1, "Failed to detach context", None, sys.exc_info()
        )
    batch = logging.LogRecord(
        "grpc._cython.cygrpc",
        logging.ERROR,
        __file__,
        1,
        "ExecuteBatchError raised in core by servicer method [%s]",
        ("/qiming.collect.v1.CollectService/ReadEvents",),
        None,
    )
    for record in (detach, batch):
        logger = logging.getLogger(record.name)
        assert any(isinstance(f, ClientGoneFilter) for f in logger.filters)
        assert not logger.filter(record)  # made DEBUG: not handed to the INFO handler
        assert record.levelname == "DEBUG"


def test_other_errors_of_those_loggers_stay_errors() -> None:
    detach = "Failed to detach context"
    keep = logging.LogRecord("opentelemetry.context", logging.ERROR, __file__, 1, detach, None, None)
    assert ClientGoneFilter().filter(keep) and keep.levelno == logging.ERROR  # no ValueError of another context
    other = logging.LogRecord("grpc._cython.cygrpc", logging.ERROR, __file__, 1, "Unexpected error in core", None, None)
    assert ClientGoneFilter().filter(other) and other.levelno == logging.ERROR
