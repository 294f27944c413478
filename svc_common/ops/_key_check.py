"""Which keys a service's data is protected with, recorded in its own database.

A key check value (the first bytes of HMAC-SM3 of a fixed label under the key, ``protection._keys``) identifies a
key without revealing it. Each service records the check value of every key it uses in ``<service>_key_check`` at
start, and refuses to start (exit 2) with a keyring whose key of the same name has other bytes. The file
``<data_dir>/<service>.keycheck.json`` catches that on one host; the database catches a second host (a replica, a
fail-over node) given another keyring for the same PostgreSQL, openGauss or Dameng database, which would seal new
data under a key the other hosts cannot open and split every pseudonym join.
"""

from __future__ import annotations

import datetime as dt
import socket

from sqlalchemy import Column, MetaData, String, Table, insert, select
from sqlalchemy.exc import IntegrityError

from svc_common.db import Database, UtcDateTime
from svc_common.errors import ConfigError
from svc_common.protection._keys import PSEUDONYM_CHECK_NAME, Keyring, key_check_values


def key_check_table(metadata: MetaData, service: str) -> Table:
    """The ``<service>_key_check`` table, part of every service's schema."""
    return Table(
        f"{service}_key_check",
        metadata,
        Column("key_name", String(128), primary_key=True),
        Column("check_value", String(32), nullable=False),
        Column("host_name", String(255), nullable=False),
        Column("recorded_at", UtcDateTime(), nullable=False),
    )


def create_key_check_table_op(op: object, service: str) -> None:
    """Migration step creating ``<service>_key_check``. Frozen: change it only by a new migration."""
    import sqlalchemy as sa

    from svc_common.db.rerunnable import has_table

    if has_table(f"{service}_key_check"):  # re-runnable: Dameng commits each DDL statement
        return
    op.create_table(  # type: ignore[attr-defined]
        f"{service}_key_check",
        sa.Column("key_name", sa.String(128), primary_key=True),
        sa.Column("check_value", sa.String(32), nullable=False),
        sa.Column("host_name", sa.String(255), nullable=False),
        sa.Column("recorded_at", UtcDateTime(), nullable=False),
    )


def check_keyring_in_database(database: Database, table: Table, keyring: Keyring, service: str) -> None:
    """Refuse (ConfigError, exit 2) a keyring with a key recorded in the database with other bytes; record the keys
    seen for the first time (the first start, a key added by a rotation). A recorded key the keyring no longer has
    stays recorded (data stays sealed under it)."""
    current = key_check_values(keyring)
    try:
        _check_and_record(database, table, current, service)
    except IntegrityError:  # another host recorded the same key at the same moment: compare with what it wrote
        _check_and_record(database, table, current, service)


def _check_and_record(database: Database, table: Table, current: dict[str, str], service: str) -> None:
    with database.connection(write=True) as conn:
        recorded = {r.key_name: (r.check_value, r.host_name) for r in conn.execute(select(table))}
        _compare(current, recorded, service, table.name)
        missing = [name for name in current if name not in recorded]
        if missing:
            now, host = dt.datetime.now(dt.UTC), socket.gethostname()
            rows = [{"key_name": n, "check_value": current[n], "host_name": host, "recorded_at": now} for n in missing]
            conn.execute(insert(table), rows)


def _compare(current: dict[str, str], recorded: dict[str, tuple[str, str]], service: str, where: str) -> None:
    for name, value in current.items():
        if name not in recorded or recorded[name][0] == value:
            continue
        what = "the pseudonym key" if name == PSEUDONYM_CHECK_NAME else f"encryption key {name.split('.', 1)[1]!r}"
        check, host = recorded[name]
        raise ConfigError(
            f"the keyring's {what} is not the one {service}'s database was written with (key check value {value}, "
            f"recorded {check} by host {host} in table {where}): data sealed or pseudonymised by the other hosts "
            "could not be read or joined; give every host of this service the broker's one keyring file "
            "(keyring_file)"
        )
