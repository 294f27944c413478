"""Where a service finds the others: its own process when it serves them too, else the configured address.

``qiming serve all`` runs the four services behind one port, often a free port chosen at start (tests, the
demo); a service that calls another (svc_profile following svc_collect's log, svc_campaign reading profiles)
must then call its own process. ``serve()`` records what it serves and where before any ``on_start`` hook runs,
and :func:`peer_address` answers from that record.
"""

from __future__ import annotations

import logging

log = logging.getLogger("qiming.peers")

_local: dict[str, str] = {}
_warned: set[tuple[str, str]] = set()


def register_local(services: list[str] | tuple[str, ...], address: str) -> None:
    """Record that this process serves ``services`` at ``address`` (called by ``serve()`` once bound)."""
    for name in services:
        _local[name] = address


def forget_local() -> None:
    _local.clear()
    _warned.clear()


def peer_address(service: str, configured: str = "") -> str:
    """The address to call ``service`` at: this process when it serves the service (``qiming serve all``), else
    ``configured``, else "" (not connected). A configured address is not used for a service this process serves:
    one config file for split services and for ``serve all`` would otherwise point the suite at ports nobody
    listens on (the deploy example's ``collect_address``), and its profiles would never change."""
    local = _local.get(service, "")
    if local and configured and configured != local and (service, configured) not in _warned:
        _warned.add((service, configured))
        log.warning(
            "the configured address %s of svc_%s is not used: this process serves svc_%s (at %s)",
            configured,
            service,
            service,
            local,
        )
    return local or configured
