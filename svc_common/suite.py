"""The four services by name: their settings class, store schema and spec builder (imported lazily)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from svc_common.config import ServiceSettings
    from svc_common.db import StoreSchema
    from svc_common.runtime import ServiceRuntime
    from svc_common.server import ServiceSpec

SERVICE_NAMES = ("collect", "profile", "campaign", "modeling")


@dataclass(frozen=True)
class ServiceEntry:
    name: str

    @property
    def package(self) -> str:
        return f"svc_{self.name}"

    @property
    def settings_class(self) -> type[ServiceSettings]:
        module = importlib.import_module(f"{self.package}.config")
        return getattr(module, f"{self.name.capitalize()}Settings")

    @property
    def schema(self) -> StoreSchema:
        return importlib.import_module(f"{self.package}.store").SCHEMA

    @property
    def build_spec(self) -> Callable[[ServiceRuntime], ServiceSpec]:
        return importlib.import_module(f"{self.package}.server").build_spec


def entry(name: str) -> ServiceEntry:
    if name not in SERVICE_NAMES:
        raise KeyError(name)
    return ServiceEntry(name)


def entries(names: list[str] | tuple[str, ...] | None = None) -> list[ServiceEntry]:
    return [ServiceEntry(n) for n in (names or SERVICE_NAMES)]
