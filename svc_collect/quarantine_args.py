"""The checks of QuarantineService's request arguments: reasons and page positions."""

from __future__ import annotations

from collections.abc import Sequence

from svc_collect.validation import reason_name
from svc_common.errors import FieldViolation, InvalidArgument
from svc_common.paging import invalid_page_token

# What a quarantine record's reason can be: the rejections of validation.py and _schema_rules.py.
QUARANTINE_REASONS = frozenset(
    {
        "MISSING_FIELD",
        "INVALID_EVENT_ID",
        "STRING_TOO_LONG",
        "VALUE_NOT_ALLOWED",
        "TIMESTAMP_OUT_OF_RANGE",
        "UNKNOWN_EVENT_TYPE",
        "EVENT_TOO_LARGE",
        "TOO_MANY_PROPERTIES",
        "PROPERTY_TYPE_MISMATCH",
        "INVALID_NAME",
        "UNKNOWN_PROPERTY",
        "MISSING_REQUIRED_PROPERTY",
        "UNSIGNED_SYSTEM_EVENT",
        "UNDECLARED_PERSONAL_DATA",  # protect.py, under undeclared_pii = "reject"
        "UNKNOWN_FIELD",  # validation.py: a field the event's messages do not declare
        "PAYLOAD_MISMATCH",  # a replay that met the log's copy of the id with another payload (service.py)
    }
)


def reason_names(reasons: Sequence[int]) -> list[str]:
    """The stored names of a quarantine filter's ``reasons``; INVALID_ARGUMENT naming the field for a value this
    release does not know, or one no quarantined event can have (a filter on it would match nothing, silently)."""
    names = []
    for i, reason in enumerate(reasons):
        try:
            name = reason_name(reason)
        except ValueError:  # an enum value this release does not know
            name = ""
        if name not in QUARANTINE_REASONS:
            raise InvalidArgument(
                f"reasons[{i}] = {reason} is not a reason the quarantine records",
                violations=[
                    FieldViolation(
                        f"reasons[{i}]", "use one of ERROR_REASON_" + ", ERROR_REASON_".join(sorted(QUARANTINE_REASONS))
                    )
                ],
            )
        names.append(name)
    return names


def quarantine_position(position: dict | None, field: str = "page.page_token") -> tuple[int, str] | None:
    """Where a quarantine page token (request ``field``) says the next page starts; INVALID_PAGE_TOKEN for a token not
    made here."""
    if position is None:
        return None
    at, quarantine_id = position.get("at"), position.get("id")
    if (
        type(at) is not int
        or not isinstance(quarantine_id, str)
        or not -(2**63) <= at < 2**63
        or "\x00" in quarantine_id
    ):
        raise invalid_page_token(field)
    return at, quarantine_id
