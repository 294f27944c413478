"""Making the JetStream stream of the log, and checking that an existing one fits the collector's settings."""

from __future__ import annotations

import logging
import re
from typing import Any

from nats.js import api as js_api
from nats.js.errors import BadRequestError, NotFoundError

from svc_collect.store._jetstream_errors import SUBJECTS_OVERLAP
from svc_collect.store._jetstream_parts import JetStreamConfig
from svc_common.errors import ConfigError

log = logging.getLogger("qiming.collect.jetstream")
SHARDS_MARK = "shards="
# In the description of a stream whose packs may be written in columns, which earlier releases cannot read.
COLUMNS_MARK = "packs=columns"


async def writes_columns(js: Any, config: JetStreamConfig, info: Any) -> bool:
    """Whether this collector writes packs in columns; marks the stream when ``columns`` is asked of one that is
    not marked yet (from then on, collectors of earlier releases must not write to or read it)."""
    description = info.config.description or ""
    marked = COLUMNS_MARK in description
    if config.pack_format == "rows":
        return False
    if config.pack_format == "columns" and not marked:
        info.config.description = f"{description}; {COLUMNS_MARK}" if description else COLUMNS_MARK
        await js.update_stream(info.config)
        log.warning(
            "JetStream stream %s is now marked %s: collectors of earlier releases cannot read its new packs",
            config.stream,
            COLUMNS_MARK,
        )
        return True
    if not marked:
        log.warning(
            "JetStream stream %s was made by an earlier release: packs are written as rows, which every release "
            "reads; set jetstream_pack_format = columns once every collector on it runs this release",
            config.stream,
        )
    return marked or config.pack_format == "columns"


async def ensure_stream(js: Any, config: JetStreamConfig, subject: str) -> Any:
    """The stream's info, after making it if missing and checking it fits this collector's settings."""
    all_subjects = subject.format("*")
    try:
        info = await js.stream_info(config.stream)
    except NotFoundError:
        try:
            await js.add_stream(
                js_api.StreamConfig(
                    name=config.stream,
                    description=f"Qiming event log (svc_collect); packs of events, see docs/collect.md; "
                    f"{SHARDS_MARK}{config.shards}; {COLUMNS_MARK}",
                    subjects=[all_subjects],
                    storage=js_api.StorageType.FILE,
                    num_replicas=config.replicas,
                    max_age=config.max_age_days * 86_400 if config.max_age_days else None,
                    duplicate_window=120,
                    allow_direct=True,
                )
            )
        except BadRequestError as exc:
            if exc.err_code == SUBJECTS_OVERLAP:
                other = await _stream_holding(js, all_subjects)
                raise ConfigError(
                    f"cannot create JetStream stream {config.stream}: its subjects {all_subjects} overlap with those "
                    f"of stream {other}; set jetstream_subject_prefix to subjects no other stream holds (or "
                    f"jetstream_stream={other} if that stream is the log)"
                ) from exc
            raise
        info = await js.stream_info(config.stream)
    if all_subjects not in (info.config.subjects or []):
        raise ConfigError(
            f"JetStream stream {config.stream} does not hold {all_subjects} "
            f"(it has {info.config.subjects}); fix jetstream_subject_prefix or the stream"
        )
    marked = re.search(rf"{SHARDS_MARK}(\d+)", info.config.description or "")
    if marked is None:
        await _check_unrecorded_shards(js, config, subject, info)
    elif int(marked.group(1)) != config.shards:
        raise ConfigError(
            f"JetStream stream {config.stream} was written with {marked.group(1)} shards, not "
            f"jetstream_shards={config.shards}: set jetstream_shards={marked.group(1)} (a stream keeps its "
            f"shard count; a new count needs a new stream)"
        )
    if not info.config.allow_direct:
        raise ConfigError(
            f"JetStream stream {config.stream} needs allow_direct: true (nats stream edit --allow-direct)"
        )
    _check_keeps_events(config, info.config)
    return info


async def _stream_holding(js: Any, subjects: str) -> str:
    try:
        return str(await js.find_stream_name_by_subject(subjects))
    except Exception:  # only to name it in the message
        return "(another one)"


def _check_keeps_events(config: JetStreamConfig, stream: Any) -> None:
    """A stream made by hand may keep, or acknowledge, less than the log needs; these cannot be edited on a stream,
    so the fix is another stream (``jetstream_stream``) or one made again."""
    name = config.stream
    retention = getattr(stream.retention, "value", stream.retention)
    if retention not in (None, "limits"):
        raise ConfigError(
            f"JetStream stream {name} has retention={retention}, which deletes events once consumed or unwatched; "
            f"the log needs retention=limits: set jetstream_stream to a new name (the collector creates it) or make "
            f"the stream again with limits retention"
        )
    storage = getattr(stream.storage, "value", stream.storage)
    if storage not in (None, "file"):
        raise ConfigError(
            f"JetStream stream {name} has storage={storage}: its events (and every acknowledgement) would be lost "
            f"when nats-server restarts; the log needs file storage: set jetstream_stream to a new name or make the "
            f"stream again with file storage"
        )
    if stream.no_ack:
        raise ConfigError(
            f"JetStream stream {name} has no_ack: true, so no write of the collector would be acknowledged: "
            f"set no_ack: false (nats stream edit), or use another stream"
        )
    if getattr(stream, "sealed", False):
        raise ConfigError(f"JetStream stream {name} is sealed and takes no new messages: use another stream")


async def _check_unrecorded_shards(js: Any, config: JetStreamConfig, subject: str, info: Any) -> None:
    """A stream made by an earlier release (16 shards by default then) does not record its count: refuse a
    smaller count when the stream holds subjects beyond it, else warn."""
    all_subjects = subject.format("*")
    if info.state.messages:
        listed = await js.stream_info(config.stream, subjects_filter=all_subjects)
        shards = [int(s.rsplit(".", 1)[1]) for s in (listed.state.subjects or {}) if s.rsplit(".", 1)[1].isdigit()]
        if shards and max(shards) >= config.shards:
            raise ConfigError(
                f"JetStream stream {config.stream} holds shard subjects up to {subject.format(max(shards))}: "
                f"it was written with more than jetstream_shards={config.shards} shards; set jetstream_shards "
                f"to the count it was written with (16, the default of earlier releases, unless configured)"
            )
    log.warning(
        "JetStream stream %s does not record its shard count (made by an earlier release): make sure "
        "jetstream_shards (%d) is the count it was written with, or per-customer reads miss events",
        config.stream,
        config.shards,
    )
