"""One error base class that knows its gRPC status.

Domain code raises these; the server's error interceptor turns them into a gRPC status with
rich details (``google.rpc.ErrorInfo`` and ``google.rpc.BadRequest``). This module imports no
grpc, so ``service.py`` modules stay free of transport concerns.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldViolation:
    """One bad field of a request: where it is and what is wrong with it."""

    field: str
    """Path of the field in the request, e.g. ``events[3].event_id``."""
    description: str
    """What is wrong and how to fix it."""
    reason: str = ""
    """Machine-readable reason (a ``qiming.common.v1.ErrorReason`` name), empty when none fits."""


class QimingError(Exception):
    """Base of every error a caller may see; ``status_code`` names a ``grpc.StatusCode``."""

    status_code: str = "INTERNAL"
    default_reason: str = ""

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        violations: list[FieldViolation] | tuple[FieldViolation, ...] = (),
        metadata: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason if reason is not None else self.default_reason
        self.violations: tuple[FieldViolation, ...] = tuple(violations)
        self.metadata: dict[str, str] = dict(metadata or {})

    def __str__(self) -> str:
        return self.message


class InvalidArgument(QimingError):
    status_code = "INVALID_ARGUMENT"
    default_reason = "INVALID_ARGUMENT"


class NotFound(QimingError):
    status_code = "NOT_FOUND"
    default_reason = "NOT_FOUND"


class AlreadyExists(QimingError):
    status_code = "ALREADY_EXISTS"
    default_reason = "ALREADY_EXISTS"


class FailedPrecondition(QimingError):
    status_code = "FAILED_PRECONDITION"
    default_reason = "FAILED_PRECONDITION"


class Aborted(QimingError):
    """A concurrent change won (e.g. a stale version or etag); the caller may re-read and retry."""

    status_code = "ABORTED"
    default_reason = "CONCURRENT_MODIFICATION"


class PermissionDenied(QimingError):
    status_code = "PERMISSION_DENIED"
    default_reason = "PERMISSION_DENIED"


class Unauthenticated(QimingError):
    status_code = "UNAUTHENTICATED"
    default_reason = "UNAUTHENTICATED"


class ResourceExhausted(QimingError):
    status_code = "RESOURCE_EXHAUSTED"
    default_reason = "RESOURCE_EXHAUSTED"


class Unavailable(QimingError):
    """A dependency (database, stream) is down; the caller should retry with backoff."""

    status_code = "UNAVAILABLE"
    default_reason = "DEPENDENCY_UNAVAILABLE"


class AuditBacklog(Unavailable):
    """The audit trail's queue is full (its disk is slow or stalled): the call is refused so that no call is answered
    without its audit record; the caller retries later."""

    default_reason = "AUDIT_BACKLOG"


DATABASE_BUSY = "DATABASE_BUSY"
"""The reason of an :class:`Unavailable` whose database is up but was held by another writer past the busy timeout
(SQLite): worth a retry, but not an outage (health stays SERVING)."""


class DeadlineExceeded(QimingError):
    status_code = "DEADLINE_EXCEEDED"
    default_reason = "DEADLINE_EXCEEDED"


class Unimplemented(QimingError):
    status_code = "UNIMPLEMENTED"
    default_reason = "UNIMPLEMENTED"


class ConfigError(Exception):
    """A setting is missing or wrong; the message names the key. Not a gRPC error: it stops start-up."""


class StartupError(Exception):
    """The process cannot start (database unreachable, port taken…); the message says what and where."""


def refuse_reversed_range(start_us: int | None, end_us: int | None, field: str = "time_range") -> None:
    """INVALID_ARGUMENT naming ``<field>.end`` for a range that ends before it starts (open bounds: None)."""
    if start_us is not None and end_us is not None and end_us < start_us:
        raise InvalidArgument(
            f"{field}.end is before {field}.start",
            violations=[FieldViolation(f"{field}.end", f"not before {field}.start")],
        )
