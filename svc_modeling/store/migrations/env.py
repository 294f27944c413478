from svc_common.db import run_migrations_env
from svc_modeling.store import metadata

run_migrations_env(metadata)
