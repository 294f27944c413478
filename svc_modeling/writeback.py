"""Writing scores back to svc_profile as tags.

With ``profile_address`` set (or svc_profile served by the same process), batch scoring streams each
customer's score to svc_profile's ``TagService.WriteTagsStream`` with the model and its version as the tag's
provenance, after making sure the tag is defined there as an external tag written by svc_modeling. Without
either, nothing is written: the versioned score table is still stored (a dataset, readable with
``DatasetService.ReadRows``) and its lineage records that no write-back happened.

Scores go out batch by batch as they are scored: svc_profile stores the first ones while the model still
scores the next (the two overlap instead of adding up).
"""

from __future__ import annotations

import queue
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc

from svc_common.errors import FailedPrecondition, FieldViolation, InvalidArgument, QimingError, Unavailable
from svc_common.pb.qiming.common.v1 import types_pb2
from svc_common.pb.qiming.profile.v1 import profile_pb2, profile_pb2_grpc
from svc_common.peers import peer_address
from svc_common.server import blocking_channel
from svc_modeling.jobs import JobCancelled, current_job
from svc_modeling.remote import PROBE_SECONDS, peer_error

WRITER = "svc_modeling"
WRITES_PER_MESSAGE = 5_000
TAG_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
"""svc_profile's rule for tag names."""
RESERVED_PREFIX = "fin_"
"""svc_profile reserves tag names with this prefix for its finance pack."""
_OWNER = re.compile(r"^score of model (\S+), written by svc_modeling$")


def check_tag_name(tag_name: str, field: str = "tag_name") -> None:
    """INVALID_ARGUMENT for a tag name svc_profile would refuse, before any work is done."""
    if not TAG_NAME.match(tag_name):
        raise InvalidArgument(
            f"score tag name {tag_name!r} is not one svc_profile takes: lower_snake_case, 1-64 characters",
            reason="INVALID_NAME",
            violations=[FieldViolation(field, "e.g. score_churn_q4 (set tag_name when the model name does not fit)")],
        )
    if tag_name.startswith(RESERVED_PREFIX):
        raise InvalidArgument(
            f"score tag name {tag_name!r}: names starting with {RESERVED_PREFIX} are reserved by svc_profile for the "
            "built-in finance pack",
            reason="INVALID_NAME",
            violations=[FieldViolation(field, f"a name not starting with {RESERVED_PREFIX}, e.g. score_trading")],
        )


@dataclass(frozen=True)
class ScoreBatch:
    """Scores of consecutive customers: ``customer_ids[k]`` scored ``values[k]``."""

    customer_ids: Sequence[str]
    values: np.ndarray


class ProfileTagWriter(Protocol):
    def write_scores(self, tag_name: str, model_name: str, model_version: int, batches: Iterable[ScoreBatch]) -> int:
        """Write the tag for each customer of each batch (provenance: model and version), taking the batches as
        they come (the caller may still be scoring the next); returns how many were written."""
        ...

    @property
    def connected(self) -> bool: ...


class NotConnectedTagWriter:
    """svc_profile is not connected: nothing is written, and callers can tell."""

    connected = False

    def write_scores(self, tag_name: str, model_name: str, model_version: int, batches: Iterable[ScoreBatch]) -> int:
        for _ in batches:  # the caller's scoring still runs
            pass
        return 0


