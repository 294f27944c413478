"""Audit lines are written whatever ``log_level`` and ``log_format`` say (review walk-sec 2026-12-06 F9: at WARNING
there were none, and in the text format each line was just ``audit``, without principal, method, status or
customers)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from svc_common.logs import AUDIT_LOGGER, configure_logging
from svc_common.server import AuditRecord, LogAuditSink

_TOUCHED = ("", AUDIT_LOGGER, "sqlalchemy.engine", "alembic.runtime.migration", "grpc._cython")


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """configure_logging() changes process-wide state: put the root's handlers and the levels back."""
    root = logging.getLogger()
    handlers = list(root.handlers)
    levels = {name: logging.getLogger(name).level for name in _TOUCHED}
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def _record() -> AuditRecord:
    return AuditRecord(
        at=datetime.now(UTC),
        principal="crm-gateway",
        roles=("unmask",),
        method="/qiming.profile.v1.ProfileService/GetProfile",
        peer="ipv4:10.0.0.7:40000",
        trace_id="0af7651916cd43dd8448eb211c80319c",
        status="PERMISSION_DENIED",
        customers=("c3001",),
    )


def _audit_lines(level: str, fmt: str) -> list[str]:
    stream = io.StringIO()
    configure_logging(level, fmt, stream=stream)
    asyncio.run(LogAuditSink().record(_record()))
    logging.getLogger("qiming.server").info("an ordinary info line")
    return [line for line in stream.getvalue().splitlines() if AUDIT_LOGGER in line]


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize("level", ["WARNING", "ERROR"])
def test_audit_lines_are_written_when_log_level_is_above_info(level: str) -> None:
    (line,) = _audit_lines(level, "json")
    fields = json.loads(line)
    assert fields["logger"] == AUDIT_LOGGER and fields["level"] == "INFO"
    assert fields["audit_principal"] == "crm-gateway"
    assert fields["rpc_status"] == "PERMISSION_DENIED"
    assert fields["audit_customers"] == ["c3001"]


@pytest.mark.usefixtures("restore_logging")
def test_ordinary_info_lines_still_follow_log_level() -> None:
    stream = io.StringIO()
    configure_logging("WARNING", "json", stream=stream)
    logging.getLogger("qiming.server").info("an ordinary info line")
    logging.getLogger("qiming.audit.detail").debug("below the audit level")
    assert stream.getvalue() == ""


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize("level", ["INFO", "WARNING"])
def test_audit_lines_carry_their_fields_in_the_text_format(level: str) -> None:
    (line,) = _audit_lines(level, "text")
    assert " INFO qiming.audit " in line
    fields = json.loads(line[line.index("{") :])
    assert fields["audit_principal"] == "crm-gateway"
    assert fields["audit_roles"] == ["unmask"]
    assert fields["rpc_method"] == "/qiming.profile.v1.ProfileService/GetProfile"
    assert fields["rpc_status"] == "PERMISSION_DENIED"
    assert fields["peer"] == "ipv4:10.0.0.7:40000"
    assert fields["audit_customers"] == ["c3001"]


@pytest.mark.usefixtures("restore_logging")
def test_text_fields_are_escaped_so_a_value_cannot_forge_a_line() -> None:
    stream = io.StringIO()
    configure_logging("INFO", "text", stream=stream)
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("qiming.server").exception("failed", extra={"customer": "c1\n2026 INFO forged\u202e"})
    first, *rest = stream.getvalue().splitlines()
    assert first.endswith('{"customer": "c1\\n2026 INFO forged\\u202e"}')
    assert rest[0].startswith("Traceback")  # the fields go before the traceback, on the message's line
