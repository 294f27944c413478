"""SQLAlchemy/Alembic glue for the domestic databases (registered on import of ``svc_common.db``)."""
