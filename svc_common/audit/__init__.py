"""The tamper-evident audit trail: every audited call as a line of an HMAC-SM3 hash chain (see ``_chain``), written
by :class:`ChainedAuditSink` next to the ``qiming.audit`` log line, and checked by ``qiming audit verify``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from svc_common.audit._chain import GENESIS, ChainMac, Verdict, chain_key, record_bodies, verify_file
from svc_common.audit._sink import ChainedAuditSink, TeeAuditSink, stream_prefix
from svc_common.server import LogAuditSink

if TYPE_CHECKING:
    from svc_common.config import ServiceSettings
    from svc_common.protection import KeyProvider

__all__ = [
    "GENESIS",
    "ChainMac",
    "ChainedAuditSink",
    "TeeAuditSink",
    "Verdict",
    "chain_key",
    "open_audit_sinks",
    "record_bodies",
    "stream_prefix",
    "verify_file",
]


def open_audit_sinks(
    settings: ServiceSettings, keys: KeyProvider, service: str
) -> tuple[LogAuditSink | TeeAuditSink, ChainedAuditSink | None]:
    """The sink a served process audits into (log line, plus the chain unless ``audit_chain_dir`` is off), and the
    chain to close after the server stopped."""
    directory = settings.resolved_audit_chain_dir()
    if directory is None:
        return LogAuditSink(), None
    chain = ChainedAuditSink.open(
        directory,
        chain_key(keys.keyring()),
        service,
        rotate_bytes=settings.audit_chain_rotate_bytes,
        queue_lines=settings.audit_chain_queue_lines,
        queue_wait_seconds=settings.audit_chain_queue_wait_seconds,
    )
    # The chain first: when its backlog refuses the call, the log line records the status the caller gets.
    return TeeAuditSink(chain, LogAuditSink()), chain
