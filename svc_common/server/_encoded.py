"""Responses a servicer has already encoded.

A servicer that can write a response's bytes more cheaply than protobuf can build and encode the message (such as
svc_collect framing stored event payloads) yields ``Encoded(data)``; the server sends ``data`` as it is. Every
other response goes through the method's own serializer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Encoded:
    """The wire form of one response message of the method it is returned from."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


def accepting_encoded(serializer: Callable[[Any], bytes] | None) -> Callable[[Any], bytes] | None:
    """``serializer``, letting ``Encoded`` responses through unchanged."""
    if serializer is None:
        return None

    def serialize(response: Any) -> bytes:
        if type(response) is Encoded:
            return response.data
        return serializer(response)

    return serialize
