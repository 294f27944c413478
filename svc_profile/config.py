"""Settings of svc_profile: environment ``QIMING_PROFILE_*`` or TOML table ``[profile]``."""

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from svc_common.config import ServiceSettings


class ProfileSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="QIMING_PROFILE_")
    section: ClassVar[str] = "profile"
    service_name: ClassVar[str] = "profile"
    default_grpc_port: ClassVar[int] = 50052
