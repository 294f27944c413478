"""Register the dialects and Alembic impls we ship; safe to call more than once."""

from __future__ import annotations

import contextlib

from sqlalchemy.dialects import registry


def register_dialects() -> None:
    registry.register("opengauss.psycopg", "svc_common.db.dialects.opengauss", "OpenGaussDialect_psycopg")
    # Importing these registers their Alembic impls ("opengauss" ships with the upstream package).
    with contextlib.suppress(ImportError):  # the opengauss extra may not be installed
        import opengauss_sqlalchemy.psycopg2  # noqa: F401
    import svc_common.db.dialects.dameng  # noqa: F401
