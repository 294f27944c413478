"""Journeys as data: draft → validate → publish (immutable versions) → start / pause / stop, and their
reports. State transitions that do not apply are FAILED_PRECONDITION naming both states."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

from google.protobuf import json_format
from sqlalchemy import and_, func, or_, select
from sqlalchemy.engine import Connection, RowMapping

from svc_campaign.engine import Engine
from svc_campaign.experiments import Experiments
from svc_campaign.graph import (
    MAX_GRAPH_BYTES,
    MAX_NODES,
    Problem,
    raise_problems,
    service_send_problems,
    validate,
    withheld_problems,
)
from svc_campaign.store._journeys import JourneyStore
from svc_campaign.store._reports import ReportStore
from svc_campaign.store._templates import TemplateStore
from svc_common.errors import Aborted, AlreadyExists, FailedPrecondition, FieldViolation, InvalidArgument, NotFound
from svc_common.paging import PAGE_BYTES
from svc_common.pb.qiming.campaign.v1 import campaign_pb2 as pb
from svc_common.timestamps import timestamp_datetime

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
# Which states each action may start from.
_ALLOWED = {
    "start": ("PUBLISHED", "PAUSED"),
    "pause": ("RUNNING",),
    "stop": ("PUBLISHED", "RUNNING", "PAUSED"),
    "publish": ("DRAFT", "PUBLISHED", "RUNNING", "PAUSED"),
}


MAX_DESCRIPTION_CHARS = 4000
"""A journey's description is for people: a page of text at most (it is in every listing)."""
_LIST_CHUNK = 50
"""Journeys read from the database at a time while a listing page fills (each may hold a draft of MAX_GRAPH_BYTES)."""


def check_size(draft: pb.JourneyGraph, field: str, description: str = "") -> None:
    """INVALID_ARGUMENT naming the limit for a draft of more than MAX_NODES nodes or MAX_GRAPH_BYTES bytes (or a
    description over MAX_DESCRIPTION_CHARS). Checked before anything else: a draft of 300,000 nodes (7 MB) took 14 s
    to save, held up other callers and made every later ListJourneys too large for a default client."""
    if len(draft.nodes) > MAX_NODES:
        raise InvalidArgument(
            f"{field}: {len(draft.nodes)} nodes, at most {MAX_NODES} per journey: split it into several journeys",
            reason="JOURNEY_TOO_LARGE",
            violations=[FieldViolation(f"{field}.nodes", f"at most {MAX_NODES} nodes", "JOURNEY_TOO_LARGE")],
            metadata={"max_nodes": str(MAX_NODES)},
        )
    size = draft.ByteSize()
    if size > MAX_GRAPH_BYTES:
        raise InvalidArgument(
            f"{field}: {size} bytes encoded, at most {MAX_GRAPH_BYTES} per journey: shorten its conditions and"
            " labels, or split it into several journeys",
            reason="JOURNEY_TOO_LARGE",
            violations=[FieldViolation(field, f"at most {MAX_GRAPH_BYTES} bytes", "JOURNEY_TOO_LARGE")],
            metadata={"max_bytes": str(MAX_GRAPH_BYTES)},
        )
    if len(description) > MAX_DESCRIPTION_CHARS:
        raise InvalidArgument(
            f"journey.description: at most {MAX_DESCRIPTION_CHARS} characters (this one has {len(description)})",
            reason="STRING_TOO_LONG",
            violations=[FieldViolation("journey.description", f"at most {MAX_DESCRIPTION_CHARS} characters")],
        )


def _state(name: str) -> int:
    return pb.JourneyState.Value(f"JOURNEY_STATE_{name}")


def to_proto(row: RowMapping | dict[str, Any], published: pb.JourneyGraph | None = None) -> pb.Journey:
    journey = pb.Journey(
        journey_id=row["journey_id"],
        name=row["name"],
        description=row["description"],
        state=_state(row["journey_state"]),
        draft=json_format.ParseDict(row["draft"], pb.JourneyGraph()),
        draft_revision=row["draft_revision"],
        published_version=row["published_version"],
        entry_rules=json_format.ParseDict(row["entry_rules"], pb.EntryRules()),
        priority=row["priority"],
        purpose=row["purpose"],
    )
    if published is not None:
        journey.published.CopyFrom(published)
    for name in ("created_at", "updated_at", "start_at", "end_at"):
        if row[name] is not None:
            getattr(journey, name).FromDatetime(row[name])
    return journey


