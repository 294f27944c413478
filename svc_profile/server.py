"""svc_profile's gRPC layer: request → domain call → proto. Nothing else lives here."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from grpc import aio

from svc_common.errors import FieldViolation, InvalidArgument, ResourceExhausted
from svc_common.paging import decode_token, encode_token, page_size
from svc_common.pb.qiming.common.v1 import errors_pb2, job_pb2, types_pb2
from svc_common.pb.qiming.profile.v1 import profile_pb2 as pb
from svc_common.pb.qiming.profile.v1 import profile_pb2_grpc as pb_grpc
from svc_common.peers import peer_address
from svc_common.runtime import ServiceRuntime
from svc_common.server import ServiceSpec, current_call, note_audit_detail, register_not_yet_built
from svc_profile.app import ProfileApp
from svc_profile.config import ProfileSettings
from svc_profile.service import erasure_reason, tag_value_proto
from svc_profile.store import tables
from svc_profile.tags import STREAM_GROUP_WRITES, check_message_size

log = logging.getLogger("qiming.profile")
T = TypeVar("T")


def _roles() -> frozenset[str]:
    call = current_call()
    return call.principal.roles if call is not None else frozenset()


def _trace_id() -> str:
    call = current_call()
    return call.trace_id if call is not None else ""


async def _run(function: Callable[..., T], *args: Any) -> T:
    return await asyncio.to_thread(function, *args)


def _principal() -> str:
    call = current_call()
    return call.principal.subject if call is not None else ""


_ROW_REASONS = {
    "PROFILE_NOT_FOUND": errors_pb2.ERROR_REASON_NOT_FOUND,
    "TAG_NOT_FOUND": errors_pb2.ERROR_REASON_NOT_FOUND,
    "TAG_NOT_WRITABLE": errors_pb2.ERROR_REASON_VALUE_NOT_ALLOWED,
    # The one generic refusal of a row: a write with no value.
    "INVALID_ARGUMENT": errors_pb2.ERROR_REASON_MISSING_FIELD,
}


def row_reason(reason: str) -> int:
    """The ``ErrorReason`` of a row error from the refusal's reason (an ``ErrorReason`` name or one of svc_profile's
    own, e.g. ``PROFILE_NOT_FOUND``)."""
    known = _ROW_REASONS.get(reason)
    if known is not None:
        return known
    try:
        return errors_pb2.ErrorReason.Value(f"ERROR_REASON_{reason}")
    except ValueError:
        return errors_pb2.ERROR_REASON_UNSPECIFIED


def _row_errors(target: Any, errors: list) -> None:
    for index, reason, field, message in errors:
        target.add(row_index=index, reason=row_reason(reason), field=field, message=message)


class ProfileServicer(pb_grpc.ProfileServiceServicer):
    def __init__(self, app: ProfileApp) -> None:
        self.d = app.profiles
        self.settings = app.settings

    async def GetProfile(self, request: pb.GetProfileRequest, context: aio.ServicerContext) -> pb.GetProfileResponse:
        return pb.GetProfileResponse(profile=await _run(self.d.get, request.user, list(request.parts), _roles()))

    async def BatchGetProfiles(self, request: pb.BatchGetProfilesRequest, context: Any) -> pb.BatchGetProfilesResponse:
        found, missing = await _run(self.d.batch_get, list(request.users), list(request.parts), _roles())
        return pb.BatchGetProfilesResponse(profiles=found, not_found=missing)

    async def UpsertAttributes(self, request: pb.UpsertAttributesRequest, context: Any) -> pb.UpsertAttributesResponse:
        profile, created = await _run(
            self.d.upsert_attributes,
            request.user,
            dict(request.attributes),
            list(request.remove),
            request.source_system,
            _roles(),
        )
        return pb.UpsertAttributesResponse(profile=profile, created=created)

    async def ImportAttributes(self, request_iterator: AsyncIterator[pb.ImportAttributesRequest], context: Any) -> Any:
        # Applied in chunks of import_chunk_rows as the stream arrives, each chunk one transaction: what is held in
        # memory is at most a chunk and one message, whatever the stream's length (docs/profile.md, "Imports").
        settings = self.settings
        response = pb.ImportAttributesResponse()
        pending: list[Any] = []
        stop = threading.Event()  # the call ended: the chunk being applied stops before its next row

        async def apply(rows: list[Any]) -> None:
            created, updated, errors = await _run(self.d.import_chunk, rows, response.rows_received, stop)
            response.rows_received += len(rows)
            response.profiles_created += created
            response.profiles_updated += updated
            _row_errors(response.errors, errors)

        try:
            async for request in request_iterator:
                if response.rows_received + len(pending) + len(request.rows) > settings.max_import_rows:
                    raise ResourceExhausted(
                        f"an import is at most {settings.max_import_rows} rows per call (max_import_rows); the first "
                        f"{response.rows_received} rows were applied, the rows after them were not: send those in "
                        "another call (rows are upserts, so sending applied rows again is harmless)",
                        reason="BATCH_TOO_LARGE",
                        violations=[FieldViolation("rows", f"at most {settings.max_import_rows} rows per call")],
                    )
                pending.extend(request.rows)
                while len(pending) >= settings.import_chunk_rows:
                    chunk = pending[: settings.import_chunk_rows]
                    del pending[: settings.import_chunk_rows]
                    await apply(chunk)
            if context.cancelled() or context.done():  # a cancelled stream may end like a complete one
                raise asyncio.CancelledError
            if pending:
                await apply(pending)
        except BaseException:
            stop.set()
            raise
        return response

    async def LinkIdentities(self, request: pb.LinkIdentitiesRequest, context: Any) -> pb.LinkIdentitiesResponse:
        profile, merged = await _run(self.d.link, request.user, request.identity, request.linked_by, _roles())
        return pb.LinkIdentitiesResponse(profile=profile, merged_profile_id=merged)

    async def UnlinkIdentity(self, request: pb.UnlinkIdentityRequest, context: Any) -> pb.UnlinkIdentityResponse:
        return pb.UnlinkIdentityResponse(profile_id=await _run(self.d.unlink, request.identity))

    async def ListIdentities(self, request: pb.ListIdentitiesRequest, context: Any) -> pb.ListIdentitiesResponse:
        pid, rows = await _run(self.d.identities, request.user)
        response = pb.ListIdentitiesResponse(profile_id=pid)
        for i in rows:
            linked = response.identities.add(linked_by=i.linked_by, source_ref=i.source_ref)
            linked.identity.type, linked.identity.value = i.id_type, i.id_value
            linked.linked_at.FromMicroseconds(i.linked_us)
        return response

    async def ListLifecycleHistory(self, request: pb.ListLifecycleHistoryRequest, context: Any) -> Any:
        size = page_size(request.page.page_size)
        position = decode_token(request.page.page_token, "lifecycle")
        rows = await _run(self.d.lifecycle_history, request.user, position["id"] if position else None, size + 1)
        response = pb.ListLifecycleHistoryResponse()
        for row in rows[:size]:
            item = response.transitions.add(
                from_stage=pb.LifecycleStage.Value(f"LIFECYCLE_STAGE_{row.from_stage}"),
                to_stage=pb.LifecycleStage.Value(f"LIFECYCLE_STAGE_{row.to_stage}"),
                rule=row.rule,
            )
            item.transitioned_at.FromMicroseconds(row.at_us)
        if len(rows) > size:
            response.next_page_token = encode_token("lifecycle", {"id": rows[size - 1].transition_id})
        return response

    async def DeleteProfile(self, request: pb.DeleteProfileRequest, context: Any) -> pb.DeleteProfileResponse:
        # The erasure's legal basis (a PIPL ticket) in its chained audit line, masked as the `profile erased` line is.
        note_audit_detail(reason=erasure_reason(request.reason))
        return pb.DeleteProfileResponse(profile_id=await _run(self.d.delete, request.user, request.reason))


class TagServicer(pb_grpc.TagServiceServicer):
    def __init__(self, app: ProfileApp) -> None:
        self.app = app
        self.defs = app.definitions

    async def CreateTagDefinition(self, request: pb.CreateTagDefinitionRequest, context: Any) -> Any:
        definition = await _run(self.defs.create_tag, request.definition)
        response = pb.CreateTagDefinitionResponse(definition=definition)
        if definition.WhichOneof("rule") != "external":  # nobody holds a new external tag yet: nothing to re-evaluate
            response.job.CopyFrom(await self._refresh_job(definition.name))
        return response

    async def _refresh_job(self, name: str) -> job_pb2.Job:
        return await _run(self.app.segments.start_refresh_everyone, self.app.jobs, name, _principal())

    async def UpdateTagDefinition(self, request: pb.UpdateTagDefinitionRequest, context: Any) -> Any:
        definition = await _run(self.defs.update_tag, request.definition, request.expected_version)
        return pb.UpdateTagDefinitionResponse(definition=definition, job=await self._refresh_job(definition.name))

    async def GetTagDefinition(self, request: pb.GetTagDefinitionRequest, context: Any) -> Any:
        return pb.GetTagDefinitionResponse(definition=await _run(self.defs.get_tag, request.name, request.version))

    async def ListTagDefinitions(self, request: pb.ListTagDefinitionsRequest, context: Any) -> Any:
        size = page_size(request.page.page_size)
        position = decode_token(request.page.page_token, "tags")
        found = await _run(
            self.defs.list_tags, position["after"] if position else "", size + 1, request.include_archived
        )
        response = pb.ListTagDefinitionsResponse(definitions=found[:size])
        if len(found) > size:
            response.next_page_token = encode_token("tags", {"after": found[size - 1].name})
        return response

    async def ArchiveTagDefinition(self, request: pb.ArchiveTagDefinitionRequest, context: Any) -> Any:
        return pb.ArchiveTagDefinitionResponse(definition=await _run(self.defs.archive_tag, request.name))

    async def WriteTags(self, request: pb.WriteTagsRequest, context: Any) -> pb.WriteTagsResponse:
        written, errors = await _run(self.app.tags.write, list(request.writes), request.provenance, _trace_id())
        response = pb.WriteTagsResponse(written_count=written)
        _row_errors(response.errors, errors)
        return response

    async def WriteTagsStream(self, request_iterator: AsyncIterator[pb.WriteTagsStreamRequest], context: Any) -> Any:
        provenance = None
        response = pb.WriteTagsStreamResponse()
        group: list[Any] = []
        offset = 0  # index of group[0] in the whole stream
        writing: asyncio.Future[tuple[int, list]] | None = None  # the group being written while the next arrives

        async def written() -> None:
            nonlocal writing
            if writing is not None:
                count, errors = await writing
                writing = None
                response.written_count += count
                _row_errors(response.errors, errors)

        async def flush() -> None:
            nonlocal group, offset, writing
            await written()  # one group at a time, in order: a later write of a tag wins
            writing = asyncio.ensure_future(_run(self.app.tags.write_group, group, provenance, _trace_id(), offset))
            offset += len(group)
            group = []

        try:
            async for request in request_iterator:
                if provenance is None:
                    provenance = request.provenance
                check_message_size(request.writes)
                group.extend(request.writes)
                if len(group) >= STREAM_GROUP_WRITES:
                    await flush()
            if group:
                await flush()
            await written()
        finally:
            if writing is not None:  # the call failed while a group was being written: let it finish first
                with contextlib.suppress(Exception):
                    await writing
        return response

    async def ListUserTags(self, request: pb.ListUserTagsRequest, context: Any) -> pb.ListUserTagsResponse:
        rows = await _run(self.app.tags.list_user_tags, request.user, _roles())
        return pb.ListUserTagsResponse(tags=[tag_value_proto(r) for r in rows])

    async def RecomputeTag(self, request: pb.RecomputeTagRequest, context: Any) -> pb.RecomputeTagResponse:
        return pb.RecomputeTagResponse(job=await self._refresh_job(request.name))


class SegmentServicer(pb_grpc.SegmentServiceServicer):
    def __init__(self, app: ProfileApp) -> None:
        self.app = app
        self.defs = app.definitions
        self.segs = app.segments

    async def _recompute_job(self, segment: pb.Segment) -> job_pb2.Job:
        return await _run(self.segs.start_recompute, self.app.jobs, segment.segment_id, _principal())

    async def CreateSegment(self, request: pb.CreateSegmentRequest, context: Any) -> pb.CreateSegmentResponse:
        segment = await _run(self.defs.create_segment, request.segment)
        try:
            job = await self._recompute_job(segment)
        except Exception:
            # Its first computation failed within the call: no segment is left half-created (a retry would be
            # ALREADY_EXISTS, the segment never computed).
            try:
                await _run(self.defs.discard_segment, segment.segment_id)
            except Exception:
                log.warning("could not undo segment %r after its computation failed", segment.segment_id, exc_info=True)
            raise
        return pb.CreateSegmentResponse(segment=await _run(self.defs.get_segment, segment.segment_id), job=job)

    async def UpdateSegment(self, request: pb.UpdateSegmentRequest, context: Any) -> pb.UpdateSegmentResponse:
        segment = await _run(self.defs.update_segment, request.segment, request.expected_version)
        job = await self._recompute_job(segment)
        return pb.UpdateSegmentResponse(segment=await _run(self.defs.get_segment, segment.segment_id), job=job)

    async def GetSegment(self, request: pb.GetSegmentRequest, context: Any) -> pb.GetSegmentResponse:
        return pb.GetSegmentResponse(segment=await _run(self.defs.get_segment, request.segment_id))

    async def ListSegments(self, request: pb.ListSegmentsRequest, context: Any) -> pb.ListSegmentsResponse:
        size = page_size(request.page.page_size)
        position = decode_token(request.page.page_token, "segments")
        found = await _run(
            self.defs.list_segments, position["after"] if position else "", size + 1, request.include_archived
        )
        response = pb.ListSegmentsResponse(segments=found[:size])
        if len(found) > size:
            response.next_page_token = encode_token("segments", {"after": found[size - 1].segment_id})
        return response

    async def ArchiveSegment(self, request: pb.ArchiveSegmentRequest, context: Any) -> pb.ArchiveSegmentResponse:
        return pb.ArchiveSegmentResponse(segment=await _run(self.defs.archive_segment, request.segment_id))

    async def SetStaticMembers(self, request_iterator: AsyncIterator[pb.SetStaticMembersRequest], context: Any) -> Any:
        # One transaction after the stream (replace=true swaps the whole list): only the id keys are kept while it
        # arrives, at most max_static_members of them.
        segment_id, replace_all = "", False
        policy, limit = self.app.core.policy, self.app.settings.max_static_members
        keys: list[Any] = []
        refs: list[tuple[int, str]] = []  # (type, value) as sent: what not_found answers with
        async for request in request_iterator:
            if not segment_id:
                segment_id, replace_all = request.segment_id, request.replace
                if not segment_id:
                    raise InvalidArgument(
                        "segment_id is required in the first message",
                        violations=[FieldViolation("segment_id", "required")],
                    )
            elif request.segment_id and request.segment_id != segment_id:
                raise InvalidArgument(
                    f"one call sets one segment: a later message names {request.segment_id[:64]!r}, the first "
                    f"{segment_id!r}",
                    violations=[FieldViolation("segment_id", "the first message's segment_id, or empty")],
                )
            if len(keys) + len(request.users) > limit:
                raise ResourceExhausted(
                    f"SetStaticMembers takes at most {limit} users per call (max_static_members); nothing was "
                    "changed: split the list, the first call with replace=true, the others with replace=false",
                    reason="BATCH_TOO_LARGE",
                    violations=[FieldViolation("users", f"at most {limit} per call")],
                )
            for r in request.users:
                keys.append(policy.ref(r.type, r.value, f"users[{len(keys)}]"))
                refs.append((r.type, r.value))
        if context.cancelled() or context.done():  # a cancelled stream may end like a complete one
            raise asyncio.CancelledError
        if not segment_id:  # a stream that ended before its first message
            raise InvalidArgument(
                "SetStaticMembers received no message: the first names the segment (segment_id)",
                violations=[FieldViolation("segment_id", "required")],
            )
        size, missing = await _run(self.segs.set_static, segment_id, keys, replace_all)
        return pb.SetStaticMembersResponse(
            member_count=size, not_found=[types_pb2.UserRef(type=refs[i][0], value=refs[i][1]) for i in missing]
        )

    async def RecomputeSegment(self, request: pb.RecomputeSegmentRequest, context: Any) -> Any:
        segment = await _run(self.defs.get_segment, request.segment_id)
        return pb.RecomputeSegmentResponse(job=await self._recompute_job(segment))

    async def CheckMembership(self, request: pb.CheckMembershipRequest, context: Any) -> pb.CheckMembershipResponse:
        key = self.app.core.policy.ref(request.user.type, request.user.value, "user")
        member, entered = await _run(self.segs.check, request.segment_id, key)
        response = pb.CheckMembershipResponse(member=member)
        if member:
            response.entered_at.FromMicroseconds(entered)
        return response

    async def GetSegmentSize(self, request: pb.GetSegmentSizeRequest, context: Any) -> pb.GetSegmentSizeResponse:
        size, sample, computed = await _run(self.segs.size_and_sample, request.segment_id, request.sample_size)
        response = pb.GetSegmentSizeResponse(size=size, sample_profile_ids=sample)
        response.computed_at.FromMicroseconds(computed)
        return response

    async def ExportMembers(self, request: pb.ExportMembersRequest, context: Any) -> AsyncIterator[Any]:
        pages = self.segs.export(
            request.segment_id, request.batch_size, list(request.id_types), request.after_profile_id
        )
        turn = threading.Lock()  # a close waits for a page still being read in its thread (cancelled meanwhile)

        def step() -> Any:
            with turn:
                return next(pages, None)

        def close() -> None:
            with turn:
                pages.close()

        try:
            while True:
                page = await _run(step)
                if page is None:
                    return
                response = pb.ExportMembersResponse()
                for pid, ids, entered in page:
                    member = response.members.add(profile_id=pid)
                    member.entered_at.FromMicroseconds(entered)
                    for i in ids:
                        member.identities.add(type=i.id_type, value=i.id_value)
                yield response
        finally:
            # A cancelled or failed stream ends the export's snapshot now, off the event loop (not when the
            # generator is collected): it holds a connection and a read transaction.
            await asyncio.shield(_run(close))  # a second cancel (a server stopping) must not drop the close


class JobServicer(pb_grpc.JobServiceServicer):
    def __init__(self, app: ProfileApp) -> None:
        self.app = app

    async def GetJob(self, request: pb.GetJobRequest, context: Any) -> pb.GetJobResponse:
        return pb.GetJobResponse(job=await _run(self.app.jobs.get, request.job_id))


def build_app(runtime: ServiceRuntime) -> ProfileApp:
    settings = runtime.settings
    assert isinstance(settings, ProfileSettings)
    return ProfileApp(settings, runtime.database, tables, runtime.keys)


def build_spec(runtime: ServiceRuntime) -> ServiceSpec:
    app = build_app(runtime)
    settings = app.settings
    built = {
        "qiming.profile.v1.ProfileService",
        "qiming.profile.v1.TagService",
        "qiming.profile.v1.SegmentService",
        "qiming.profile.v1.JobService",
    }
    if app.analytics is not None:
        built.add("qiming.profile.v1.AnalyticsService")
    pending, register_pending = register_not_yet_built("profile", built)

    def register(server: aio.Server) -> None:
        pb_grpc.add_ProfileServiceServicer_to_server(ProfileServicer(app), server)
        pb_grpc.add_TagServiceServicer_to_server(TagServicer(app), server)
        pb_grpc.add_SegmentServiceServicer_to_server(SegmentServicer(app), server)
        pb_grpc.add_JobServiceServicer_to_server(JobServicer(app), server)
        if app.analytics is not None:
            from svc_profile.analytics_server import AnalyticsServicer

            pb_grpc.add_AnalyticsServiceServicer_to_server(AnalyticsServicer(app), server)
        register_pending(server)

    async def start() -> None:
        warn_if_unconnected(settings)
        await app.start()

    names = [*sorted(built), *pending]
    # Health follows the service database (NOT_SERVING while it does not answer; docs/operations.md).
    return runtime.spec(
        names, register, on_start=[start], on_stop=[app.stop], dependency_probes=[runtime.database_probe()]
    )


def warn_if_unconnected(settings: ProfileSettings) -> None:
    """One WARNING at start when no svc_collect is to be followed (no ``collect_address``, none in this process):
    the service answers, but nothing updates from events."""
    if not peer_address("collect", settings.collect_address):
        log.warning(
            "no svc_collect to follow: profiles, tags and segments will not update from events and segment changes "
            "stay in the outbox; set collect_address in [profile] (QIMING_PROFILE_COLLECT_ADDRESS) to svc_collect's "
            "host:port"
        )


__all__ = ["build_app", "build_spec", "contextlib"]
