"""svc_profile assembled: the domain parts, and the background work (log follower, outbox, time sweep)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from svc_common.db import Database
from svc_common.logclient import CollectClient, LogFollower
from svc_common.peers import peer_address
from svc_common.protection import KeyProvider
from svc_profile.config import ProfileSettings
from svc_profile.consumer import BatchConsumer
from svc_profile.core import Core
from svc_profile.definitions import Definitions
from svc_profile.jobs import Jobs
from svc_profile.model import now_us
from svc_profile.segments import OutboxPublisher, Segments, Sweeper
from svc_profile.service import ProfileDomain
from svc_profile.store._jobs import JobStore
from svc_profile.tags import TagWriter

log = logging.getLogger("qiming.profile")


class ProfileApp:
    def __init__(self, settings: ProfileSettings, database: Database, tables: dict[str, Any], keys: KeyProvider):
        self.settings = settings
        self.core = Core(settings, database, tables, keys)
        self.definitions = Definitions(self.core)
        self.profiles = ProfileDomain(self.core)
        self.tags = TagWriter(self.core, self.definitions)
        self.segments = Segments(self.core, self.definitions)
        self.consumer = BatchConsumer(self.core)
        self.jobs = Jobs(
            JobStore(database, tables["job"]),
            self.segments.resume,
            heartbeat_seconds=settings.job_heartbeat_seconds,
            orphan_seconds=settings.job_orphan_seconds,
            retention_days=settings.job_retention_days,
        )
        self.analytics: Any = None
        try:
            from svc_profile.analytics import Analytics

            self.analytics = Analytics(self.core, self.definitions)
        except ImportError:  # pragma: no cover - analytics ships with the service
            self.analytics = None
        self.client: CollectClient | None = None
        self.follower: LogFollower | None = None
        self.publisher: OutboxPublisher | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._handling = 0
        self._submitted = 0
        """Batches handed to the consumer so far: the commit watcher waits again when one came while it waited."""
        self._watch: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await asyncio.to_thread(self.definitions.load)
        await asyncio.to_thread(self.definitions.seal_sensitive_tags)  # clear rows of level-3 tags (profile_0005)
        if self.settings.finance_pack:
            await asyncio.to_thread(self.definitions.install_pack)
        await asyncio.to_thread(self.jobs.start)  # jobs whose process is gone run again, with the rules loaded
        await asyncio.to_thread(self.segments.note_retention, now_us())  # before any event is consumed
        collect_address = peer_address("collect", self.settings.collect_address)
        if collect_address:
            # The follow stream is silent while the log is idle: the same keepalive as the server's own.
            self.client = CollectClient(
                collect_address,
                keepalive_time_seconds=self.settings.grpc_keepalive_time_seconds,
                keepalive_timeout_seconds=self.settings.grpc_keepalive_timeout_seconds,
            )
            self.publisher = OutboxPublisher(self.core, self.client)
            self.core.on_commit.append(self.publisher.notify)
            self.follower = LogFollower(
                self.client,
                name=self.settings.consumer_name,
                load_cursor=self._load_cursor,
                handle=self._handle,
                batch_size=self.settings.consumer_batch_events,
            )
            self.follower.start()
            self._tasks.append(asyncio.create_task(self.publisher.run(), name="profile-outbox"))
        self._tasks.append(
            asyncio.create_task(
                Sweeper(self.segments, self.settings.sweep_interval_seconds).run(), name="profile-sweep"
            )
        )

    async def _load_cursor(self) -> str:
        return await asyncio.to_thread(self.consumer.load_cursor)

    async def _handle(self, events: list[Any], cursor: str) -> None:
        # Committed on the pipeline's thread while the next batch is read and computed; a failed commit fails the
        # next batch (or the reload of the cursor), and the follower resumes from the stored cursor.
        self._handling += 1
        try:
            await asyncio.to_thread(self.consumer.submit, events, cursor)
        finally:
            self._handling -= 1
        self._submitted += 1  # with the check below, one step of the loop: the watcher sees it or is done
        if self._watch is None or self._watch.done():
            self._watch = asyncio.create_task(self._watch_commits(), name="profile-commit-watch")

    async def _watch_commits(self) -> None:
        """A commit that fails while no batch follows (the log idle) would otherwise wait for the next event to be
        replayed: the follower is restarted, which reloads the stored cursor. A batch handed over while this waited
        (no second watcher is started while one runs) is waited for too, until none came meanwhile."""
        while True:
            seen = self._submitted
            await asyncio.to_thread(self.core.pipeline.wait)
            if self.core.pipeline.failed and not self._handling and self.follower is not None:
                log.warning("a log batch's commit failed; resuming from the stored cursor")
                await self.follower.stop()
                self.follower.start()
                return
            if self._submitted == seen:
                return

    async def stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        if self.follower is not None:
            await self.follower.stop()
            with contextlib.suppress(Exception):  # the last batch's commit (a failure: replayed at the next start)
                await asyncio.to_thread(self.consumer.drain)
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await asyncio.to_thread(self.jobs.stop, 30.0)  # a background recompute finishes its transaction
        if self.publisher is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.publisher.drain(), timeout=5)
        if self.client is not None:
            await self.client.close()
