from svc_campaign.store import metadata
from svc_common.db import run_migrations_env

run_migrations_env(metadata)
