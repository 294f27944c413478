"""openGauss over psycopg 3: ``opengauss+psycopg://user:pass@host:port/db``.

The upstream ``opengauss-sqlalchemy`` package ships compilers for openGauss's SQL (``ON DUPLICATE KEY
UPDATE``, index options) but only psycopg2 drivers. This dialect keeps its compilers and uses
SQLAlchemy's psycopg 3 driver, which speaks openGauss's PostgreSQL-compatible wire protocol.
"""

from __future__ import annotations

from typing import Any

from opengauss_sqlalchemy.base import OpenGaussCompiler, OpenGaussDDLCompiler, OpenGaussIdentifierPreparer
from opengauss_sqlalchemy.psycopg2 import OpenGaussDialect_psycopg2
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg

# openGauss reports itself as PostgreSQL 9.2.4 for feature purposes.
OPENGAUSS_SERVER_VERSION = (9, 2, 4)


class OpenGaussDialect_psycopg(PGDialect_psycopg):
    name = "opengauss"
    driver = "psycopg"
    supports_statement_cache = True
    cte_follows_insert = True

    statement_compiler = OpenGaussCompiler
    ddl_compiler = OpenGaussDDLCompiler
    preparer = OpenGaussIdentifierPreparer
    construct_arguments = OpenGaussDialect_psycopg2.construct_arguments
    # Read by OpenGaussDDLCompiler.post_create_table; without it every CREATE TABLE fails (centralised openGauss).
    _supports_table_distribute_by = False

    def _get_server_version_info(self, connection: Any) -> tuple[int, int, int]:
        return OPENGAUSS_SERVER_VERSION

    def get_isolation_level_values(self, dbapi_conn: Any) -> tuple[str, ...]:
        # openGauss has no SERIALIZABLE.
        return ("READ COMMITTED", "AUTOCOMMIT", "REPEATABLE READ", "READ UNCOMMITTED")


dialect = OpenGaussDialect_psycopg
