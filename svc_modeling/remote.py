"""svc_modeling's clients of svc_profile (segments, declared attributes, static segments) and svc_collect (the
event log), called from job and request threads over synchronous gRPC.

Addresses resolve at each call like the score write-back's: the configured ``profile_address`` /
``collect_address``, else this process when it serves that service too (``qiming serve all``). A service that is
neither configured nor served here, or that does not answer, is ``UNAVAILABLE`` naming the setting or the
address; an unknown segment is ``NOT_FOUND``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from svc_common.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    QimingError,
    Unavailable,
)
from svc_common.pb.qiming.collect.v1 import collect_pb2, collect_pb2_grpc
from svc_common.pb.qiming.common.v1 import event_pb2, types_pb2
from svc_common.pb.qiming.profile.v1 import profile_pb2, profile_pb2_grpc
from svc_common.peers import peer_address
from svc_common.server import blocking_channel
from svc_modeling.jobs import current_job

CUSTOMER = types_pb2.ID_TYPE_CUSTOMER
BATCH_GET = 1000
"""svc_profile's limit of users per BatchGetProfiles call."""
STATIC_PER_MESSAGE = 5000
PROBE_SECONDS = 5.0
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class _Peer:
    service = ""
    setting = ""

    def __init__(self, configured: str = "", timeout_seconds: float = 600.0) -> None:
        self._configured = configured
        self.timeout_seconds = timeout_seconds
        self.address = ""
        self._channel: grpc.Channel | None = None

    def channel(self) -> grpc.Channel:
        address = peer_address(self.service, self._configured)
        if not address:
            raise Unavailable(
                f"svc_{self.service} is not connected: set {self.setting} "
                f"(QIMING_MODELING_{self.setting.upper()}) or serve both in one process (qiming serve all)",
                reason="PEER_NOT_CONFIGURED",
            )
        if self._channel is None or address != self.address:
            self.close()
            self.address = address
            self._channel = blocking_channel(
                address, max_receive_message_length=MAX_MESSAGE_BYTES, max_send_message_length=MAX_MESSAGE_BYTES
            )
        return self._channel

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
        self._channel = None

    def require(self) -> None:
        """Fail fast (UNAVAILABLE naming the address) when the service does not answer."""
        health = health_pb2_grpc.HealthStub(self.channel())
        try:
            health.Check(health_pb2.HealthCheckRequest(), timeout=PROBE_SECONDS)
        except grpc.RpcError as exc:
            raise Unavailable(
                f"svc_{self.service} at {self.address} is not reachable: {exc.code().name}: {exc.details()}",
                reason="PEER_UNAVAILABLE",
            ) from exc

    def error(self, exc: grpc.RpcError, doing: str) -> QimingError:
        return peer_error(self.service, self.address, exc, doing)


def peer_error(service: str, address: str, exc: grpc.RpcError, doing: str) -> QimingError:
    """A peer's refusal keeps its status, so that clients do not retry it (reason PEER_REFUSED): INVALID_ARGUMENT
    (e.g. a name the peer does not take), PERMISSION_DENIED (and UNAUTHENTICATED), FAILED_PRECONDITION (and
    ALREADY_EXISTS, OUT_OF_RANGE); NOT_FOUND as it is. Only a peer that does not answer (or fails) is UNAVAILABLE."""
    code, details = exc.code(), exc.details()
    text = f"svc_{service} at {address} {doing}: {code.name}: {details}"
    if code == grpc.StatusCode.NOT_FOUND:
        return NotFound(text)
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidArgument(text, reason="PEER_REFUSED")
    if code in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED):
        return PermissionDenied(text, reason="PEER_REFUSED")
    if code in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.OUT_OF_RANGE):
        return FailedPrecondition(text, reason="PEER_REFUSED")
    return Unavailable(text, reason="PEER_UNAVAILABLE")


