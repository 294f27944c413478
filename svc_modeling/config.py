"""Settings of svc_modeling: environment ``QIMING_MODELING_*`` or TOML table ``[modeling]``."""

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from svc_common.config import ServiceSettings


class ModelingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="QIMING_MODELING_")
    section: ClassVar[str] = "modeling"
    service_name: ClassVar[str] = "modeling"
    default_grpc_port: ClassVar[int] = 50054