class GrpcProfileTagWriter:
    """Writes score tags to svc_profile over gRPC (called from a job's worker thread).

    The address is resolved at each write: the configured ``profile_address``, else this process when it serves
    svc_profile too (``qiming serve all``, whose port may only be known once it is bound).
    """

    def __init__(self, configured_address: str = "", *, timeout_seconds: float = 600.0) -> None:
        self._configured = configured_address
        self.timeout_seconds = timeout_seconds
        self.address = ""
        self._channel: grpc.Channel | None = None
        self._tags: profile_pb2_grpc.TagServiceStub | None = None

    @property
    def connected(self) -> bool:
        return bool(peer_address("profile", self._configured))

    def _connect(self) -> profile_pb2_grpc.TagServiceStub:
        address = peer_address("profile", self._configured)
        if self._tags is None or address != self.address:
            self.close()
            self.address = address
            self._channel = blocking_channel(address)
            self._tags = profile_pb2_grpc.TagServiceStub(self._channel)
        return self._tags

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
        self._channel, self._tags = None, None

    def ensure_definition(self, tag_name: str, model_name: str) -> None:
        """Define ``tag_name`` as a DOUBLE tag written by svc_modeling unless it exists; refuse a rule tag."""
        definition = profile_pb2.TagDefinition(
            name=tag_name,
            display_name=tag_name,
            description=f"score of model {model_name}, written by svc_modeling",
            value_type=types_pb2.VALUE_TYPE_DOUBLE,
            external=profile_pb2.ExternalTag(writer=WRITER),
        )
        tags = self._connect()
        try:
            # No wait_for_ready: a peer that is down fails the call at once instead of holding the job.
            self._wait(
                tags.CreateTagDefinition.future(
                    profile_pb2.CreateTagDefinitionRequest(definition=definition), timeout=self.timeout_seconds
                ),
                f"did not define tag {tag_name!r}",
            )
            return
        except _PeerCode as exc:
            if exc.code != grpc.StatusCode.ALREADY_EXISTS:
                raise exc.error from None
        try:
            existing = self._wait(
                tags.GetTagDefinition.future(
                    profile_pb2.GetTagDefinitionRequest(name=tag_name), timeout=min(60.0, self.timeout_seconds)
                ),
                f"did not return tag {tag_name!r}",
            )
        except _PeerCode as exc:
            raise exc.error from None
        if existing.definition.WhichOneof("rule") != "external":
            raise FailedPrecondition(
                f"tag {tag_name!r} exists in svc_profile with a rule of its own: choose another tag_name",
                reason="TAG_NOT_EXTERNAL",
            )
        owner = _OWNER.match(existing.definition.description)
        if owner is not None and owner.group(1) != model_name:
            # Another model's scores: overwriting them would silently change what segments on the tag mean.
            raise FailedPrecondition(
                f"tag {tag_name!r} holds the scores of model {owner.group(1)!r}: choose another tag_name for model "
                f"{model_name!r} (or delete that tag in svc_profile first)",
                reason="TAG_OF_ANOTHER_MODEL",
                metadata={"tag_name": tag_name, "model_name": owner.group(1)},
            )

    def require(self) -> None:
        """Fail fast (UNAVAILABLE naming the address) when svc_profile does not answer a health check."""
        if not self.connected:
            return
        self._connect()
        assert self._channel is not None
        seconds = min(PROBE_SECONDS, self.timeout_seconds)
        try:
            health_pb2_grpc.HealthStub(self._channel).Check(health_pb2.HealthCheckRequest(), timeout=seconds)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
                return  # it answered: a server without the health service
            raise Unavailable(
                f"svc_profile at {self.address} (profile_address) did not answer a health check within {seconds:g} s, "
                f"and the score write-back needs it: {exc.code().name}: {exc.details()}",
                reason="PEER_UNAVAILABLE",
            ) from exc

    def _wait(self, future: grpc.Future, doing: str) -> object:
        """The call's reply; a cancel of the running job (or the service's stop) cancels the call."""
        ctx = current_job()
        forget = ctx.on_cancel(future.cancel) if ctx is not None else (lambda: None)
        try:
            return future.result()
        except grpc.FutureCancelledError as exc:
            raise JobCancelled(ctx.job_id if ctx is not None else "") from exc
        except grpc.RpcError as exc:
            if ctx is not None and ctx.cancelled:
                raise JobCancelled(ctx.job_id) from exc
            raise _PeerCode(exc.code(), self._error(exc, doing)) from exc
        finally:
            forget()

    def write_scores(self, tag_name: str, model_name: str, model_version: int, batches: Iterable[ScoreBatch]) -> int:
        if not self.connected:
            return NotConnectedTagWriter().write_scores(tag_name, model_name, model_version, batches)
        check_tag_name(tag_name)
        self.ensure_definition(tag_name, model_name)
        provenance = types_pb2.Provenance(
            source=types_pb2.Provenance.SOURCE_MODEL, writer=f"model:{model_name}", writer_version=str(model_version)
        )
        # Batches are consumed here, in the caller's thread (where scoring runs, and fails if it fails), never
        # waiting for svc_profile: gRPC's own thread builds the messages from the queued slices (views of the score
        # arrays, no copies) and sends them while the next batch scores.
        pending: queue.SimpleQueue[tuple[Sequence[str], np.ndarray] | None] = queue.SimpleQueue()
        call = self._connect().WriteTagsStream.future(
            _messages(tag_name, provenance, pending), timeout=self.timeout_seconds
        )
        ctx = current_job()
        forget = ctx.on_cancel(call.cancel) if ctx is not None else (lambda: None)
        try:
            for batch in batches:
                if call.done():
                    break  # svc_profile ended the call early: its error is raised below
                ids, values = batch.customer_ids, batch.values
                for k in range(0, len(ids), WRITES_PER_MESSAGE):
                    pending.put((ids[k : k + WRITES_PER_MESSAGE], values[k : k + WRITES_PER_MESSAGE]))
        except BaseException:
            call.cancel()  # before the stream's end below: the group in progress is not committed
            raise
        finally:
            pending.put(None)  # the end of the stream (of a cancelled one: only ends the message thread)
        try:
            reply = self._wait(call, "refused the score write-back")
        except _PeerCode as exc:
            raise exc.error from None
        finally:
            forget()
        return int(reply.written_count)  # type: ignore[attr-defined]

    def _error(self, exc: grpc.RpcError, doing: str) -> QimingError:
        """svc_profile's refusals keep their meaning (not retryable); only transport failures are UNAVAILABLE."""
        if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
            doing += f" within remote_timeout_seconds ({self.timeout_seconds:g} s)"
        return peer_error("profile", self.address, exc, doing)


class _PeerCode(Exception):
    """A failed call to svc_profile: its status code and the error to raise."""

    def __init__(self, code: grpc.StatusCode, error: QimingError) -> None:
        super().__init__(error.message)
        self.code, self.error = code, error


def _messages(
    tag_name: str, provenance: types_pb2.Provenance, pending: queue.SimpleQueue[tuple[Sequence[str], np.ndarray] | None]
) -> Iterator[profile_pb2.WriteTagsStreamRequest]:
    """The stream's messages, built in place (``add`` and field assignment: several times faster than building
    a ``TagWrite`` from nested messages per score)."""
    first = True
    customer = types_pb2.ID_TYPE_CUSTOMER
    while (piece := pending.get()) is not None:
        ids, values = piece
        message = profile_pb2.WriteTagsStreamRequest()
        if first:
            message.provenance.CopyFrom(provenance)
            first = False
        add = message.writes.add
        for customer_id, value in zip(ids, values.tolist(), strict=True):
            write = add()
            write.user.type = customer
            write.user.value = customer_id
            write.tag_name = tag_name
            write.value.double_value = value
        yield message
