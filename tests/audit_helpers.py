"""An audit sink for tests: keeps the records a server writes, so a test can read who touched which customers."""

from __future__ import annotations

from dataclasses import dataclass, field

from svc_common.server import AuditRecord


@dataclass
class ListAuditSink:
    records: list[AuditRecord] = field(default_factory=list)

    async def record(self, record: AuditRecord) -> None:
        self.records.append(record)

    def customers_of(self, method: str) -> list[tuple[str, ...]]:
        """The customers named by the records of ``method`` (e.g. ``GetProfile``), oldest first."""
        return [r.customers for r in self.records if r.method.endswith("/" + method)]
