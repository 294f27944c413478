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
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import grpc
import numpy as np

from svc_common.errors import FailedPrecondition, Unavailable
from svc_common.pb.qiming.common.v1 import types_pb2
from svc_common.pb.qiming.profile.v1 import profile_pb2, profile_pb2_grpc
from svc_common.peers import peer_address

WRITER = "svc_modeling"
WRITES_PER_MESSAGE = 5_000


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
            self._channel = grpc.insecure_channel(address)
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
            tags.CreateTagDefinition(
                profile_pb2.CreateTagDefinitionRequest(definition=definition),
                timeout=self.timeout_seconds,  # a busy svc_profile (a recompute holding its writer) answers late
                wait_for_ready=True,
            )
            return
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.ALREADY_EXISTS:
                raise self._error(exc) from exc
        existing = tags.GetTagDefinition(profile_pb2.GetTagDefinitionRequest(name=tag_name), timeout=60)
        if existing.definition.WhichOneof("rule") != "external":
            raise FailedPrecondition(
                f"tag {tag_name!r} exists in svc_profile with a rule of its own: choose another score_tag_name",
                reason="TAG_NOT_EXTERNAL",
            )

    def write_scores(self, tag_name: str, model_name: str, model_version: int, batches: Iterable[ScoreBatch]) -> int:
        if not self.connected:
            return NotConnectedTagWriter().write_scores(tag_name, model_name, model_version, batches)
        self.ensure_definition(tag_name, model_name)
        provenance = types_pb2.Provenance(
            source=types_pb2.Provenance.SOURCE_MODEL, writer=f"model:{model_name}", writer_version=str(model_version)
        )
        # Batches are consumed here, in the caller's thread (where scoring runs, and fails if it fails), never
        # waiting for svc_profile: gRPC's own thread builds the messages from the queued slices (views of the score
        # arrays, no copies) and sends them while the next batch scores.
        pending: queue.SimpleQueue[tuple[Sequence[str], np.ndarray] | None] = queue.SimpleQueue()
        call = self._connect().WriteTagsStream.future(
            _messages(tag_name, provenance, pending), timeout=self.timeout_seconds, wait_for_ready=True
        )
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
            reply = call.result()
        except grpc.RpcError as exc:
            raise self._error(exc) from exc
        return int(reply.written_count)

    def _error(self, exc: grpc.RpcError) -> Exception:
        return Unavailable(
            f"svc_profile at {self.address} refused the score write-back: {exc.code().name}: {exc.details()}"
        )


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
