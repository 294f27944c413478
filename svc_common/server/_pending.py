"""Registers the contract's services whose domain is not built yet, so that they answer UNIMPLEMENTED with a
message naming the method (not a bare 'Method not found'), and reflection already lists the whole API."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from typing import Any

from grpc import aio

from svc_common import __version__
from svc_common.errors import Unimplemented


class _NotYetBuilt:
    def __init__(self, full_name: str, missing_extra: str | None = None) -> None:
        self._full_name = full_name
        self._missing_extra = missing_extra

    def __getattr__(self, method: str) -> Callable[..., Any]:
        if method.startswith("_"):
            raise AttributeError(method)

        def handler(request: Any, context: aio.ServicerContext) -> Any:
            if self._missing_extra:  # built, but this install left out what it needs: the caller asks the operator
                raise Unimplemented(
                    f"{self._full_name}/{method} needs the '{self._missing_extra}' extra on the server, not installed "
                    f"there: pip install 'qiming[{self._missing_extra}]'",
                    reason="EXTRA_NOT_INSTALLED",
                )
            raise Unimplemented(
                f"{self._full_name}/{method} is part of the v1 contract but not available in qiming {__version__}",
                reason="NOT_YET_AVAILABLE",
            )

        return handler


def contract_services(package: str) -> dict[str, Callable[[Any, aio.Server], None]]:
    """Full service name → its generated ``add_…_to_server`` for every service of ``qiming.<package>.v1``."""
    root = importlib.import_module(f"svc_common.pb.qiming.{package}.v1")
    found: dict[str, Callable[[Any, aio.Server], None]] = {}
    for info in pkgutil.iter_modules(root.__path__):
        if not info.name.endswith("_pb2"):
            continue
        messages = importlib.import_module(f"{root.__name__}.{info.name}")
        stubs = importlib.import_module(f"{root.__name__}.{info.name}_grpc")
        for name, service in messages.DESCRIPTOR.services_by_name.items():
            found[service.full_name] = getattr(stubs, f"add_{name}Servicer_to_server")
    return found


def register_not_yet_built(
    package: str, built: set[str] | frozenset[str] = frozenset(), *, missing_extra: str | None = None
) -> tuple[list[str], Callable[[aio.Server], None]]:
    """Names and a register function for the services of ``package`` not in ``built``; with ``missing_extra``
    their calls name the extra to install instead."""
    pending = {name: add for name, add in contract_services(package).items() if name not in built}

    def register(server: aio.Server) -> None:
        for name, add in pending.items():
            add(_NotYetBuilt(name, missing_extra), server)

    return list(pending), register
