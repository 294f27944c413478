"""Settings of svc_campaign: environment ``QIMING_CAMPAIGN_*`` or TOML table ``[campaign]``."""

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from svc_common.config import ServiceSettings


class CampaignSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="QIMING_CAMPAIGN_")
    section: ClassVar[str] = "campaign"
    service_name: ClassVar[str] = "campaign"
    default_grpc_port: ClassVar[int] = 50053
