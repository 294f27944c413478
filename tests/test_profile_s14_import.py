"""Security review F8 (/tmp/report-walk-sec.md): ImportAttributes is applied in chunks as the stream arrives (bounded
memory), refuses more than ``max_import_rows`` rows with RESOURCE_EXHAUSTED, applies nothing after its call ended
(cancelled, deadline, server stopping), and a SIGTERM during an import ends the process within its grace.
SetStaticMembers refuses more than ``max_static_members`` users. Real gRPC; SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc import aio
from profile_helpers import profile_app, profile_process, profile_settings, ref, wait_for
from server_helpers import served

from svc_common.conditions import to_proto
from svc_common.pb.qiming.profile.v1 import profile_pb2 as pb
from svc_common.pb.qiming.profile.v1 import profile_pb2_grpc as pb_grpc
from svc_common.runtime import ServiceRuntime
from svc_profile.server import build_spec
from svc_profile.service import ImportStopped, ProfileDomain
from svc_profile.store import SCHEMA


@asynccontextmanager
async def serving(tmp_path: Path, database_url: str, **settings: Any) -> AsyncIterator[aio.Channel]:
    """svc_profile in this process, as ``qiming serve profile`` builds it (no collector)."""
    config = profile_settings(tmp_path, database_url, grpc_host="127.0.0.1", grpc_port=0, **settings)
    runtime = await asyncio.to_thread(ServiceRuntime.open, SCHEMA, config)
    try:
        async with served(build_spec(runtime), config, hooks=True) as channel:
            yield channel
    finally:
        runtime.database.dispose()


def rows(prefix: str, count: int) -> pb.ImportAttributesRequest:
    return pb.ImportAttributesRequest(
        rows=[
            pb.UpsertAttributesRequest(user=ref(f"{prefix}{i}"), attributes={"branch": to_proto("SH")})
            for i in range(count)
        ]
    )


async def exists(profiles: pb_grpc.ProfileServiceStub, user: str) -> bool:
    try:
        await profiles.GetProfile(pb.GetProfileRequest(user=ref(user), parts=["attributes"]), timeout=30)
    except aio.AioRpcError as error:
        assert error.code() == grpc.StatusCode.NOT_FOUND, error
        return False
    return True


async def eventually(predicate: Any, timeout: float = 60.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("timed out waiting")


def test_an_import_is_applied_chunk_by_chunk_while_the_stream_is_open(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    applied: list[int] = []
    real = ProfileDomain.import_chunk

    def recording(self: ProfileDomain, chunk: Any, offset: int, stop: threading.Event) -> Any:
        applied.append(len(chunk))
        return real(self, chunk, offset, stop)

    monkeypatch.setattr(ProfileDomain, "import_chunk", recording)

    async def scenario() -> None:
        async with serving(tmp_path, database_url, import_chunk_rows=10) as channel:
            profiles = pb_grpc.ProfileServiceStub(channel)

            async def requests() -> AsyncIterator[pb.ImportAttributesRequest]:
                yield rows("a", 13)
                # The first chunk is written while the stream is still open: nothing waits for its end.
                await eventually(lambda: exists(profiles, "a9"))
                assert not await exists(profiles, "a10")  # the rest of the message waits for its chunk
                yield rows("b", 4)
                yield rows("c", 3)

            reply = await profiles.ImportAttributes(requests(), timeout=60)
            assert (reply.rows_received, reply.profiles_created, reply.profiles_updated) == (20, 20, 0)
            assert await exists(profiles, "a12") and await exists(profiles, "c2")

    asyncio.run(scenario())
    assert applied == [10, 10]  # what is held is at most a chunk and a message, never the whole stream


@pytest.mark.parametrize("ending", ["cancel", "deadline"])
def test_a_cancelled_import_applies_nothing_after_the_cancel(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch, ending: str
) -> None:
    real = ProfileDomain.import_chunk
    second_started, outcomes = threading.Event(), []

    def held_second_chunk(self: ProfileDomain, chunk: Any, offset: int, stop: threading.Event) -> Any:
        if offset:  # the second chunk waits for the call to end: it must then apply nothing
            second_started.set()
            assert stop.wait(30), "the cancelled call never told its chunk to stop"
        try:
            result = real(self, chunk, offset, stop)
        except ImportStopped as stopped:
            outcomes.append(stopped)
            raise
        outcomes.append(result)
        return result

    monkeypatch.setattr(ProfileDomain, "import_chunk", held_second_chunk)

    async def scenario() -> None:
        async with serving(tmp_path, database_url, import_chunk_rows=10) as channel:
            profiles = pb_grpc.ProfileServiceStub(channel)
            never = asyncio.Event()

            async def requests() -> AsyncIterator[pb.ImportAttributesRequest]:
                yield rows("a", 10)
                yield rows("b", 10)
                yield rows("c", 5)  # less than a chunk: held until the stream ends
                await never.wait()  # the client holds the stream open, then cancels

            call = profiles.ImportAttributes(requests(), timeout=60 if ending == "cancel" else 10)
            assert await asyncio.to_thread(second_started.wait, 30)
            if ending == "cancel":
                call.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await call
            else:  # the client's deadline passes while the second chunk waits
                with pytest.raises(aio.AioRpcError) as ended:
                    await call
                assert ended.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            await eventually(lambda: asyncio.sleep(0, len(outcomes) == 2))
            assert isinstance(outcomes[1], ImportStopped)
            # A later import is served (the cancelled one is over) and the cancelled one left only its first chunk.
            reply = await profiles.ImportAttributes(aiter_of(rows("z", 1)), timeout=30)
            assert reply.profiles_created == 1
            assert await exists(profiles, "a9")
            assert not await exists(profiles, "b0") and not await exists(profiles, "c0")

    asyncio.run(scenario())


async def aiter_of(*messages: Any) -> AsyncIterator[Any]:
    for message in messages:
        yield message


def test_a_chunk_stops_before_its_next_row_once_told_and_is_rolled_back(tmp_path: Path, database_url: str) -> None:
    with profile_app(profile_settings(tmp_path, database_url)) as app:
        chunk = list(rows("s", 3).rows)
        stop = threading.Event()
        write = app.profiles._write_attributes

        def write_then_stop(*args: Any) -> None:
            write(*args)
            stop.set()  # the call ended while the first row was being written

        app.profiles._write_attributes = write_then_stop  # type: ignore[method-assign]
        with pytest.raises(ImportStopped, match="before row 1"):
            app.profiles.import_chunk(chunk, 0, stop)
        app.profiles._write_attributes = write  # type: ignore[method-assign]
        with app.core.database.connection() as conn:
            assert app.core.store.lookup_ids(conn, [app.core.policy.ref(ref("s0").type, "s0", "user")]) == {}
        assert app.profiles.import_chunk(chunk, 0, threading.Event())[:2] == (3, 0)
        assert app.profiles.import_chunk(chunk, 0, threading.Event())[:2] == (0, 3)  # a retry: the same upserts


def test_too_many_rows_or_members_are_resource_exhausted_naming_the_limit(tmp_path: Path, database_url: str) -> None:
    async def scenario() -> None:
        settings = {"import_chunk_rows": 10, "max_import_rows": 25, "max_static_members": 3}
        async with serving(tmp_path, database_url, **settings) as channel:
            profiles = pb_grpc.ProfileServiceStub(channel)
            with pytest.raises(aio.AioRpcError) as refused:
                await profiles.ImportAttributes(aiter_of(rows("a", 10), rows("b", 8), rows("c", 8)), timeout=30)
            assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            message = refused.value.details() or ""
            assert "at most 25 rows" in message and "max_import_rows" in message and "first 10 rows" in message
            assert await exists(profiles, "a9")
            assert not await exists(profiles, "b0") and not await exists(profiles, "c0")

            segments = pb_grpc.SegmentServiceStub(channel)
            static = pb.Segment(segment_id="vip", static_list=pb.StaticSegment(source="crm"))
            await segments.CreateSegment(pb.CreateSegmentRequest(segment=static), timeout=30)
            first = pb.SetStaticMembersRequest(segment_id="vip", users=[ref("a0"), ref("a1")])
            with pytest.raises(aio.AioRpcError) as refused:
                await segments.SetStaticMembers(
                    aiter_of(first, pb.SetStaticMembersRequest(users=[ref("a2"), ref("a3")])), timeout=30
                )
            assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "at most 3 users" in (refused.value.details() or "")
            size = await segments.GetSegmentSize(pb.GetSegmentSizeRequest(segment_id="vip"), timeout=30)
            assert size.size == 0
            reply = await segments.SetStaticMembers(aiter_of(first, pb.SetStaticMembersRequest(users=[ref("x")])))
            assert reply.member_count == 2 and [r.value for r in reply.not_found] == ["x"]

    asyncio.run(scenario())


def _half_closed_import(address: str, count: int) -> grpc.Future:
    channel = grpc.insecure_channel(address, options=[("grpc.max_send_message_length", 64 * 1024 * 1024)])
    messages = [rows(f"t{start}-", 1000) for start in range(0, count, 1000)]
    return pb_grpc.ProfileServiceStub(channel).ImportAttributes.future(iter(messages), timeout=600)


def test_sigterm_during_a_long_import_ends_the_process_within_its_grace(tmp_path: Path) -> None:
    env = {"QIMING_PROFILE_SHUTDOWN_GRACE_SECONDS": "1", "QIMING_PROFILE_FINANCE_PACK": "false"}
    with profile_process(tmp_path, **env) as profile:
        call = _half_closed_import(profile.address, 50_000)  # minutes of work: far longer than the grace
        stub = pb_grpc.ProfileServiceStub(grpc.insecure_channel(profile.address))

        def first_chunk_written() -> bool:
            try:
                stub.GetProfile(pb.GetProfileRequest(user=ref("t0-999")), timeout=30)
            except grpc.RpcError:
                return False
            return True

        wait_for(first_chunk_written, timeout=120)
        assert not call.done()
        # Before the fix the worker thread went on writing for minutes after "stopped" and kept the process alive.
        assert profile.terminate(timeout_seconds=60) == 0, profile.log_tail()
        assert call.exception() is not None and call.exception().code() != grpc.StatusCode.OK
