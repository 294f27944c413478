"""Every statement of svc_profile, on a Core connection the caller's transaction owns.

Bulk by construction: lookups take lists of keys (chunked ``IN``), writes take lists of rows
(``executemany`` through the upsert seam), so a log batch costs a handful of statements whatever its size.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.sql.dml import Delete

from svc_common.db import Database, JsonText, upsert_statement
from svc_common.pb.qiming.common.v1 import types_pb2
from svc_common.protection import Sealer
from svc_profile.store._bulk import FEW, bulk, chunks, reader, write
from svc_profile.store._raw import days_sqlite, persons_sqlite, rows_by_person
from svc_profile.store._tagsql import TagRow, TagSealer, TagStatements

CUSTOMER = types_pb2.ID_TYPE_CUSTOMER
CANONICAL = types_pb2.ID_TYPE_CANONICAL
ANONYMOUS = types_pb2.ID_TYPE_ANONYMOUS
EVENT_KEY = ("profile_id", "occurred_us", "event_id")
"""The retained events' primary key (``pk_profile_event``)."""
SCAN_ROWS = 2_000
"""Rows fetched at a time by ``scan_events`` (funnels and paths read every retained event of their range)."""
_EVENT_READ = (
    "profile_id",
    "occurred_us",
    "event_type",
    "session_id",
    "screen",
    "properties",
    "channel",
    "user_id",
    "anonymous_id",
    "context_fields",
)
"""What reads of the retained events select (``StoredEvent.of``)."""
__all__ = ["ANONYMOUS", "CANONICAL", "CUSTOMER", "EVENT_KEY", "ProfileStore", "TagRow", "bulk", "chunks"]


