"""What the audit trail's tests share: an audit sink that keeps the records a server writes (so a test can read who
touched which customers), a keyring and its chain key, a keyring file, and an audit record."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from svc_common.audit._chain import chain_key
from svc_common.protection import generate_keyring
from svc_common.server import AuditRecord

KEYRING = generate_keyring()
KEY = chain_key(KEYRING)
INGEST = "/qiming.collect.v1.CollectService/Ingest"
GET_PROFILE = "/qiming.profile.v1.ProfileService/GetProfile"


@dataclass
class ListAuditSink:
    records: list[AuditRecord] = field(default_factory=list)

    async def record(self, record: AuditRecord) -> None:
        self.records.append(record)

    def customers_of(self, method: str) -> list[tuple[str, ...]]:
        """The customers named by the records of ``method`` (e.g. ``GetProfile``), oldest first."""
        return [r.customers for r in self.records if r.method.endswith("/" + method)]


def write_keyring_file(directory: Path) -> Path:
    path = directory / "keyring.json"
    path.write_text(KEYRING.to_json())
    path.chmod(0o600)
    return path


def audit_record(
    number: int,
    *,
    customers: tuple[str, ...] | None = None,
    method: str = INGEST,
    status: str = "OK",
    at: datetime | None = None,
) -> AuditRecord:
    """Record ``number`` (its trace id); by default one customer ``c<number>``, made at a fixed time of the day."""
    return AuditRecord(
        at=at or datetime(2026, 12, 6, 12, 0, number % 60, tzinfo=UTC),
        principal="anonymous",
        roles=(),
        method=method,
        peer="ipv4:127.0.0.1:5000",
        trace_id=f"{number:032x}",
        status=status,
        customers=customers if customers is not None else (f"c{number}",),
    )
