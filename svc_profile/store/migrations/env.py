from svc_common.db import run_migrations_env
from svc_profile.store import metadata

run_migrations_env(metadata)