def _aware(at: dt.datetime) -> dt.datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)  # SQLite gives naive UTC times back


def _check_window(row: dict[str, Any]) -> None:
    """A run window whose end is not after its start can never admit anyone."""
    start, end = row.get("start_at"), row.get("end_at")
    if start is not None and end is not None and _aware(end) <= _aware(start):
        raise InvalidArgument(
            f"journey.end_at {_aware(end).isoformat()} is not after journey.start_at {_aware(start).isoformat()}:"
            " nobody could ever enter",
            violations=[FieldViolation("journey.end_at", "must be after start_at")],
        )


class Journeys:
    def __init__(self, tables: dict[str, Any], engine: Engine, experiments: Experiments) -> None:
        self.t = tables
        self.engine = engine
        self.experiments = experiments
        self.store = JourneyStore(tables)
        self.reports = ReportStore(tables)
        self.templates = TemplateStore(tables)

    def _row(self, conn: Connection, journey_id: str, *, lock: bool = False) -> dict[str, Any]:
        row = self.store.row(conn, journey_id, lock=lock)
        if row is None:
            raise NotFound(f"no journey {journey_id!r}", metadata={"journey_id": journey_id})
        return dict(row)

    def _published(self, conn: Connection, journey_id: str, version: int) -> pb.JourneyGraph | None:
        if not version:
            return None
        graph = self.store.published(conn, journey_id, version)
        if graph is None:
            raise NotFound(f"journey {journey_id!r} has no version {version}")
        return json_format.ParseDict(graph, pb.JourneyGraph())

    def problems(self, conn: Connection, graph: pb.JourneyGraph, purpose: str = "marketing") -> list[Problem]:
        """Every problem of ``graph`` in a journey of ``purpose`` (``ValidateJourney``'s, by default marketing)."""

        def template_channel(template_id: str) -> int | None:
            return self.templates.channel(conn, template_id)

        def variants(experiment_id: str) -> list[str] | None:
            experiment = self.experiments.get(conn, experiment_id, missing_ok=True)
            return None if experiment is None else [v.key for v in experiment.variants]

        return (
            validate(graph, template_channel, variants)[0]
            + withheld_problems(graph, self._withheld())
            + service_send_problems(graph, purpose)
        )

    def _withheld(self) -> Any:
        """What svc_profile withholds from svc_campaign (an anonymous caller): attributes and features named
        ``*_fen`` (its rule for amounts), the configured ``sensitive_fields``, and the tags it defines as level 3
        (asked of svc_profile; unknown when it does not answer)."""
        sensitive = {s.lower() for s in self.engine.settings.sensitive_fields}
        level3 = getattr(self.engine.walker.profiles, "withheld_tags", lambda: frozenset())() or frozenset()

        def withheld(kind: str, name: str) -> bool:
            if name.lower() in sensitive:
                return True
            if kind == "tag":
                return name in level3
            return name.endswith("_fen") or "_fen." in name

        return withheld

    def create(self, conn: Connection, journey: pb.Journey, now: dt.datetime) -> pb.Journey:
        check_size(journey.draft, "journey.draft", journey.description)
        if not journey.name:
            raise InvalidArgument(
                "journey.name: name the journey", violations=[FieldViolation("journey.name", "required")]
            )
        journey_id = journey.journey_id or str(uuid.uuid4())
        if not _ID.match(journey_id):
            raise InvalidArgument(
                f"journey.journey_id {journey_id!r}: letters, digits, '_', '.', '-' (at most 64)",
                violations=[FieldViolation("journey.journey_id", "bad id")],
            )
        if journey.HasField("start_at") and journey.HasField("end_at"):
            _check_window(
                {
                    "start_at": timestamp_datetime(journey.start_at, "journey.start_at"),
                    "end_at": timestamp_datetime(journey.end_at, "journey.end_at"),
                }
            )
        if self.store.exists(conn, journey_id):
            raise AlreadyExists(f"journey {journey_id!r} already exists")
        row = {
            "journey_id": journey_id,
            "name": journey.name,
            "description": journey.description,
            "journey_state": "DRAFT",
            "draft": json_format.MessageToDict(journey.draft),
            "draft_revision": 1,
            "entry_rules": json_format.MessageToDict(journey.entry_rules),
            "published_version": 0,
            "priority": journey.priority,
            "purpose": journey.purpose or "marketing",
            "start_at": _when(journey, "start_at"),
            "end_at": _when(journey, "end_at"),
            "created_at": now,
            "updated_at": now,
        }
        self.store.add(conn, row)
        return to_proto(row)

    def update_draft(
        self, conn: Connection, request: pb.UpdateJourneyDraftRequest, now: dt.datetime
    ) -> tuple[pb.Journey, list[Problem]]:
        check_size(request.draft, "draft")
        row = self._row(conn, request.journey_id)
        if row["journey_state"] == "STOPPED":
            raise FailedPrecondition(f"journey {request.journey_id!r} is STOPPED: create a new journey")
        if request.expected_draft_revision and request.expected_draft_revision != row["draft_revision"]:
            have, want = row["draft_revision"], request.expected_draft_revision
            raise Aborted(f"journey {request.journey_id!r} draft is at revision {have}, not {want}")
        changes = {
            "draft": json_format.MessageToDict(request.draft),
            "draft_revision": row["draft_revision"] + 1,
            "updated_at": now,
        }
        if request.HasField("entry_rules"):
            changes["entry_rules"] = json_format.MessageToDict(request.entry_rules)
        self.store.update(conn, request.journey_id, changes)
        row.update(changes)
        return to_proto(row, self._published(conn, row["journey_id"], row["published_version"])), self.problems(
            conn, request.draft, row["purpose"]
        )

    def publish(self, conn: Connection, journey_id: str, expected_revision: int, now: dt.datetime) -> pb.Journey:
        row = self._row(conn, journey_id)
        self._check(row, "publish")
        if expected_revision and expected_revision != row["draft_revision"]:
            raise Aborted(
                f"journey {journey_id!r} draft is at revision {row['draft_revision']}, not {expected_revision}"
            )
        graph = json_format.ParseDict(row["draft"], pb.JourneyGraph())
        _check_window(row)
        raise_problems(self.problems(conn, graph, row["purpose"]))
        version = row["published_version"] + 1
        self.store.add_version(conn, journey_id, version, row["draft"], row["entry_rules"], now)
        state = "PUBLISHED" if row["journey_state"] == "DRAFT" else row["journey_state"]
        changes = {"published_version": version, "journey_state": state, "updated_at": now}
        self.store.update(conn, journey_id, changes)
        row.update(changes)
        self.engine.invalidate()
        return to_proto(row, graph)

    def _check(self, row: dict[str, Any], action: str) -> None:
        if row["journey_state"] not in _ALLOWED[action]:
            allowed = " or ".join(_ALLOWED[action])
            raise FailedPrecondition(
                f"journey {row['journey_id']!r} is {row['journey_state']}: {action} needs {allowed}",
                reason="WRONG_STATE",
                metadata={"state": row["journey_state"]},
            )

    def transition(
        self, conn: Connection, journey_id: str, action: str, now: dt.datetime, reason: str = ""
    ) -> pb.Journey:
        # Locked until this transaction ends: the state checked is the state changed, and an event batch entering
        # customers into this journey (it reads the state FOR SHARE, see Engine.entry_states) finishes first.
        row = self._row(conn, journey_id, lock=True)
        self._check(row, action)
        if action == "start" and row["end_at"] is not None and _aware(row["end_at"]) <= now:
            raise FailedPrecondition(
                f"journey {journey_id!r} ended at {_aware(row['end_at']).isoformat()}: its run window is over and"
                " nobody could enter; create a new journey with a later end_at",
                reason="RUN_WINDOW_OVER",
                metadata={"end_at": _aware(row["end_at"]).isoformat()},
            )
        if action == "start":
            self._check_published(conn, row)
        target = {"start": "RUNNING", "pause": "PAUSED", "stop": "STOPPED"}[action]
        self.store.update(conn, journey_id, {"journey_state": target, "updated_at": now})
        if action == "stop":
            self.engine.stop_journey(conn, journey_id, reason or "stopped", now)
        row.update(journey_state=target, updated_at=now)
        self.engine.invalidate()
        return to_proto(row, self._published(conn, journey_id, row["published_version"]))

    def _check_published(self, conn: Connection, row: dict[str, Any]) -> None:
        """FAILED_PRECONDITION when the published version fails today's validation: one published by an older
        release (a marketing journey's send without is_marketing), or whose templates have changed since. Starting
        (or resuming) it would run what PublishJourney now refuses."""
        journey_id, version = row["journey_id"], row["published_version"]
        graph = self._published(conn, journey_id, version)
        if graph is None:
            return  # nothing published: _check has refused already
        problems = self.problems(conn, graph, row["purpose"])
        if not problems:
            return
        first = problems[0]
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise FailedPrecondition(
            f"journey {journey_id!r} version {version} fails the current validation: {first.message} ({first.code})"
            f"{more}; it stays {row['journey_state']}: fix the draft (ValidateJourney lists every problem), publish"
            " it as a new version and start that",
            reason="PUBLISHED_VERSION_INVALID",
            metadata={"node_id": first.node_id, "code": first.code, "version": str(version)},
        )

    def get(self, conn: Connection, journey_id: str, version: int) -> pb.Journey:
        row = self._row(conn, journey_id)
        return to_proto(row, self._published(conn, journey_id, version or row["published_version"]))

    def page(
        self, conn: Connection, states: list[str], after: str, size: int, page_bytes: int = PAGE_BYTES
    ) -> tuple[list[pb.Journey], bool]:
        """Up to ``size`` journeys after ``after`` in id order, ending early once they pass ``page_bytes`` encoded
        (one at least), and whether more follow. Read and decoded a few at a time: a page of large drafts stops
        reading where it ends."""
        found: list[pb.Journey] = []
        total = 0
        while True:
            wanted = min(_LIST_CHUNK, size + 1 - len(found))  # one past the page: whether more follow
            rows = self.store.rows(conn, states, after, wanted)
            for row in rows:
                if len(found) == size:
                    return found, True
                journey = to_proto(row)
                total += journey.ByteSize() + 8  # with the field's tag and length
                if found and total > page_bytes:
                    return found, True
                found.append(journey)
            if len(rows) < wanted:
                return found, False
            after = rows[-1]["journey_id"]

    # -- reports --------------------------------------------------------------------------------------

    def report(
        self, conn: Connection, journey_id: str, start: dt.datetime | None, end: dt.datetime | None
    ) -> pb.GetJourneyReportResponse:
        self._row(conn, journey_id)
        rows, distinct = self.reports.visits(conn, journey_id, start, end)
        nodes: dict[str, pb.NodeReport] = {}
        entered: dict[str, set[str]] = {}
        for node_id, n in distinct:
            nodes[node_id] = pb.NodeReport(node_id=node_id, entered=n)
        for node_id, outcome, n, _ in rows:
            report = nodes.setdefault(node_id, pb.NodeReport(node_id=node_id))
            if outcome in ("sent", "deferred"):
                report.sent += n
            elif outcome.startswith("suppressed:"):
                report.suppressed_by_reason[outcome.split(":", 1)[1]] += n
            elif outcome == "converted":
                report.converted += n
            elif outcome.startswith("exited"):
                report.exited += n
        entered.clear()
        for (node_id, reason), n in self._suppressed_later(conn, journey_id, start, end, rows).items():
            report = nodes.setdefault(node_id, pb.NodeReport(node_id=node_id))
            moved = min(n, report.sent)
            report.sent -= moved
            report.suppressed_by_reason[reason] += moved
        for node_id, n in self.reports.waiting(conn, journey_id):
            nodes.setdefault(node_id, pb.NodeReport(node_id=node_id)).waiting = n
        for node_id, delivered, clicked in self.reports.receipts(conn, journey_id, start, end):
            report = nodes.setdefault(node_id, pb.NodeReport(node_id=node_id))
            report.delivered, report.clicked = int(delivered or 0), int(clicked or 0)
        totals = self.reports.totals(conn, journey_id, start, end)
        response = pb.GetJourneyReportResponse(
            entered=totals[0], converted=int(totals[1] or 0), in_progress=int(totals[2] or 0)
        )
        response.nodes.extend(nodes[k] for k in sorted(nodes))
        return response

    def _suppressed_later(
        self, conn: Connection, journey_id: str, start: dt.datetime | None, end: dt.datetime | None, visits: Any
    ) -> dict[tuple[str, str], int]:
        """(node, reason) → messages queued or deferred at the gate and suppressed afterwards (an erasure, a stop, a
        consent withdrawal, a preemption ...): the journey's suppressed messages less the visits that were
        suppressed at the gate (each send visit writes one message, created at the visit's time)."""
        m = self.t["message"].c
        where = [m.journey_id == journey_id, m.status == "SUPPRESSED"]
        if start:
            where.append(m.created_at >= start)
        if end:
            where.append(m.created_at < end)
        query = select(m.node_id, m.suppression_reason, func.count()).where(*where)
        counted = conn.execute(query.group_by(m.node_id, m.suppression_reason)).all()
        at_gate = {
            (node, outcome.split(":", 1)[1]): n for node, outcome, n, _ in visits if outcome[:11] == "suppressed:"
        }
        later = {(node, reason): n - at_gate.get((node, reason), 0) for node, reason, n in counted}
        return {key: n for key, n in later.items() if n > 0}

    def _message_outcomes(self, conn: Connection, journey_id: str, row: Any) -> dict[tuple[str, Any], list[str]]:
        """(node, time) → the reasons of the participant's messages written there that are suppressed now."""
        m = self.t["message"].c
        query = select(m.node_id, m.created_at, m.suppression_reason).where(
            m.user_id == row["user_id"],
            m.journey_id == journey_id,
            m.instance_id == row["instance_id"],
            m.status == "SUPPRESSED",
        )
        found: dict[tuple[str, Any], list[str]] = {}
        for node_id, at, reason in conn.execute(query.order_by(m.created_at, m.message_id)):
            found.setdefault((node_id, at), []).append(reason)
        return found

    def progress(self, conn: Connection, journey_id: str, user_id: str) -> pb.GetJourneyProgressResponse:
        self._row(conn, journey_id)
        row = self.reports.latest(conn, journey_id, user_id)
        if row is None:
            raise NotFound(f"customer {user_id!r} has not entered journey {journey_id!r}")
        response = pb.GetJourneyProgressResponse(current_node_id=row["current_node"] if row["status"] != "done" else "")
        if row["next_action_at"] is not None and row["status"] != "done":
            response.next_action_at.FromDatetime(row["next_action_at"])
        suppressed = self._message_outcomes(conn, journey_id, row)
        for visit in self.reports.path(conn, row["instance_id"]):
            outcome = visit.outcome
            later = suppressed.get((visit.node_id, visit.at))
            if later and outcome in ("sent", "deferred"):
                # Queued or deferred at the gate, suppressed since (erasure, stop, consent withdrawn, preempted).
                outcome = f"suppressed:{later.pop(0)}"
            elif later and outcome.startswith("suppressed:"):
                later.pop(0)
            item = response.path.add(node_id=visit.node_id, outcome=outcome)
            item.entered_at.FromDatetime(visit.at)
        return response


def _when(journey: Any, name: str) -> dt.datetime | None:
    """A journey's ``start_at`` / ``end_at``: None when unset; out of range, INVALID_ARGUMENT naming it."""
    return timestamp_datetime(getattr(journey, name), f"journey.{name}") if journey.HasField(name) else None


__all__ = ["Journeys", "and_", "or_", "to_proto"]
