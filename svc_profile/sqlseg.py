"""A segment condition as one SQL ``WHERE`` over the person table, for a full recompute.

Only what SQL answers exactly as the Python evaluator (``svc_common.conditions.evaluate`` over a
``model.Person``) is translated; anything else returns None and the recompute falls back to evaluating
persons in memory. Translated (docs/profile.md, "Recompute"):

- a comparison of a clear (not level 3) declared attribute with a string or a number: EQ, NE, GT, GTE, LT,
  LTE, BETWEEN, EXISTS, NOT_EXISTS, read from the attribute document ``{name: [kind, value, …]}`` with the
  kind checked (values of another kind never compare, as in Python; strings in code-point order);
- ``event_count`` / ``event_absence`` without a filter over whole days: the person's day buckets of the days wholly
  inside the window summed by a correlated subquery on the primary key (profile, event type, day), plus a count
  of the retained events of the window's first, partial day (rolling windows);
- ``in_segment`` (the stored membership) and ``has_tag`` without a value test (an unexpired tag row);
- ``all_of`` / ``any_of`` / ``not`` of those. Every leaf is a non-NULL boolean, so ``not`` is exact.

Not translated (Python fallback): features, scores, tag values, level 3 attributes (sealed at rest), list
and timestamp and boolean operands, IN / NOT_IN / CONTAINS / STARTS_WITH (list attributes answer them per
element), filtered or sub-day event windows, and every dialect but SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from svc_common.conditions import (
    AllOf,
    AnyOf,
    Compare,
    EventAbsence,
    EventCount,
    HasTag,
    InSegment,
    Node,
    Not,
    Op,
    Source,
)
from svc_profile.model import Days, is_attribute_name

DIALECTS = frozenset({"sqlite", "postgresql"})
_NUMBER_KINDS = ("i", "d", "m")
_ORDER_OPS = {Op.GT: "__gt__", Op.GTE: "__ge__", Op.LT: "__lt__", Op.LTE: "__le__", Op.EQ: "__eq__"}


class _NotSql(Exception):
    """The tree has a node SQL does not answer exactly: evaluate in Python."""


def segment_where(
    node: Node,
    tables: dict[str, Any],
    dialect: str,
    now: int,
    clock: Days,
    is_sensitive: Callable[[str], bool],
) -> Any | None:
    """A boolean SQL expression over ``profile_person`` equal to ``evaluate(node, person)``, or None."""
    if dialect not in DIALECTS:
        return None
    try:
        return _Translator(tables, dialect, now, clock, is_sensitive).node(node)
    except _NotSql:
        return None


_EXACT = 2**53
"""Numbers of a comparison translated to SQL are smaller: every int and double below it is exact in both."""


class _Translator:
    def __init__(
        self, tables: dict[str, Any], dialect: str, now: int, clock: Days, is_sensitive: Callable[[str], bool]
    ) -> None:
        self.t = tables
        self.p = tables["person"]
        self.dialect = dialect
        self.now = now
        self.clock = clock
        self.is_sensitive = is_sensitive

    def node(self, node: Node) -> Any:
        if isinstance(node, AllOf):
            return sa.and_(*map(self.node, self._cheap_first(node.children))) if node.children else sa.true()
        if isinstance(node, AnyOf):
            return sa.or_(*map(self.node, self._cheap_first(node.children))) if node.children else sa.false()
        if isinstance(node, Not):
            return sa.not_(self.node(node.child))
        if isinstance(node, Compare):
            return self.compare(node)
        if isinstance(node, EventCount | EventAbsence):
            return self.events(node)
        if isinstance(node, InSegment):
            m = self.t["member"]
            return sa.exists().where(
                m.c.profile_id == self.p.c.profile_id, m.c.segment_id == node.segment_id, m.c.is_member.is_(True)
            )
        if isinstance(node, HasTag) and node.op is None:
            tag = self.t["tag"]
            return sa.exists().where(
                tag.c.profile_id == self.p.c.profile_id,
                tag.c.name == node.tag_name,
                sa.or_(tag.c.expires_us.is_(None), tag.c.expires_us > self.now),
            )
        raise _NotSql

    @staticmethod
    def _cheap_first(children: tuple[Node, ...]) -> list[Node]:
        """Attribute tests before subqueries: the database stops at the first false (true) one."""
        return sorted(children, key=lambda c: not isinstance(c, Compare))

    # -- attributes ------------------------------------------------------------------------------------
    def _part(self, name: str, index: int) -> Any:
        if self.dialect == "sqlite":
            path = '$."' + name.replace('"', "") + f'"[{index}]'
            return sa.func.json_extract(self.p.c.attributes, path)
        document = sa.cast(sa.type_coerce(self.p.c.attributes, sa.Text), postgresql.JSONB)
        return sa.func.jsonb_extract_path_text(document, name, str(index))

    def compare(self, node: Compare) -> Any:
        if node.source is not Source.ATTRIBUTE or self.is_sensitive(node.name) or not is_attribute_name(node.name):
            # Python's answer for a name no attribute can have (a definition stored before 0.2.10 refused it): SQL
            # read a "_" entry every other reader leaves out, and a NUL failed the statement (walk, session 27).
            raise _NotSql
        kind = self._part(node.name, 0)
        if node.op is Op.EXISTS:
            return kind.is_not(None)
        if node.op is Op.NOT_EXISTS:
            return kind.is_(None)
        operands = node.operands if node.op is Op.BETWEEN else (node.operand,)
        if all(isinstance(v, str) for v in operands):
            kinds: tuple[str, ...] = ("s",)
            value = self._part(node.name, 1)
            if self.dialect == "postgresql":
                value = value.collate("C")  # code-point order, as Python compares str
        elif all(isinstance(v, int | float) and not isinstance(v, bool) and abs(v) < _EXACT for v in operands):
            # Past 2^53 Python compares an int with a double exactly; PostgreSQL compared a float8 operand with the
            # numeric value in float8 (2^53 + 1 equalled 2^53.0), so Python answers those (walk, session 27).
            kinds = _NUMBER_KINDS
            value = self._part(node.name, 1)
            if self.dialect == "postgresql":
                value = sa.case((kind.in_(kinds), sa.cast(value, sa.Numeric)), else_=None)
        else:
            raise _NotSql
        same = kind.in_(kinds) if len(kinds) > 1 else kind == kinds[0]
        if node.op is Op.NE:  # a missing field compares false, even NE
            return sa.and_(
                kind.is_not(None), sa.not_(sa.func.coalesce(sa.and_(same, value == node.operand), sa.false()))
            )
        if node.op is Op.BETWEEN:
            low, high = node.operands
            return sa.func.coalesce(sa.and_(same, value >= low, value <= high), sa.false())
        method = _ORDER_OPS.get(node.op)
        if method is None:
            raise _NotSql
        return sa.func.coalesce(sa.and_(same, getattr(value, method)(node.operand)), sa.false())

    # -- event windows from day buckets ------------------------------------------------------------------
    def events(self, node: EventCount | EventAbsence) -> Any:
        if node.filter is not None or node.window_seconds % 86_400:
            raise _NotSql
        d = self.t["day"]
        first = self.clock.first_of_window(self.now, node.window_seconds)
        total = sa.func.coalesce(
            sa.select(sa.func.sum(d.c.n))
            .where(d.c.profile_id == self.p.c.profile_id, d.c.event_type == node.event_type, d.c.day >= first)
            .scalar_subquery(),
            0,
        )
        # Rolling, not calendar: the retained events of the edge day from the window's start on.
        since = self.now - node.window_seconds * 1_000_000
        e = self.t["event"]
        edge = (
            sa.select(sa.func.count())
            .where(
                e.c.profile_id == self.p.c.profile_id,
                e.c.event_type == node.event_type,
                e.c.occurred_us >= since,
                e.c.occurred_us < self.clock.start_of(first),
            )
            .scalar_subquery()
        )
        total = total + edge
        if isinstance(node, EventAbsence):
            return total == 0
        test = total >= node.min_count
        return sa.and_(test, total <= node.max_count) if node.max_count else test


__all__ = ["DIALECTS", "segment_where"]
