"""Opaque page tokens (keyset pagination): the client passes back what it got, never builds one."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from typing import Any

from svc_common.errors import FieldViolation, InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
MAX_TOKEN_CHARS = 4096
"""Longest page token accepted (the positions Qiming's listings encode are far shorter)."""
PAGE_BYTES = 1024 * 1024
"""A listing's or stream's message ends once its items pass this many bytes (one item at least): a quarter of the
4 MiB a default gRPC client accepts, whatever the items hold."""


def fitting(sizes: Iterable[int], limit_bytes: int = PAGE_BYTES) -> int:
    """How many leading items of these encoded ``sizes`` one message holds: as many as stay within
    ``limit_bytes``, and always the first."""
    taken, total = 0, 0
    for size in sizes:
        total += size
        if taken and total > limit_bytes:
            break
        taken += 1
    return taken


def page_size(requested: int, field: str = "page.page_size") -> int:
    """0 means the default; negative is an error; above the maximum is capped (AIP-158)."""
    if requested < 0:
        raise InvalidArgument(
            f"{field} must not be negative",
            violations=[FieldViolation(field, "use 0 for the default page size")],
        )
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def encode_token(kind: str, position: dict[str, Any]) -> str:
    raw = json.dumps({"k": kind, "p": position}, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str, kind: str, field: str = "page.page_token") -> dict[str, Any] | None:
    """The position in ``token`` (None for the first page); a token of another listing is INVALID_ARGUMENT."""
    if not token:
        return None
    if len(token) > MAX_TOKEN_CHARS:  # no listing makes one this long; bounds the decoding work too
        raise invalid_page_token(field)
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if data.get("k") != kind or not isinstance(data.get("p"), dict):
            raise ValueError(kind)
        json.dumps(data["p"], ensure_ascii=False).encode()  # a lone surrogate no database takes: UnicodeEncodeError
        return data["p"]
    except (ValueError, TypeError, UnicodeDecodeError, AttributeError, RecursionError):
        raise invalid_page_token(field) from None


def invalid_page_token(field: str = "page.page_token") -> InvalidArgument:
    """The error for a token this listing did not make (also for a well-formed one whose position is not)."""
    return InvalidArgument(
        f"{field} is not a token returned by this listing",
        reason="INVALID_PAGE_TOKEN",
        violations=[FieldViolation(field, "pass next_page_token from the previous response unchanged")],
    )
