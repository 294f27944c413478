"""What a nats-py exception means for the collector: at start, what to change, as a StartupError (exit 3, restarted:
NATS may yet come) or a ConfigError (exit 2: only a change of settings or stream helps); while
serving, a gRPC status (UNAVAILABLE for an outage, which clients retry; FAILED_PRECONDITION for a stream that no
longer fits; RESOURCE_EXHAUSTED for a full one). No nats-py exception leaves the JetStream log un-mapped."""

from __future__ import annotations

import re

import nats
from nats.js.errors import APIError

from svc_collect.store._jetstream_parts import JetStreamConfig
from svc_common.config import redact_url
from svc_common.errors import ConfigError, FailedPrecondition, QimingError, ResourceExhausted, StartupError, Unavailable

# JetStream's error codes (nats-server's errors.json) that the collector tells apart.
STREAM_NOT_FOUND = 10059
WRONG_LAST_SEQUENCE = 10071
_NOT_ENABLED = 10076
_NOT_ENABLED_FOR_ACCOUNT = 10039
SUBJECTS_OVERLAP = 10065
_REPLICAS_NOT_SUPPORTED = 10074
# Out of storage: the server (insufficient resources) or the account (its limits exceeded).
_INSUFFICIENT_RESOURCES = {10002, 10023, 10028, 10047}
# A store failure (JSStreamStoreFailedF): a limit reached with discard=new ("maximum messages/bytes exceeded"),
# or the server's own storage failing (disk errors), told apart by the description.
_STORE_FAILED = 10077
_MESSAGE_TOO_LARGE = 10054
_WRONG_STREAM = 10060
# No JetStream answered a request: the server runs without it, or nothing serves the stream (deleted).
NO_ANSWER = (nats.errors.NoRespondersError, nats.js.errors.NoStreamResponseError)
# Raised by nats-py or by the asyncio timeouts around its calls.
NATS_ERRORS = (TimeoutError, nats.errors.Error)


def no_jetstream(exc: BaseException) -> bool:
    """JetStream is off (server or account), or a request found nobody to answer it."""
    if isinstance(exc, NO_ANSWER):
        return True
    return isinstance(exc, APIError) and (
        exc.err_code in (_NOT_ENABLED, _NOT_ENABLED_FOR_ACCOUNT) or (exc.code is None and exc.err_code is None)
    )


def _api(exc: BaseException) -> str:
    return f"{exc.description} (JetStream error {exc.err_code})" if isinstance(exc, APIError) else repr(exc)


def redacted(url: str) -> str:
    """``nats_url`` for messages and logs: a password (``redact_url``), or a NATS token (userinfo without a colon),
    replaced by ``***``."""
    return re.sub(r"//[^/@:,\s]+@", "//***@", redact_url(url))


def connect_error(
    exc: BaseException, last: BaseException | None, config: JetStreamConfig
) -> StartupError | ConfigError:
    """Why the first connection failed: what the client last reported (a refused login …), else the timeout."""
    url, timeout = redacted(config.nats_url), config.publish_timeout_millis / 1000
    reported = str(last or "")
    if "authorization" in reported.lower() or "authentication" in reported.lower():
        return ConfigError(
            f"NATS at {url} refused the collector's login ({reported}): fix the user and password (or token) in "
            f"nats_url, or the server's authorization"
        )
    return StartupError(
        f"cannot reach NATS at {url} within {timeout:g} s ({reported or str(exc) or type(exc).__name__}): start "
        f"nats-server there, or fix nats_url (the wait is jetstream_publish_timeout_millis)"
    )


def connection_lost() -> Unavailable:
    """The call's status while the collector's connection to NATS is down (nats-py reconnects by itself)."""
    return Unavailable(
        "the collector's connection to NATS is down (it reconnects by itself); nothing of this call was acknowledged:"
        " retry it with backoff (event ids make a retried batch exactly-once)",
        reason="LOG_UNAVAILABLE",
    )