class ProfileClient(_Peer):
    service, setting = "profile", "profile_address"

    def _segments(self) -> profile_pb2_grpc.SegmentServiceStub:
        return profile_pb2_grpc.SegmentServiceStub(self.channel())

    def segment(self, segment_id: str) -> profile_pb2.Segment:
        """The segment (NOT_FOUND naming it when svc_profile does not know it)."""
        try:
            reply = self._segments().GetSegment(profile_pb2.GetSegmentRequest(segment_id=segment_id), timeout=30)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                raise NotFound(f"segment {segment_id!r} is not in svc_profile at {self.address}") from exc
            raise self.error(exc, f"did not return segment {segment_id!r}") from exc
        return reply.segment

    def segment_customers(self, segment_id: str) -> tuple[list[str], int]:
        """The customer ids of the segment's members now, and how many members have no customer id. svc_profile
        serves a bounded number of exports at once (``max_export_streams``): one refused as ``RESOURCE_EXHAUSTED``
        is asked again, waiting longer each time, within ``remote_timeout_seconds``."""
        deadline = time.monotonic() + self.timeout_seconds
        delay = 0.25
        while True:
            try:
                return self._segment_customers(segment_id, deadline - time.monotonic())
            except grpc.RpcError as exc:
                if exc.code() != grpc.StatusCode.RESOURCE_EXHAUSTED or time.monotonic() + delay > deadline:
                    raise self.error(exc, f"did not export segment {segment_id!r}") from exc
            wake = time.monotonic() + delay
            while (left := wake - time.monotonic()) > 0:
                job = current_job()
                if job is not None:
                    job.check()  # a cancelled job stops asking (JobCancelled)
                time.sleep(min(left, 0.25))
            delay = min(2 * delay, 5.0)

    def _segment_customers(self, segment_id: str, timeout_seconds: float) -> tuple[list[str], int]:
        request = profile_pb2.ExportMembersRequest(segment_id=segment_id, batch_size=5000, id_types=[CUSTOMER])
        customers: list[str] = []
        without = 0
        call = self._segments().ExportMembers(request, timeout=max(timeout_seconds, 0.001))
        forget = _cancelled_with_job(call)
        try:
            for page in call:
                for member in page.members:
                    ids = [i.value for i in member.identities if i.type == CUSTOMER]
                    if ids:
                        customers.append(ids[0])
                    else:
                        without += 1
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                raise NotFound(f"segment {segment_id!r} is not in svc_profile at {self.address}") from exc
            if exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and not (customers or without):
                raise  # refused before its first page: asked again
            raise self.error(exc, f"did not export segment {segment_id!r}") from exc
        finally:
            forget()
        return customers, without

    def profiles(self, customer_ids: Sequence[str], parts: Sequence[str]) -> dict[str, profile_pb2.Profile]:
        """Profiles by customer id (those svc_profile has), ``parts`` as in GetProfile (identities are added)."""
        stub = profile_pb2_grpc.ProfileServiceStub(self.channel())
        wanted = sorted({*parts, "identities"})
        out: dict[str, profile_pb2.Profile] = {}
        for start in range(0, len(customer_ids), BATCH_GET):
            chunk = customer_ids[start : start + BATCH_GET]
            request = profile_pb2.BatchGetProfilesRequest(
                users=[types_pb2.UserRef(type=CUSTOMER, value=c) for c in chunk], parts=wanted
            )
            try:
                reply = stub.BatchGetProfiles(request, timeout=60)
            except grpc.RpcError as exc:
                raise self.error(exc, "did not return profiles") from exc
            for profile in reply.profiles:
                for linked in profile.identities:
                    if linked.identity.type == CUSTOMER:
                        out[linked.identity.value] = profile
        return out

    def replace_static_members(
        self, segment_id: str, display_name: str, source: str, customer_ids: Sequence[str]
    ) -> tuple[int, int]:
        """Create the static segment unless it exists, then replace its members; (members now, ids not found)."""
        segments = self._segments()
        segment = profile_pb2.Segment(
            segment_id=segment_id, display_name=display_name, static_list=profile_pb2.StaticSegment(source=source)
        )
        try:
            segments.CreateSegment(profile_pb2.CreateSegmentRequest(segment=segment), timeout=30)
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.ALREADY_EXISTS:
                raise self.error(exc, f"did not create segment {segment_id!r}") from exc
            existing = self.segment(segment_id)
            if existing.WhichOneof("definition") != "static_list":
                raise FailedPrecondition(
                    f"segment {segment_id!r} exists in svc_profile with a condition: choose another "
                    "export_segment_prefix",
                    reason="SEGMENT_NOT_STATIC",
                ) from exc

        def messages() -> Iterator[profile_pb2.SetStaticMembersRequest]:
            yield profile_pb2.SetStaticMembersRequest(segment_id=segment_id, replace=True)
            for start in range(0, len(customer_ids), STATIC_PER_MESSAGE):
                chunk = customer_ids[start : start + STATIC_PER_MESSAGE]
                yield profile_pb2.SetStaticMembersRequest(
                    users=[types_pb2.UserRef(type=CUSTOMER, value=c) for c in chunk]
                )

        try:
            reply = segments.SetStaticMembers(messages(), timeout=self.timeout_seconds)
        except grpc.RpcError as exc:
            raise self.error(exc, f"did not take the members of segment {segment_id!r}") from exc
        return int(reply.member_count), len(reply.not_found)


class LogClient(_Peer):
    service, setting = "collect", "collect_address"

    def events(self, event_types: Iterable[str] = (), batch_size: int = 5000) -> Iterator[list[event_pb2.Event]]:
        """The whole log from its first event, in log order, in batches (masked level 3 values stay masked)."""
        stub = collect_pb2_grpc.CollectServiceStub(self.channel())
        request = collect_pb2.ReadEventsRequest(event_types=list(event_types), batch_size=batch_size)
        call = stub.ReadEvents(request, timeout=self.timeout_seconds)
        forget = _cancelled_with_job(call)
        try:
            for response in call:
                if response.events:
                    yield list(response.events)
        except grpc.RpcError as exc:
            raise self.error(exc, "did not return the event log") from exc
        finally:
            forget()
            call.cancel()


def _cancelled_with_job(call: grpc.Call) -> Callable[[], None]:
    """A cancel of the job running this call (CancelJob, the service's stop) cancels the call: a silent peer does
    not hold the job until remote_timeout_seconds. Returns the unregistering."""
    ctx = current_job()
    return ctx.on_cancel(call.cancel) if ctx is not None else (lambda: None)