class ProfileStore(TagStatements):
    def __init__(self, database: Database, tables: dict[str, Any], sealer: Sealer | None = None) -> None:
        self.database = database
        self.t = tables
        self.tag_sealer = TagSealer(sealer) if sealer is not None else None
        """Seals and opens level-3 tag values (``_tagsql``); None: a store that never meets one (tools, tests)."""

    # -- identities ----------------------------------------------------------------------------------
    def lookup_ids(self, conn: Connection, keys: Iterable[tuple[int, str]]) -> dict[tuple[int, str], str]:
        conn = reader(conn, self.t["identity"].name)
        wanted = set(keys)
        values = sorted({v for _, v in wanted})
        t = self.t["identity"]
        found: dict[tuple[int, str], str] = {}
        for part in chunks(values):
            for id_value, id_type, pid in conn.execute(
                select(t.c.id_value, t.c.id_type, t.c.profile_id).where(t.c.id_value.in_(part))
            ):
                if (id_type, id_value) in wanted:
                    found[(id_type, id_value)] = pid
        return found

    def identities_of(self, conn: Connection, pids: Sequence[str]) -> dict[str, list[Any]]:
        t = self.t["identity"]
        out: dict[str, list[Any]] = defaultdict(list)
        for part in chunks(list(pids)):
            for row in conn.execute(select(t).where(t.c.profile_id.in_(part)).order_by(t.c.linked_us)):
                out[row.profile_id].append(row)
        return out

    def event_ids_of(self, conn: Connection, pids: Sequence[str]) -> dict[str, tuple[str, str]]:
        """(customer id, anonymous id) of each person, the first linked of each type ("" when none): what a
        ``$segment_*`` event names. Through the index by person, one chunk of ids at a time, however many (a scan of
        every identity per call made a sweep or recompute whose chunks change many persons quadratic: each chunk read
        the whole table)."""
        conn = reader(conn, self.t["identity"].name)
        t = self.t["identity"]
        base = select(t.c.profile_id, t.c.id_type, t.c.id_value).where(
            t.c.id_type.in_([CUSTOMER, ANONYMOUS]), t.c.profile_id.in_(bindparam("ids", expanding=True))
        )
        base = base.order_by(t.c.linked_us.desc())  # the earliest linked comes last and wins
        out: dict[str, list[str]] = {}
        for part in chunks(sorted(set(pids))):
            for pid, id_type, value in conn.execute(base, {"ids": list(part)}).tuples():
                slot = out.get(pid)
                if slot is None:
                    slot = out[pid] = ["", ""]
                slot[0 if id_type == CUSTOMER else 1] = value
        return {pid: (v[0], v[1]) for pid, v in out.items()}

    def customers_of(self, conn: Connection, pids: Sequence[str]) -> dict[str, str]:
        conn = reader(conn, self.t["identity"].name)
        t = self.t["identity"]
        if conn.dialect.name == "sqlite":
            head = f"SELECT profile_id, id_value FROM {t.name} WHERE id_type = ? AND"
            return dict(rows_by_person(conn, head, (CUSTOMER,), list(pids)))
        out: dict[str, str] = {}
        stmt = select(t.c.profile_id, t.c.id_value).where(
            t.c.profile_id.in_(bindparam("ids", expanding=True)), t.c.id_type == CUSTOMER
        )
        for part in chunks(list(pids)):
            out.update(conn.execute(stmt, {"ids": list(part)}).tuples().all())
        return out

    def insert_links(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        """Identity rows; a customer number goes into ``profile_customer`` too, whose key refuses a second one on a
        profile (the database's guard behind the resolver's check)."""
        if rows:
            _insert(conn, self.t["identity"], rows)
            customers = [
                {"profile_id": r["profile_id"], "customer_id": r["id_value"]} for r in rows if r["id_type"] == CUSTOMER
            ]
            if customers:
                _insert(conn, self.t["customer"], customers)

    def delete_link(self, conn: Connection, id_type: int, id_value: str) -> None:
        t = self.t["identity"]
        conn.execute(delete(t).where(t.c.id_type == id_type, t.c.id_value == id_value))
        if id_type == CUSTOMER:
            c = self.t["customer"]
            conn.execute(delete(c).where(c.c.customer_id == id_value))

    # -- persons -------------------------------------------------------------------------------------
    def insert_persons(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        if rows:
            _insert(conn, self.t["person"], rows)

    def load_persons(
        self, conn: Connection, pids: Sequence[str], columns: Sequence[str] | None = None
    ) -> dict[str, Any]:
        conn = reader(conn, self.t["person"].name)
        t = self.t["person"]
        if columns is not None and conn.dialect.name == "sqlite":
            json_columns = frozenset(c.name for c in t.c if isinstance(c.type, JsonText))
            return persons_sqlite(conn, t.name, list(pids), ("profile_id", *columns), json_columns)
        base = select(t) if columns is None else select(*(t.c[c] for c in ("profile_id", *columns)))
        out: dict[str, Any] = {}
        for part in chunks(list(pids)):
            out.update({row.profile_id: row for row in conn.execute(base.where(t.c.profile_id.in_(part)))})
        return out

    def window_sums(
        self, conn: Connection, pids: Sequence[str] | None, event_type: str, first_day: int, column: str
    ) -> dict[str, int]:
        """SUM of a day-bucket column per person over days >= ``first_day``, aggregated by the database
        (``pids`` None: everyone, in one pass over the (event_type, day) index)."""
        t = self.t["day"]
        out: dict[str, int] = {}
        stmt = (
            select(t.c.profile_id, func.sum(t.c[column]))
            .where(t.c.event_type == event_type, t.c.day >= first_day)
            .group_by(t.c.profile_id)
        )
        parts: Iterable[Sequence[str] | None] = chunks(list(pids)) if pids is not None else (None,)
        for part in parts:
            query = stmt if part is None else stmt.where(t.c.profile_id.in_(part))
            out.update({pid: int(total) for pid, total in conn.execute(query) if total})
        return out

    def all_customers(self, conn: Connection) -> dict[str, str]:
        t = self.t["identity"]
        return dict(conn.execute(select(t.c.profile_id, t.c.id_value).where(t.c.id_type == CUSTOMER)).all())

    def scan_persons(self, conn: Connection, columns: Sequence[str]) -> Iterator[Any]:
        t = self.t["person"]
        yield from conn.execute(select(*(t.c[c] for c in columns)))

    def update_persons(self, conn: Connection, rows: list[dict[str, Any]], columns: Sequence[str]) -> None:
        if not rows:
            return
        t = self.t["person"]
        columns = tuple(columns)
        bulk(
            conn,
            ("update_persons", columns),
            lambda: (
                update(t)
                .where(t.c.profile_id == bindparam("pid"))
                .values({c: bindparam(f"v_{c}", type_=t.c[c].type) for c in columns})
            ),
            [{"pid": r["profile_id"], **{f"v_{c}": r[c] for c in columns}} for r in rows],
        )

    def write_features(self, conn: Connection, rows: list[tuple[str, str, int]]) -> None:
        """(profile_id, features as JSON text, updated_us) per person: the log consumer's feature write."""
        bulk(
            conn,
            ("write_features",),
            self.features_statement,
            rows,
            ("pid", "v_features", "v_updated"),
            encoded=("v_features",),
        )

    def features_statement(self) -> Any:
        t = self.t["person"]
        return (
            update(t)
            .where(t.c.profile_id == bindparam("pid"))
            .values(
                features=bindparam("v_features", type_=t.c.features.type),
                updated_us=bindparam("v_updated", type_=t.c.updated_us.type),
            )
        )

    def delete_person(self, conn: Connection, pid: str) -> None:
        for name in ("identity", "customer", "day", "event", "tag", "member", "lifecycle", "person"):
            t = self.t[name]
            conn.execute(delete(t).where(t.c.profile_id == pid))

    def count_persons(self, conn: Connection) -> int:
        return int(conn.execute(select(func.count()).select_from(self.t["person"])).scalar_one())

    # -- day buckets and events ------------------------------------------------------------------------
    def load_days(
        self, conn: Connection, pids: Sequence[str] | None, types: Iterable[str] | None, first_day: int
    ) -> dict[str, dict[str, dict[int, tuple[int, int]]]]:
        """{profile: {event_type: {day: (count, amount_fen)}}} from ``first_day`` on; ``pids`` None: everyone."""
        conn = reader(conn, self.t["day"].name)
        t = self.t["day"]
        out: dict[str, dict[str, dict[int, tuple[int, int]]]] = {}
        base = select(t.c.profile_id, t.c.event_type, t.c.day, t.c.n, t.c.amount_fen).where(t.c.day >= first_day)
        if types is not None:
            types = sorted(set(types))
            if not types:
                return out
            base = base.where(t.c.event_type.in_(types))
        if pids is not None:  # one statement, compiled once, run per chunk of ids (the consumer's read)
            base = base.where(t.c.profile_id.in_(bindparam("ids", expanding=True)))
        parts: Iterable[Sequence[str] | None] = chunks(list(pids)) if pids is not None else (None,)
        for part in parts:
            if part is None:
                result = conn.execute(base)
            elif conn.dialect.name == "postgresql" and types is not None:
                result = conn.exec_driver_sql(
                    self._days_by_key(), {"ids": list(part), "types": types, "first": first_day}
                ).tuples()
            elif conn.dialect.name == "sqlite" and types is not None:
                result = days_sqlite(conn, self.t["day"].name, part, types, first_day)
            else:
                result = conn.execute(base, {"ids": list(part)}).tuples()
            # The rows of one person and type mostly come together (read through the key): their dict is looked up
            # once per run of them, not per row.
            last_pid = last_type = buckets = None
            for pid, event_type, day, n, amount in result:
                if event_type != last_type or pid != last_pid:
                    by_type = out.get(pid)
                    if by_type is None:
                        by_type = out[pid] = {}
                    buckets = by_type.get(event_type)
                    if buckets is None:
                        buckets = by_type[event_type] = {}
                    last_pid, last_type = pid, event_type
                buckets[day] = (n, amount)  # ints only: the cyclic collector stops tracking it once seen
        return out

    def _days_by_key(self) -> str:
        """PostgreSQL: the day rows of an array of persons through the primary key, one index probe per person.
        (psycopg prepares a repeated statement; the generic plan of ``profile_id IN (…500 binds…)`` filtered
        every row of the wanted types through an unhashed list: ~1 s per batch at 20,000 persons.)"""
        name = self.t["day"].name
        return (
            f"SELECT d.profile_id, d.event_type, d.day, d.n, d.amount_fen FROM unnest(%(ids)s::varchar[]) AS v(pid)"
            f" JOIN {name} d ON d.profile_id = v.pid WHERE d.day >= %(first)s AND d.event_type = ANY(%(types)s)"
        )

    def add_days(self, conn: Connection, deltas: dict[tuple[str, str, int], list[int]]) -> None:
        """Add counts to day buckets with one additive upsert (``n = n + excluded.n``): nothing is read."""
        if not deltas:
            return
        t = self.t["day"]
        columns = ("profile_id", "event_type", "day", "n", "amount_fen")
        bulk(
            conn,
            ("add_days",),
            lambda: upsert_statement(
                conn.dialect.name, t, columns, ("profile_id", "event_type", "day"), add=("n", "amount_fen")
            ),
            [(*k, *v) for k, v in deltas.items()],
            columns,
            order=("profile_id", "event_type", "day"),  # in key order (PostgreSQL: no deadlock between writers)
        )

    EVENT_COLUMNS = ("event_id", *_EVENT_READ)

    def insert_events(self, conn: Connection, rows: list[tuple[Any, ...]]) -> None:
        """Retained events as tuples in ``EVENT_COLUMNS`` order (or its first seven), ``properties`` and
        ``context_fields`` as JSON text already; an event stored before (the same person, time and ``event_id``: a
        replay) is kept."""
        if rows:
            t = self.t["event"]
            columns = self.EVENT_COLUMNS[: len(rows[0])]
            bulk(
                conn,
                ("insert_events", columns),
                lambda: upsert_statement(conn.dialect.name, t, columns, EVENT_KEY),
                rows,
                columns,
                encoded=("properties", "context_fields"),
            )

    def load_events(
        self, conn: Connection, pids: Sequence[str] | None, types: Iterable[str], since_us: int, until_us: int = 0
    ) -> dict[str, list[Any]]:
        t = self.t["event"]
        types = sorted(set(types))
        wanted = frozenset(types)

        def within(index: dict[str, int], row: Sequence[Any]) -> bool:  # a batch's event this read can see
            at = row[index["occurred_us"]]
            return row[index["event_type"]] in wanted and at >= since_us and (not until_us or at < until_us)

        conn = reader(conn, t.name, rows=within)
        out: dict[str, list[Any]] = defaultdict(list)
        if not types:
            return out
        base = (
            select(*(t.c[c] for c in _EVENT_READ))
            .where(t.c.event_type.in_(types), t.c.occurred_us >= since_us)
            .order_by(t.c.occurred_us)
        )
        if until_us:  # a range (the first day of a rolling whole-day window)
            base = base.where(t.c.occurred_us < until_us)
        parts: Iterable[Sequence[str] | None] = chunks(list(pids)) if pids is not None else (None,)
        for part in parts:
            stmt = base if part is None else base.where(t.c.profile_id.in_(part))
            for row in conn.execute(stmt):
                out[row.profile_id].append(row)
        return out

    def scan_events(
        self,
        conn: Connection,
        start_us: int | None,
        end_us: int | None,
        types: Sequence[str] | None = None,
        filters: bool = True,
    ) -> Iterator[Any]:
        """Retained events in [start, end) ordered by person, time and event id (funnels, paths), read as they come (a
        server-side cursor on PostgreSQL: not every retained event in memory at once). ``filters``: with what an
        event filter reads (``StoredEvent.of``); else only the columns of a path, of the events with a screen."""
        t = self.t["event"]
        stmt = select(*(t.c[c] for c in (_EVENT_READ if filters else _EVENT_READ[:5])))
        if not filters:
            stmt = stmt.where(t.c.screen != "")
        if start_us is not None:
            stmt = stmt.where(t.c.occurred_us >= start_us)
        if end_us is not None:
            stmt = stmt.where(t.c.occurred_us < end_us)
        if types is not None:
            stmt = stmt.where(t.c.event_type.in_(sorted(set(types))))
        # The primary key's order: events of one person in the same microsecond come in event id order, the same
        # on every database and every read (before 0.2.9 in whatever order the plan gave, so a path could differ).
        ordered = stmt.order_by(t.c.profile_id, t.c.occurred_us, t.c.event_id)
        if conn.dialect.name == "postgresql":
            # A cursor is planned for its first rows (cursor_tuple_fraction 0.1): the primary key's order over the
            # whole table rather than the time index and a sort. Every row is read: plan for all of them.
            conn.exec_driver_sql("SET LOCAL cursor_tuple_fraction = 1.0")
        yield from conn.execute(ordered.execution_options(yield_per=SCAN_ROWS))

    def purge_events(self, conn: Connection, before_us: int, kept_longer: dict[str, int] | None = None) -> int:
        """Delete the retained events before ``before_us``; those of the types in ``kept_longer`` only before the
        time given there."""
        t = self.t["event"]
        stmt = delete(t).where(t.c.occurred_us < before_us)
        if kept_longer:
            stmt = stmt.where(
                t.c.event_type.not_in(sorted(kept_longer))
                | or_(*(and_(t.c.event_type == k, t.c.occurred_us < b) for k, b in sorted(kept_longer.items())))
            )
        return conn.execute(stmt).rowcount or 0

    # -- memberships ---------------------------------------------------------------------------------
    def load_members(
        self, conn: Connection, pids: Sequence[str] | None, segment_ids: Sequence[str] | None = None
    ) -> dict[str, dict[str, Any]]:
        """{profile: {segment: row}} (rows of members and of former members, whose ``seq`` continues)."""
        conn = reader(conn, self.t["member"].name)
        t = self.t["member"]
        out: dict[str, dict[str, Any]] = defaultdict(dict)
        base = select(t)
        if segment_ids is not None:
            base = base.where(t.c.segment_id.in_(list(segment_ids)))
        parts: Iterable[Sequence[str] | None] = chunks(list(pids)) if pids is not None else (None,)
        by_key = pids is not None and segment_ids is None and conn.dialect.name == "postgresql"
        columns = ", ".join(f"m.{c.name}" for c in t.c)
        keyed = base.where(t.c.profile_id.in_(bindparam("ids", expanding=True)))
        for part in parts:
            if by_key:  # through the primary key's profile index (see _days_by_key)
                result = conn.exec_driver_sql(
                    f"SELECT {columns} FROM unnest(%(ids)s::varchar[]) AS v(pid) JOIN {t.name} m"
                    " ON m.profile_id = v.pid",
                    {"ids": list(part or ())},
                )
            elif part is None:
                result = conn.execute(base)
            else:  # one statement, compiled once, run per chunk of ids
                result = conn.execute(keyed, {"ids": list(part)})
            for row in result:
                out[row.profile_id][row.segment_id] = row
        return out

    def upsert_members(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        t = self.t["member"]
        columns = tuple(rows[0])
        updates = ("is_member", "seq", "entered_us", "changed_us")
        bulk(
            conn,
            ("upsert_members", columns),
            lambda: upsert_statement(conn.dialect.name, t, columns, ("segment_id", "profile_id"), updates),
            rows,
        )

    def add_outbox(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        if rows:
            t = self.t["outbox"]
            columns = tuple(rows[0])
            bulk(conn, ("add_outbox", columns), lambda: insert(t).values({c: bindparam(c) for c in columns}), rows)

    def rekey_outbox(self, conn: Connection, customers: dict[str, str]) -> None:
        """The unsent outbox rows of profiles that now have a customer number ({profile id: number}) keyed by it, as
        their next rows are: ``due`` holds a person's later rows behind a rejected earlier one by that key, and an
        enter keyed by the profile no longer held back the exit keyed by the number (review 2026-12-07)."""
        t = self.t["outbox"]
        for pid, customer in sorted(customers.items()):  # a few a batch: profiles that just logged in
            rekey = update(t).where(t.c.person_key == f"profile:{pid}", t.c.sent_us.is_(None))
            rekey = rekey.values(person_key=customer)
            write(conn, lambda c, s=rekey: c.execute(s), whole=True)

    def unsent(self, conn: Connection, limit: int) -> list[Any]:
        t = self.t["outbox"]
        stmt = select(t.c.outbox_id, t.c.body).where(t.c.sent_us.is_(None)).order_by(t.c.outbox_id).limit(limit)
        return list(conn.execute(stmt))

    # -- lifecycle and cursor ------------------------------------------------------------------------
    def add_transitions(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        if rows:
            t = self.t["lifecycle"]
            columns = tuple(rows[0])
            make = lambda: insert(t).values({c: bindparam(c, type_=t.c[c].type) for c in columns})  # noqa: E731
            bulk(conn, ("add_transitions", columns), make, rows)

    def load_cursor(self, conn: Connection, name: str) -> str:
        t = self.t["consumer"]
        return conn.execute(select(t.c.log_cursor).where(t.c.name == name)).scalar_one_or_none() or ""

    def save_cursor(self, conn: Connection, name: str, cursor: str, events: int, at_us: int) -> None:
        t = self.t["consumer"]

        def save(c: Connection) -> None:
            values = {"log_cursor": cursor, "events": t.c.events + events, "updated_us": at_us}
            done = c.execute(update(t).where(t.c.name == name).values(values)).rowcount
            if not done:
                c.execute(insert(t).values(name=name, log_cursor=cursor, events=events, updated_us=at_us))

        write(conn, save, whole=True)  # two statements at most

    # -- merges --------------------------------------------------------------------------------------
    def copies_held_by(self, winner: str, loser: str) -> Delete:
        """Deletes the events of ``loser`` that ``winner`` holds too: the same event, sent again after svc_collect's
        de-duplication window while the two were apart (e.g. after an unlink), is stored under both; moving the
        loser's copy would break the events' key."""
        events = self.t["event"]
        held = events.alias("held")
        same = (
            select(held.c.event_id)
            .where(
                held.c.profile_id == winner,
                held.c.occurred_us == events.c.occurred_us,
                held.c.event_id == events.c.event_id,
            )
            .exists()
        )
        return delete(events).where(events.c.profile_id == loser, same)

    def move_rows(self, conn: Connection, loser: str, winner: str) -> None:
        """Everything of ``loser`` that simply changes owner (ids and its customer number, events, lifecycle
        history)."""
        conn.execute(self.copies_held_by(winner, loser))
        # profile_customer first: a winner holding a customer number already fails here, before anything moved.
        for name in ("customer", "identity", "event", "lifecycle"):
            t = self.t[name]
            conn.execute(update(t).where(t.c.profile_id == loser).values(profile_id=winner))
        days = self.load_days(conn, [loser], None, -(10**9)).get(loser, {})
        deltas = {(winner, e, d): v for e, by_day in days.items() for d, v in by_day.items()}
        t = self.t["day"]
        conn.execute(delete(t).where(t.c.profile_id == loser))
        self.add_days(conn, deltas)


def _insert(conn: Connection, table: Any, rows: list[dict[str, Any]]) -> None:
    """Insert rows (dicts of the same columns). On SQLite through ``bulk``, so that in a log batch they are staged
    like its other writes (a batch creating persons would otherwise run all its writes on the consumer's thread);
    elsewhere SQLAlchemy's own ``executemany`` as before (on PostgreSQL its multi-row ``VALUES``)."""
    if conn.dialect.name != "sqlite":
        write(conn, lambda c: c.execute(insert(table), rows), whole=len(rows) <= FEW)
        return
    columns = tuple(rows[0])
    make = lambda: insert(table).values({c: bindparam(c, type_=table.c[c].type) for c in columns})  # noqa: E731
    bulk(conn, ("insert", table.name, columns), make, rows)
