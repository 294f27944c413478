"""Where a service finds the others: its own process when it serves them too, else the configured address.

``qiming serve all`` runs the four services behind one port, often a free port chosen at start (tests, the
demo); a service that calls another (svc_profile following svc_collect's log, svc_campaign reading profiles)
must then call its own process. ``serve()`` records what it serves and where before any ``on_start`` hook runs,
and :func:`peer_address` answers from that record.
"""

from __future__ import annotations

_local: dict[str, str] = {}


def register_local(services: list[str] | tuple[str, ...], address: str) -> None:
    """Record that this process serves ``services`` at ``address`` (called by ``serve()`` once bound)."""
    for name in services:
        _local[name] = address


def forget_local() -> None:
    _local.clear()


def peer_address(service: str, configured: str = "") -> str:
    """The address to call ``service`` at: ``configured`` when set, else this process when it serves the
    service (``qiming serve all``), else "" (not connected)."""
    return configured or _local.get(service, "")
