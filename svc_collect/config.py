"""Settings of svc_collect: environment ``QIMING_COLLECT_*`` or TOML table ``[collect]``."""

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from svc_common.config import ServiceSettings


class CollectSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="QIMING_COLLECT_")
    section: ClassVar[str] = "collect"
    service_name: ClassVar[str] = "collect"
    default_grpc_port: ClassVar[int] = 50051
