r"""The end-of-run check of the collect ingest load test: does the event log hold exactly the acknowledged events?

The locustfile (``collect_ingest.py``) runs it when Locust quits and writes its ledger (which event ids were
acknowledged, rejected, or sent in a call whose outcome is unknown) to an ids directory first, so the check can
be run again later against the same log:

    .venv/bin/python loadtests/collect_check.py --host 127.0.0.1:50051 \
        --ids-dir loadtests/reports/collect_ingest_b1000_ids
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from svc_common.pb.qiming.collect.v1 import collect_pb2, collect_pb2_grpc

# A ReadEvents message carries up to 10,000 events (the server's cap); leave room above gRPC's 4 MiB default.
_MAX_MESSAGE_BYTES = 256 * 1024 * 1024
_READ_BATCH = 10_000


@dataclass
class Ledger:
    """What one load-test run sent and what the collector answered, by event id."""

    target: int = 0
    acknowledged: set[str] = field(default_factory=set)
    """ACCEPTED, or DUPLICATE on a retry of a call whose first outcome was unknown: durable in the log, once."""
    rejected: dict[str, str] = field(default_factory=dict)
    """REJECTED (quarantined, not in the log): event id -> reason name."""
    unknown: set[str] = field(default_factory=set)
    """Sent in a call that failed (or was cut off) and never got an answer: may or may not be in the log."""
    unexpected_duplicates: set[str] = field(default_factory=set)
    """DUPLICATE on the first send of a fresh UUID: the collector claims to have seen an id nobody sent before."""
    payload_mismatches: set[str] = field(default_factory=set)
    """DUPLICATE with PAYLOAD_MISMATCH on a retry of the very same bytes."""
    summary: dict[str, object] = field(default_factory=dict)
    """Counts, times and settings of the run (written as summary.json)."""

    def sent(self) -> int:
        return len(self.acknowledged) + len(self.rejected) + len(self.unknown) + len(self.unexpected_duplicates)

    def write(self, ids_dir: Path) -> None:
        ids_dir.mkdir(parents=True, exist_ok=True)
        _write_lines(ids_dir / "acknowledged.txt", sorted(self.acknowledged))
        _write_lines(ids_dir / "rejected.txt", [f"{i}\t{r}" for i, r in sorted(self.rejected.items())])
        _write_lines(ids_dir / "unknown.txt", sorted(self.unknown))
        _write_lines(ids_dir / "unexpected_duplicates.txt", sorted(self.unexpected_duplicates))
        _write_lines(ids_dir / "payload_mismatches.txt", sorted(self.payload_mismatches))
        (ids_dir / "summary.json").write_text(json.dumps({"target": self.target, **self.summary}, indent=2) + "\n")

    @classmethod
    def read(cls, ids_dir: Path) -> Ledger:
        summary = json.loads((ids_dir / "summary.json").read_text())
        return cls(
            target=int(summary.pop("target")),
            acknowledged=set(_read_lines(ids_dir / "acknowledged.txt")),
            rejected=dict(line.split("\t", 1) for line in _read_lines(ids_dir / "rejected.txt")),
            unknown=set(_read_lines(ids_dir / "unknown.txt")),
            unexpected_duplicates=set(_read_lines(ids_dir / "unexpected_duplicates.txt")),
            payload_mismatches=set(_read_lines(ids_dir / "payload_mismatches.txt")),
            summary=summary,
        )


def _write_lines(path: Path, lines: list[str]) -> None:
    path.write_text("".join(f"{line}\n" for line in lines))


def _read_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


@dataclass
class CheckResult:
    log_events: int = 0
    """Events in the whole log (this run's and any others')."""
    run_events_in_log: int = 0
    acknowledged_missing: list[str] = field(default_factory=list)
    doubled_in_log: list[str] = field(default_factory=list)
    rejected_in_log: list[str] = field(default_factory=list)
    unknown_in_log: int = 0
    read_seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems


def check_log(channel: grpc.Channel, ledger: Ledger) -> CheckResult:
    """Read the whole log from the beginning (no follow) and compare it with the ledger."""
    result = CheckResult()
    stub = collect_pb2_grpc.CollectServiceStub(channel)
    seen: set[str] = set()
    started = time.monotonic()
    request = collect_pb2.ReadEventsRequest(batch_size=_READ_BATCH)
    for reply in stub.ReadEvents(request, timeout=3600):
        for event in reply.events:
            event_id = event.event_id
            result.log_events += 1
            # Any id twice is a failure, this run's or not: exactly-once holds for the whole log.
            if event_id in seen:
                result.doubled_in_log.append(event_id)
                continue
            seen.add(event_id)
            if event_id in ledger.acknowledged:
                result.run_events_in_log += 1
            elif event_id in ledger.unknown:
                result.run_events_in_log += 1
                result.unknown_in_log += 1
            elif event_id in ledger.rejected:
                result.run_events_in_log += 1
                result.rejected_in_log.append(event_id)
    result.read_seconds = time.monotonic() - started
    result.acknowledged_missing = sorted(ledger.acknowledged - seen)

    if not ledger.acknowledged:
        result.problems.append("no event was acknowledged")
    if result.acknowledged_missing:
        result.problems.append(f"{len(result.acknowledged_missing)} acknowledged events are not in the log (lost)")
    if result.doubled_in_log:
        result.problems.append(f"{len(result.doubled_in_log)} event ids appear more than once in the log (doubled)")
    if result.rejected_in_log:
        result.problems.append(f"{len(result.rejected_in_log)} rejected events are in the log")
    if ledger.unexpected_duplicates:
        result.problems.append(
            f"{len(ledger.unexpected_duplicates)} fresh event ids were answered DUPLICATE on their first send"
        )
    if ledger.payload_mismatches:
        result.problems.append(f"{len(ledger.payload_mismatches)} retries of the same bytes got PAYLOAD_MISMATCH")
    if ledger.unknown:
        # Not a loss (nothing unknown was acknowledged), but the run did not get N answers as asked.
        result.problems.append(f"incomplete: {len(ledger.unknown)} events never got an answer after retries")
    if ledger.sent() < ledger.target:
        result.problems.append(f"incomplete: {ledger.sent():,} of {ledger.target:,} events sent")
    return result


def report(ledger: Ledger, result: CheckResult) -> str:
    """The PASS/FAIL summary printed at the end of a run."""
    s = ledger.summary
    seconds = float(s.get("ingest_seconds", 0.0) or 0.0)
    rate = len(ledger.acknowledged) / seconds if seconds > 0 else 0.0
    lines = [
        "",
        "=" * 78,
        f"collect ingest load test: {'PASS' if result.passed else 'FAIL'}",
        f"  batch size {s.get('batch_size')}, {s.get('users')} users, target {ledger.target:,} events",
        f"  calls: {s.get('calls', 0):,} ok, {s.get('failed_calls', 0):,} failed, {s.get('retries', 0):,} retries",
        f"  sent {ledger.sent():,} events: acknowledged {len(ledger.acknowledged):,}"
        f" (of which duplicate on retry {s.get('duplicates_on_retry', 0):,}), rejected {len(ledger.rejected):,},"
        f" unknown {len(ledger.unknown):,}",
        f"  ingest: {seconds:.1f} s, {rate:,.0f} acknowledged events/s",
        f"  log: {result.log_events:,} events read in {result.read_seconds:.1f} s, {result.run_events_in_log:,} from"
        f" this run (of them from unanswered calls: {result.unknown_in_log:,})",
        f"  (1) acknowledged events missing from the log: {len(result.acknowledged_missing):,}",
        f"  (2) event ids more than once in the log: {len(result.doubled_in_log):,}",
        f"  (3) events in the log this run sent but not acknowledged (outside unanswered calls):"
        f" {len(result.rejected_in_log):,}",
    ]
    for problem in result.problems:
        lines.append(f"  FAIL: {problem}")
    for name, sample in (
        ("missing", result.acknowledged_missing),
        ("doubled", result.doubled_in_log),
        ("rejected but logged", result.rejected_in_log),
    ):
        if sample:
            lines.append(f"  first {name}: {', '.join(sample[:5])}")
    lines.append("=" * 78)
    return "\n".join(lines)


def open_channel(host: str) -> grpc.Channel:
    return grpc.insecure_channel(
        host,
        options=[
            ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
        ],
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check a collect ingest load-test run against the event log.")
    parser.add_argument("--host", required=True, help="collector address, e.g. 127.0.0.1:50051")
    parser.add_argument("--ids-dir", required=True, type=Path, help="the run's ids directory (--ids-dir of the run)")
    args = parser.parse_args(argv)
    ledger = Ledger.read(args.ids_dir)
    with open_channel(args.host) as channel:
        result = check_log(channel, ledger)
    print(report(ledger, result))
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