def startup_error(exc: BaseException, config: JetStreamConfig) -> StartupError | ConfigError:
    """The operator's message for a nats-py exception raised while the collector starts."""
    url, stream, replicas = redacted(config.nats_url), config.stream, config.replicas
    timeout = config.publish_timeout_millis / 1000
    if isinstance(exc, APIError) and exc.err_code == _NOT_ENABLED_FOR_ACCOUNT:
        return StartupError(
            f"the NATS account that nats_url ({url}) logs in to has no JetStream: enable it for that account "
            f"(accounts {{ <name>: {{ jetstream: enabled }} }}) or log in as a user of an account that has it"
        )
    if no_jetstream(exc):
        return StartupError(
            f"no JetStream answers at {url}: run nats-server with JetStream enabled (-js, or a jetstream {{}} block "
            f"with store_dir), for the account nats_url logs in to"
        )
    if isinstance(exc, APIError) and exc.err_code == _REPLICAS_NOT_SUPPORTED:
        return ConfigError(
            f"jetstream_replicas={replicas} but the nats-server at {url} is not clustered: set jetstream_replicas=1, "
            f"or run a JetStream cluster of at least {replicas} servers"
        )
    if isinstance(exc, TimeoutError):  # nats.errors.TimeoutError is one too
        return StartupError(
            f"NATS at {url} did not answer the JetStream API within {timeout:g} s while the collector started: "
            f"check that nats-server is up with JetStream, and that the user of nats_url may publish to $JS.API.> "
            f"(a permissions violation is answered by silence; the collector's log names it)"
        )
    if isinstance(exc, APIError):
        return StartupError(f"JetStream refused the collector's start on stream {stream}: {_api(exc)}")
    return StartupError(f"NATS at {url} failed while the collector started: {exc!r}; is nats-server up?")


def serving_error(exc: BaseException, stream: str, stream_exists: bool | None) -> QimingError:
    """The caller's status for a nats-py exception raised while serving; ``stream_exists`` is False when the stream
    was found gone after JetStream did not answer (None: not asked)."""
    if stream_exists is False or (isinstance(exc, APIError) and exc.err_code == STREAM_NOT_FOUND):
        return FailedPrecondition(
            f"JetStream stream {stream} no longer exists (deleted while the collector ran): restore it, or restart "
            f"the collector to create an empty one (every cursor of the old stream is then INVALID_CURSOR)",
            reason="LOG_MISCONFIGURED",
        )
    if no_jetstream(exc):
        return Unavailable(
            "no JetStream answered (nats-server restarting, or running without JetStream for this account); "
            "retry with backoff",
            reason="LOG_UNAVAILABLE",
        )
    if isinstance(exc, APIError) and exc.err_code == _STORE_FAILED and "maximum" in (exc.description or ""):
        return ResourceExhausted(
            f"JetStream stream {stream} is full and refuses new messages ({exc.description}: its max_msgs or "
            f"max_bytes with discard=new): raise the stream's limits, or let max_age make room; retry later",
            reason="LOG_FULL",
        )
    if isinstance(exc, APIError) and exc.err_code in _INSUFFICIENT_RESOURCES:
        return ResourceExhausted(
            f"JetStream has no storage left for stream {stream} ({exc.description}): raise the account's or the "
            f"server's JetStream limits (max_file, max_file_store) or free disk space; retry later",
            reason="LOG_FULL",
        )
    if isinstance(exc, APIError) and exc.err_code == _MESSAGE_TOO_LARGE:
        return FailedPrecondition(
            f"JetStream stream {stream} refuses a pack as too large (its max_msg_size was lowered while the "
            f"collector ran): restart the collector, which sizes packs by it, or raise max_msg_size",
            reason="LOG_MISCONFIGURED",
        )
    if isinstance(exc, APIError) and exc.err_code == _WRONG_STREAM:
        return FailedPrecondition(
            f"the collector's subjects are no longer stored by JetStream stream {stream}: give them back to it",
            reason="LOG_MISCONFIGURED",
        )
    if isinstance(exc, TimeoutError | nats.errors.Error) and not isinstance(exc, APIError):
        return Unavailable(
            f"JetStream did not answer ({exc or type(exc).__name__}): NATS is down or reconnecting; retry the call",
            reason="LOG_UNAVAILABLE",
        )
    # A 503 (e.g. a cluster without a leader) or another refusal: nothing the caller sent is at fault.
    return Unavailable(f"JetStream refused the call: {_api(exc)}; retry with backoff", reason="LOG_UNAVAILABLE")
