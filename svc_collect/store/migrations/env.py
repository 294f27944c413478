from svc_collect.store import metadata
from svc_common.db import run_migrations_env

run_migrations_env(metadata)
