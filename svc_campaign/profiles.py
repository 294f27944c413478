"""Who the customer is: the ``ProfileDirectory`` the engine asks for branches, audience segments,
personalisation and suitability, with a gRPC implementation over ``ProfileService.GetProfile`` and an
in-memory one for tests and embedded use. Profiles are read, never stored here."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol

import grpc

from svc_common.conditions import EventAbsence, EventCount, Source, from_proto
from svc_common.pb.qiming.common.v1 import types_pb2
from svc_common.pb.qiming.profile.v1 import profile_pb2, profile_pb2_grpc
from svc_common.peers import peer_address
from svc_common.server import blocking_channel

log = logging.getLogger("qiming.campaign.profiles")
PREFETCH_BATCH = 500
"""Customers per ``BatchGetProfiles`` call (svc_profile takes up to 1,000)."""

PROFILE_UNAVAILABLE = profile_pb2.Profile()
"""What :func:`lookup` answers when svc_profile did not answer (compared by identity; empty, so branches, segments
and rendering treat the customer as unknown): the gate tells it apart (``profile_unavailable``) from a customer
who has no risk rating (``risk_rating_unknown``)."""


def lookup(directory: Any, user_id: str) -> profile_pb2.Profile | None:
    """``directory.get(user_id)``, but ``PROFILE_UNAVAILABLE`` where the directory can tell an outage apart."""
    fetch = getattr(directory, "fetch", None)
    return fetch(user_id) if fetch is not None else directory.get(user_id)


class TellingOutages:
    """``directory`` as the engine sees it: ``get`` answers ``PROFILE_UNAVAILABLE`` on an outage (see
    :func:`lookup`), so a journey's product message says ``profile_unavailable`` too; the rest is the directory's."""

    def __init__(self, directory: Any) -> None:
        self.directory = directory

    def get(self, user_id: str) -> profile_pb2.Profile | None:
        return lookup(self.directory, user_id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.directory, name)


class ProfileDirectory(Protocol):
    def get(self, user_id: str) -> profile_pb2.Profile | None:
        """The customer's profile (customer number), None when unknown or unreachable."""


class NoProfiles:
    """No profile service configured: every customer is unknown."""

    def get(self, user_id: str) -> profile_pb2.Profile | None:
        return None


class InMemoryProfiles:
    """Profiles held in a dict (tests, demos)."""

    def __init__(self, profiles: Mapping[str, profile_pb2.Profile] | None = None) -> None:
        self._profiles: dict[str, profile_pb2.Profile] = dict(profiles or {})
        self.calls = 0

    def put(self, user_id: str, profile: profile_pb2.Profile) -> None:
        self._profiles[user_id] = profile

    def get(self, user_id: str) -> profile_pb2.Profile | None:
        self.calls += 1
        return self._profiles.get(user_id)


class SegmentMembers(Protocol):
    def export(self, segment_id: str, after: str = "") -> Iterator[list[tuple[str, str]]]:
        """The segment's members in profile id order, a page at a time: (profile id, customer id or ""); with
        ``after``, only those after that profile id (a resumed export)."""


class ExportFailed(Exception):
    """svc_profile did not export the segment (unreachable, unknown segment): the message says why."""


class GrpcSegmentMembers:
    """``SegmentService.ExportMembers`` (streamed, with each member's customer id) at the configured address, else
    this process when it serves svc_profile too."""

    def __init__(self, address: str, *, page_size: int = 1000, timeout_seconds: float = 600.0) -> None:
        self._configured = address
        self._page_size = page_size
        self._timeout = timeout_seconds

    def export(self, segment_id: str, after: str = "") -> Iterator[list[tuple[str, str]]]:
        address = peer_address("profile", self._configured)
        if not address:
            raise ExportFailed("no svc_profile to export the segment from: set profile_address")
        request = profile_pb2.ExportMembersRequest(
            segment_id=segment_id,
            batch_size=self._page_size,
            id_types=[types_pb2.ID_TYPE_CUSTOMER],
            after_profile_id=after,
        )
        with grpc.insecure_channel(address) as channel:
            stream = profile_pb2_grpc.SegmentServiceStub(channel).ExportMembers(request, timeout=self._timeout)
            try:
                for page in stream:
                    yield [(m.profile_id, _customer(m.identities)) for m in page.members]
            except grpc.RpcError as exc:
                raise ExportFailed(f"svc_profile at {address}: {exc.code().name} {exc.details()}") from None
            finally:
                stream.cancel()


def _customer(identities: Any) -> str:
    ids = sorted(i.value for i in identities if i.type == types_pb2.ID_TYPE_CUSTOMER)
    return ids[0] if ids else ""


