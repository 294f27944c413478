"""Find the events a collector before 0.2.4 stored with fields their messages do not declare (docs/collect.md,
"Validation": such events are refused since, but those already in the log stay as they were stored and are served
as stored, masked reads included).

    python -m svc_collect.unknown_scan --address HOST:PORT [--after-cursor C] [--metadata KEY=VALUE ...]

Reads the log from its start (or after ``--after-cursor``) through ``ReadEvents`` without ``unmask``, as any reader
does, and prints one tab-separated line per such event: its cursor, id, type, received time and where the field is
(the ``field`` an ``UNKNOWN_FIELD`` rejection would name). The values themselves are never printed. Exit status 0
when none was found, 1 when some were (erase or redact them as docs/collect.md "Erasure (PIPL) and the log" says),
2 on a bad argument or a failed call.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator, Sequence

import grpc

from svc_collect.unknown_fields import describe, holds_unknown
from svc_common.pb.qiming.collect.v1 import collect_pb2, collect_pb2_grpc
from svc_common.pb.qiming.common.v1 import event_pb2


def found_in(pages: Iterable[collect_pb2.ReadEventsResponse]) -> Iterator[tuple[event_pb2.Event, str]]:
    """(event, where) of each event of ``pages`` holding an unknown field."""
    for page in pages:
        for event in page.events:
            if holds_unknown(event, event.SerializeToString(deterministic=True)):
                yield event, describe(event)[0]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m svc_collect.unknown_scan", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--address", required=True, help="the collector's gRPC address, HOST:PORT")
    parser.add_argument("--after-cursor", default="", help="start after this cursor (default: the log's start)")
    parser.add_argument(
        "--metadata", action="append", default=[], metavar="KEY=VALUE", help="call metadata (repeatable)"
    )
    parser.add_argument("--timeout-seconds", type=float, default=3600.0, help="for the whole read (default 3600)")
    args = parser.parse_args(argv)
    metadata = []
    for item in args.metadata:
        key, sep, value = item.partition("=")
        if not sep or not key:
            parser.error(f"--metadata {item!r}: give KEY=VALUE")
        metadata.append((key.lower(), value))
    # after_cursor is in a oneof: set, even to "", it names a cursor (and "" is none); unset reads from the start.
    start = {"after_cursor": args.after_cursor} if args.after_cursor else {}
    request = collect_pb2.ReadEventsRequest(**start)
    count = 0
    try:
        with grpc.insecure_channel(args.address) as channel:
            pages = collect_pb2_grpc.CollectServiceStub(channel).ReadEvents(
                request, timeout=args.timeout_seconds, metadata=metadata or None
            )
            for event, field in found_in(pages):
                count += 1
                received = event.received_at.ToJsonString() if event.HasField("received_at") else ""
                print(f"{event.cursor}\t{event.event_id}\t{event.event_type}\t{received}\t{field}", flush=True)
    except grpc.RpcError as error:
        print(f"unknown_scan: error: ReadEvents failed: {error.code().name}: {error.details()}", file=sys.stderr)
        return 2
    print(f"{count} event(s) holding fields their messages do not declare", file=sys.stderr)
    return 1 if count else 0


if __name__ == "__main__":
    sys.exit(main())
