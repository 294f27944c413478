"""With ``migrate_on_start = false`` (the replicas of a rolling upgrade) a service whose database schema is behind
this release does not start: exit 3 with one line naming the revisions and the command to run. It started, said
SERVING and failed calls with INTERNAL on a missing table; on a never-migrated database it died with a traceback.
A schema a newer release migrated (a revision this release does not know) is served: migrations are additive."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from collect_helpers import collect_settings
from test_cli import qiming

from svc_collect.store import SCHEMA
from svc_common.errors import StartupError
from svc_common.runtime import ServiceRuntime


def _set_revision(settings, revision: str) -> None:
    engine = sa.create_engine(settings.resolved_database_url())
    with engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE {SCHEMA.migrations.version_table} SET version_num = :r"), {"r": revision})
    engine.dispose()


def test_a_schema_behind_this_release_is_refused_and_a_newer_one_served(tmp_path: Path, database_url: str) -> None:
    ServiceRuntime.open(SCHEMA, collect_settings(tmp_path, database_url)).database.dispose()  # migrated to head
    replica = collect_settings(tmp_path, database_url, migrate_on_start=False)
    head = SCHEMA.migrations.head()

    _set_revision(replica, "collect_0002")  # one release behind
    with pytest.raises(StartupError) as refused:
        ServiceRuntime.open(SCHEMA, replica)
    assert str(refused.value) == (
        f"the database schema of collect is at collect_0002; this release needs {head}: run `qiming migrate collect` "
        "(migrate_on_start is off)"
    )

    _set_revision(replica, "collect_9999")  # migrated by a newer release: still served
    runtime = ServiceRuntime.open(SCHEMA, replica)
    assert runtime.schema_revision() == "collect_9999"
    runtime.database.dispose()

    _set_revision(replica, head)
    ServiceRuntime.open(SCHEMA, replica).database.dispose()


def test_a_never_migrated_database_without_migrate_on_start_exits_3_saying_what_to_run(tmp_path: Path) -> None:
    env = {"QIMING_PROFILE_MIGRATE_ON_START": "false", "QIMING_PROFILE_DATA_DIR": str(tmp_path)}
    result = qiming("serve", "profile", env=env, cwd=tmp_path)
    assert result.returncode == 3
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("qiming: error: the database schema of profile has never been migrated; this release needs")
    assert last.endswith("run `qiming migrate profile` (migrate_on_start is off)") and "Traceback" not in result.stderr