class GrpcProfileDirectory:
    """``ProfileService.GetProfile``, each answer reused for ``cache_seconds``.

    The address is the configured one, else this process when it serves svc_profile too (``qiming serve all``,
    known once the server is bound); with neither, every customer is unknown.
    """

    def __init__(self, address: str, *, cache_seconds: float = 5.0, timeout_seconds: float = 2.0) -> None:
        self._configured = address
        self.address = ""
        self._cache_seconds = cache_seconds
        self._timeout = timeout_seconds
        self._channel: grpc.Channel | None = None
        self._stub: profile_pb2_grpc.ProfileServiceStub | None = None
        self._cache: dict[str, tuple[float, profile_pb2.Profile | None]] = {}
        self._tags: tuple[float, frozenset[str]] | None = None
        self._lock = threading.Lock()

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
        self._channel, self._stub = None, None

    def _connect(self) -> profile_pb2_grpc.ProfileServiceStub | None:
        address = peer_address("profile", self._configured)
        with self._lock:
            if address != self.address or self._stub is None:
                if self._channel is not None:
                    self._channel.close()
                self.address = address
                self._channel = blocking_channel(address) if address else None
                self._stub = profile_pb2_grpc.ProfileServiceStub(self._channel) if self._channel else None
            return self._stub

    def get(self, user_id: str) -> profile_pb2.Profile | None:
        found = self.fetch(user_id)
        return None if found is PROFILE_UNAVAILABLE else found

    def fetch(self, user_id: str) -> profile_pb2.Profile | None:
        """As :meth:`get`, but ``PROFILE_UNAVAILABLE`` when svc_profile did not answer."""
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(user_id)
            if hit is not None and hit[0] > now:
                return hit[1]
        stub = self._connect()
        if stub is None:
            return None
        request = profile_pb2.GetProfileRequest(user=types_pb2.UserRef(type=types_pb2.ID_TYPE_CUSTOMER, value=user_id))
        try:
            profile: profile_pb2.Profile | None = stub.GetProfile(request, timeout=self._timeout).profile
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND:
                log.warning("svc_profile at %s: %s %s", self.address, exc.code().name, exc.details())
                return PROFILE_UNAVAILABLE  # not cached: the next touch asks again
            profile = None
        with self._lock:
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[user_id] = (now + self._cache_seconds, profile)
        return profile

    def prefetch(self, user_ids: Iterable[str]) -> None:
        """One ``BatchGetProfiles`` for the customers of a batch (due timers, events) not cached yet: each send then
        finds its customer in the cache instead of calling ``GetProfile`` (a restart resuming 100,000 customers
        made 100,000 calls, one after the other). On a failure they are left to :meth:`fetch`, one by one."""
        now = time.monotonic()
        with self._lock:
            wanted = sorted(
                u for u in set(user_ids) if u and not ((hit := self._cache.get(u)) is not None and hit[0] > now)
            )
        stub = self._connect() if wanted else None
        if stub is None:
            return
        for start in range(0, len(wanted), PREFETCH_BATCH):
            chunk = wanted[start : start + PREFETCH_BATCH]
            users = [types_pb2.UserRef(type=types_pb2.ID_TYPE_CUSTOMER, value=u) for u in chunk]
            try:
                answer = stub.BatchGetProfiles(profile_pb2.BatchGetProfilesRequest(users=users), timeout=self._timeout)
            except grpc.RpcError as exc:
                log.warning(
                    "svc_profile at %s: %s %s (profiles read one by one)", self.address, exc.code().name, exc.details()
                )
                return
            # In request order, the refs not found left out (and listed in not_found).
            missing = {ref.value for ref in answer.not_found}
            found = iter(answer.profiles)
            with self._lock:
                if len(self._cache) > 100_000:
                    self._cache.clear()
                for user in chunk:
                    self._cache[user] = (now + self._cache_seconds, None if user in missing else next(found, None))

    def withheld_tags(self) -> frozenset[str] | None:
        """The tags svc_profile defines as level 3 or above (it does not show their values to svc_campaign); None
        when it does not answer. Kept a minute."""
        now = time.monotonic()
        if self._tags is not None and self._tags[0] > now:
            return self._tags[1]
        if self._connect() is None or self._channel is None:
            return None
        stub = profile_pb2_grpc.TagServiceStub(self._channel)
        names: set[str] = set()
        request = profile_pb2.ListTagDefinitionsRequest(page=types_pb2.PageRequest(page_size=1000))
        try:
            while True:
                page = stub.ListTagDefinitions(request, timeout=self._timeout)
                names.update(d.name for d in page.definitions if d.sensitivity >= types_pb2.SENSITIVITY_LEVEL_3)
                if not page.next_page_token:
                    break
                request.page.page_token = page.next_page_token
        except grpc.RpcError as exc:
            log.warning("svc_profile at %s: tag definitions: %s %s", self.address, exc.code().name, exc.details())
            return None
        self._tags = (now + 60.0, frozenset(names))
        return self._tags[1]


def profile_values(profile: profile_pb2.Profile | None) -> dict[str, dict[str, Any]]:
    """``{"attribute": {...}, "feature": {...}, "tag": {...}}`` as Python values."""
    if profile is None:
        return {"attribute": {}, "feature": {}, "tag": {}}
    return {
        "attribute": {k: from_proto(v) for k, v in profile.attributes.items()},
        "feature": {k: from_proto(v) for k, v in profile.features.items()},
        "tag": {t.name: from_proto(t.value) for t in profile.tags},
    }


class PersonSubject:
    """A customer in a journey as a condition subject: their profile and the event that brought them in."""

    def __init__(self, profile: profile_pb2.Profile | None, event: Mapping[str, Any]) -> None:
        self._values = profile_values(profile)
        self._segments = frozenset(profile.segment_ids) if profile is not None else frozenset()
        self._event = event

    def value(self, source: Source, name: str) -> object:
        if source is Source.ATTRIBUTE:
            return self._values["attribute"].get(name)
        if source is Source.FEATURE:
            return self._values["feature"].get(name)
        if source in (Source.TAG, Source.SCORE):
            return self._values["tag"].get(name)
        if source is Source.EVENT_PROPERTY:
            return self._event.get(name)
        return None

    def count_events(self, node: EventCount | EventAbsence) -> int:
        raise TypeError("event-history conditions are not allowed in journey branches")

    def in_segment(self, segment_id: str) -> bool:
        return segment_id in self._segments
