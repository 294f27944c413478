"""PostgreSQL: a batch's COPY goes in the binary format when every column's type allows it (svc_campaign.store._bulk:
``DriverWrite.copy_types`` reads the types from the catalogue), else as text; either way the rows read back as
written and a value the column refuses is refused."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from svc_campaign.store import SCHEMA, _bulk, tables
from svc_campaign.store._bulk import DriverWrite

T0 = dt.datetime(2026, 12, 6, 3, 0, tzinfo=dt.UTC)


@pytest.fixture
def copies(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The SQL of every COPY a DriverWrite runs."""
    seen: list[str] = []
    span = _bulk.copy_span

    @contextlib.contextmanager
    def recording(conn: sa.Connection, sql: str, rows: int) -> Iterator[None]:
        seen.append(sql)
        with span(conn, sql, rows):
            yield

    monkeypatch.setattr(_bulk, "copy_span", recording)
    return seen


def _message(n: int, **changes: object) -> dict[str, object]:
    message = tables["message"]
    row: dict[str, object] = {c.key: None for c in message.c if message.c[c.key].nullable}
    row |= {c.key: "" for c in message.c if not message.c[c.key].nullable}
    row |= {
        "message_id": f"m{n}",
        "user_id": f"c{n}",
        "channel": 3,
        "template_id": "t1",
        "template_version": 2**40,  # a BIGINT
        "status": "QUEUED",
        "is_marketing": n % 2 == 0,
        "priority": -n,
        "attempts": 0,
        "idempotency_key": f"k{n}",
        "body": "一\t二\n三\\四",
        "created_at": T0,
        "next_attempt_at": T0 + dt.timedelta(microseconds=n),
    }
    return row | changes


def test_the_batch_tables_are_copied_in_binary_and_read_back(database_url_postgresql, copies) -> None:
    engine = sa.create_engine(database_url_postgresql)
    SCHEMA.metadata.create_all(engine)
    message, visit = tables["message"], tables["visit"]
    messages = DriverWrite(message, [c.key for c in message.c])
    visits = DriverWrite(visit, [c.key for c in visit.c if c.key != "visit_id"])
    try:
        with engine.begin() as conn:
            messages.executemany(conn, [_message(n) for n in range(3)])
            visits.executemany(
                conn, [{"instance_id": "p1", "journey_id": "j1", "node_id": "send", "outcome": "sent", "at": T0}]
            )
            assert all(writer.copy_types(conn) is not None for writer in (messages, visits))
        assert copies and all(sql.endswith("FROM STDIN (FORMAT BINARY)") for sql in copies)
        with engine.connect() as conn:
            read = {r.message_id: r._asdict() for r in conn.execute(sa.select(message))}
            at = conn.execute(sa.select(visit.c.at, visit.c.outcome)).one()
        assert read == {f"m{n}": _message(n) for n in range(3)}
        assert at == (T0, "sent")
        # Refused as in text: a value too long for its VARCHAR(n), a duplicate key.
        with pytest.raises(sa.exc.DBAPIError, match="too long"), engine.begin() as conn:
            messages.executemany(conn, [_message(7, status="x" * 17)])
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            messages.executemany(conn, [_message(0)])
        # What binary would wrap around or fail on goes as text, so the server judges it as before: an INTEGER out of
        # range is refused (binary stored 2**31 + 5 as -2147483643), an int for a VARCHAR is stored as its digits.
        copies.clear()
        with pytest.raises(sa.exc.DBAPIError, match="out of range"), engine.begin() as conn:
            messages.executemany(conn, [_message(8, priority=2**31 + 5)])
        with engine.begin() as conn:
            messages.executemany(conn, [_message(9, template_id=123)])
        assert copies and not any(sql.endswith("(FORMAT BINARY)") for sql in copies)
        with engine.connect() as conn:
            stored = conn.execute(sa.select(message.c.message_id, message.c.template_id)).all()
        assert ("m9", "123") in stored and not any(m == "m8" for m, _ in stored)
    finally:
        engine.dispose()


def test_a_table_with_another_column_type_is_copied_as_text(database_url_postgresql, copies) -> None:
    metadata = sa.MetaData()
    odd = sa.Table(
        "campaign_copy_odd",
        metadata,
        sa.Column("odd_id", sa.String(16), primary_key=True),
        sa.Column("amount", sa.Numeric(12, 2), nullable=False),  # no binary dumping of this type here
    )
    engine = sa.create_engine(database_url_postgresql)
    metadata.create_all(engine)
    writer = DriverWrite(odd, ["odd_id", "amount"])
    try:
        with engine.begin() as conn:
            writer.executemany(conn, [{"odd_id": "a", "amount": 12}, {"odd_id": "b", "amount": 3}])
            assert writer.copy_types(conn) is None
        assert copies == ["COPY campaign_copy_odd (odd_id, amount) FROM STDIN"]
        with engine.connect() as conn:
            assert sorted(tuple(r) for r in conn.execute(sa.select(odd))) == [("a", 12), ("b", 3)]
    finally:
        engine.dispose()
