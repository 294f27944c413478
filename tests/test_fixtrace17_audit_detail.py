"""Session 17, walk "walke" m2: the reason of an erasure (its PIPL ticket) was only in the plain ``profile erased``
log line, not in the tamper-evident audit trail that docs/operations.md sends a compliance officer to. A handler can
now attach small, non-sensitive facts to its call's audit record (``note_audit_detail``); ``DeleteProfile`` records
its reason there, masked as the log line masks it, and the chained audit file (``detail``) and the ``qiming.audit``
line (``audit_detail``) carry it. Lines without a detail are written as before, and both kinds verify."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest
from audit_helpers import KEY, audit_record, write_keyring_file
from profile_helpers import profile_settings, ref
from server_helpers import served_at

from svc_common.audit import ChainedAuditSink, ChainMac, TeeAuditSink, verify_file
from svc_common.audit.verify_cli import verify_command
from svc_common.conditions import to_proto
from svc_common.pb.qiming.profile.v1 import profile_pb2 as pb
from svc_common.pb.qiming.profile.v1 import profile_pb2_grpc as pb_grpc
from svc_common.runtime import ServiceRuntime
from svc_common.server import LogAuditSink
from svc_common.server._call import AUDIT_DETAIL_CHARS, AUDIT_DETAIL_ITEMS, CallInfo, _current, note_audit_detail
from svc_profile.server import build_spec
from svc_profile.store import SCHEMA

DELETE = "/qiming.profile.v1.ProfileService/DeleteProfile"
# review17 m2: an e-mail address stayed in clear (only long digit runs were masked).
REASON = "PIPL-2026-W3: customer phone 136 5555 6666, asked by zhang.san@example.com"
MASKED = "PIPL-2026-W3: customer phone ***, asked by ***"


async def _serve_and_erase(tmp_path: Path, audit_dir: Path) -> None:
    """svc_profile in this process, audited to a chained file and the log, as ``qiming serve profile`` audits."""
    settings = profile_settings(tmp_path, grpc_host="127.0.0.1", grpc_port=0)
    runtime = await asyncio.to_thread(ServiceRuntime.open, SCHEMA, settings)
    chain = ChainedAuditSink.open(audit_dir, KEY, "profile", host="h1")
    sink = TeeAuditSink(chain, LogAuditSink())
    try:
        async with served_at(build_spec(runtime), settings, hooks=True, audit_sink=sink) as (channel, _):
            profiles = pb_grpc.ProfileServiceStub(channel)
            upsert = pb.UpsertAttributesRequest(user=ref("C7"), attributes={"risk_rating": to_proto("C2")})
            await profiles.UpsertAttributes(upsert, timeout=30)
            await profiles.DeleteProfile(pb.DeleteProfileRequest(user=ref("C7"), reason=REASON), timeout=30)
    finally:
        chain.close()
        runtime.database.dispose()


def test_the_erasure_reason_is_in_its_chained_audit_line_and_log_line_masked(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    audit_dir = tmp_path / "audit"
    with caplog.at_level(logging.INFO, logger="qiming.audit"):
        asyncio.run(_serve_and_erase(tmp_path, audit_dir))
    [path] = audit_dir.glob("audit-profile-*.jsonl")
    lines = [json.loads(raw) for raw in path.read_text().splitlines()]
    by_method = {line["method"].rsplit("/", 1)[1]: line for line in lines}
    erasure = by_method["DeleteProfile"]
    assert erasure["detail"] == {"reason": MASKED} and erasure["customers"] == ["C7"]
    assert "detail" not in by_method["UpsertAttributes"]  # a call without a detail: its line as before
    assert "6666" not in path.read_text()
    [logged] = [r for r in caplog.records if getattr(r, "rpc_method", "") == DELETE and r.getMessage() == "audit"]
    assert logged.audit_detail == {"reason": MASKED}  # type: ignore[attr-defined]

    # The chain covers the detail: the file verifies, and a reason edited afterwards is found at its line.
    assert verify_command([audit_dir], None, write_keyring_file(tmp_path)) == 0, capsys.readouterr().out
    raw = path.read_bytes().splitlines(keepends=True)
    number = next(i for i, line in enumerate(raw) if b"DeleteProfile" in line)
    edited = tmp_path / "edited" / path.name
    edited.parent.mkdir()
    raw[number] = raw[number].replace(b"PIPL-2026-W3", b"PIPL-2026-W9")
    edited.write_bytes(b"".join(raw))
    verdict = verify_file(edited, ChainMac(KEY))
    assert verdict.bad_line == number + 1 and "mac does not match" in verdict.reason


def test_older_lines_without_detail_and_new_ones_with_it_verify_as_one_chain(tmp_path: Path) -> None:
    async def write(records: list) -> Path:
        sink = ChainedAuditSink.open(tmp_path, KEY, "profile", host="h1")
        for record in records:
            await sink.record(record)
        sink.close()
        return sink.path

    older = asyncio.run(write([audit_record(1), audit_record(2)]))  # as written before this release
    with_detail = audit_record(3, method=DELETE)
    with_detail = type(with_detail)(**{**with_detail.__dict__, "detail": {"reason": "PIPL-1"}})
    path = asyncio.run(write([with_detail, audit_record(4, customers=tuple(f"c{i}" for i in range(1500)))]))
    assert path == older  # the restart continued the same chain
    lines = [json.loads(raw) for raw in path.read_text().splitlines()]
    assert [line.get("detail") for line in lines] == [None, None, {"reason": "PIPL-1"}, None, None]
    verdict = verify_file(path, ChainMac(KEY))
    assert verdict.ok and verdict.lines == 5


def test_a_detail_is_bounded_and_outside_a_call_nothing_happens() -> None:
    note_audit_detail(reason="no call: ignored")  # no error outside an RPC
    call = CallInfo(method=DELETE, peer="ipv4:127.0.0.1:1", metadata={})
    token = _current.set(call)
    try:
        note_audit_detail(
            reason="x" * 500,
            event_types=[f"t{i}" for i in range(AUDIT_DETAIL_ITEMS + 5)],
            follow=True,
            max_events=10,
            user_id_type=None,
        )
    finally:
        _current.reset(token)
    assert call.detail["reason"] == "x" * AUDIT_DETAIL_CHARS
    assert call.detail["event_types"][:2] == ["t0", "t1"] and call.detail["event_types"][-1] == "... 5 more"
    assert len(call.detail["event_types"]) == AUDIT_DETAIL_ITEMS + 1
    assert (call.detail["follow"], call.detail["max_events"], call.detail["user_id_type"]) == (True, 10, None)


def test_the_reason_is_masked_before_it_is_cut_to_200_characters() -> None:
    """review17b: cut first, an e-mail address or a number straddling character 200 was no longer found, and its head
    went into the audit trail, which is never edited."""
    from svc_profile.service import erasure_reason

    reason = "x" * 190 + " zhang.san@example.com 13800138000"
    kept = erasure_reason(reason)
    assert "zhang" not in kept and "example" not in kept and kept.endswith(" ***")
