"""campaign_0008: a participant's exit at an exit node is its row's ``exited_at``, not a visit row "exited", and the
visit of a send just before it is its ``final_send_node`` and ``final_send_outcome``; the journey report and a
customer's path read them with the visits and give the same answers; the migration moves stored exit visits into
the participants (and back on downgrade, with the sends)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import command
from campaign_helpers import (
    ATTRIBUTE,
    PUSH,
    T0,
    add_template,
    campaign_service,
    equals,
    event,
    node,
    on_event,
    run_journey,
    wait_then_send,
)

from svc_campaign.store import SCHEMA
from svc_campaign.store._reports import ReportStore
from svc_common.pb.qiming.campaign.v1 import campaign_pb2 as pb


def _report(service, journey_id: str = "j1") -> dict[str, tuple[int, int, int, int, int]]:  # type: ignore[no-untyped-def]
    """node → (entered, waiting, sent, converted, exited) of GetJourneyReport."""
    with service.db.connection() as conn:
        report = service.journeys.report(conn, journey_id, None, None)
    return {n.node_id: (n.entered, n.waiting, n.sent, n.converted, n.exited) for n in report.nodes}


def _path(service, user: str, journey_id: str = "j1") -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    with service.db.connection() as conn:
        progress = service.journeys.progress(conn, journey_id, user)
    return [(v.node_id, v.outcome) for v in progress.path]


def _rows(service, table: str, *columns: str) -> list[tuple]:  # type: ignore[no-untyped-def]
    t = service.t[table]
    with service.db.connection() as conn:
        return [tuple(r) for r in conn.execute(sa.select(*(t.c[c] for c in columns)).order_by(*t.primary_key))]


def _with_goal() -> pb.JourneyGraph:
    """signup → wait 1 h → push → exit; a deposit is the journey's goal (a conversion within a day of the push)."""
    graph = wait_then_send()
    graph.nodes.append(
        node(
            "goal",
            goal=pb.GoalNode(event=pb.SingleEventTrigger(event_type="deposit"), attribution_window_seconds=86400),
        )
    )
    return graph


def test_an_exit_node_writes_no_visit_row_and_the_reports_count_it(tmp_path, database_url) -> None:
    with campaign_service(tmp_path, database_url) as service:
        add_template(service)
        run_journey(service, wait_then_send())
        service.engine.handle([event("signup", "c1"), event("signup", "c2"), event("signup", "c3")])
        service.clock.advance(hours=1)
        assert service.engine.fire_due_timers().timers_fired == 3
        service.engine.handle([event("signup", "c4", service.clock.now())])  # still waiting
        # The walk after the timer wrote no visit row: its send and its exit are in the participant's row.
        assert sorted(set(_rows(service, "visit", "node_id", "outcome"))) == [("start", "entered"), ("wait", "waiting")]
        exits = _rows(
            service,
            "instance",
            "user_id",
            "status",
            "current_node",
            "exit_reason",
            "exited_at",
            "final_send_node",
            "final_send_outcome",
        )
        later = T0 + dt.timedelta(hours=1)
        assert sorted(exits) == [
            ("c1", "done", "end", "done", later, "send", "sent"),
            ("c2", "done", "end", "done", later, "send", "sent"),
            ("c3", "done", "end", "done", later, "send", "sent"),
            ("c4", "waiting", "wait", "", None, None, None),
        ]
        assert _report(service) == {
            "start": (4, 0, 0, 0, 0),
            "wait": (4, 1, 0, 0, 0),
            "send": (3, 0, 3, 0, 0),
            "end": (3, 0, 0, 0, 3),
        }
        assert _path(service, "c1") == [("start", "entered"), ("wait", "waiting"), ("send", "sent"), ("end", "exited")]
        with service.db.connection() as conn:
            assert [v.at for v in ReportStore(service.t).path(conn, _instance(conn, service, "c1"))] == [
                T0,
                T0,
                later,
                later,
            ]
            # A window of the report that ends before the exits counts none of them, nor the sends before them.
            early = service.journeys.report(conn, "j1", T0, T0 + dt.timedelta(minutes=1))
        assert {n.node_id: (n.entered, n.sent, n.exited) for n in early.nodes} == {
            "start": (3, 0, 0),
            "wait": (3, 0, 0),
        }


def _instance(conn, service, user: str) -> str:  # type: ignore[no-untyped-def]
    i = service.t["instance"].c
    return conn.execute(sa.select(i.instance_id).where(i.user_id == user)).scalar_one()


def test_a_conversion_after_the_exit_comes_after_it_in_the_path(tmp_path, database_url) -> None:
    with campaign_service(tmp_path, database_url) as service:
        add_template(service)
        run_journey(service, _with_goal())
        service.engine.handle([event("signup", "c1")])
        service.clock.advance(hours=1)
        service.engine.fire_due_timers()
        # The same instant as the exit: the conversion still follows it.
        service.engine.handle([event("deposit", "c1", service.clock.now())])
        assert _path(service, "c1") == [
            ("start", "entered"),
            ("wait", "waiting"),
            ("send", "sent"),
            ("end", "exited"),
            ("goal", "converted"),
        ]
        report = _report(service)
        assert report["end"] == (1, 0, 0, 0, 1) and report["goal"] == (1, 0, 0, 1, 0)


def _stored_the_old_way(service) -> None:  # type: ignore[no-untyped-def]
    """Rows as the tree before campaign_0008 wrote them: a finished participant and its exit visit, one stopped by a
    step limit (its exit stays a visit), one still waiting."""
    at, later = T0.isoformat(), (T0 + dt.timedelta(hours=1)).isoformat()
    with service.db.engine.begin() as conn:
        for n, (status, node_id) in enumerate((("done", "end"), ("done", "send"), ("waiting", "wait")), 1):
            conn.execute(
                sa.text(
                    "INSERT INTO campaign_participant (instance_id, journey_id, version_no, user_id, status,"
                    " current_node, entry_event, entered_at, updated_at, exit_reason)"
                    " VALUES (:i, 'j1', 1, :u, :s, :n, '{}', :at, :later, :r)"
                ),
                {"i": f"i{n}", "u": f"c{n}", "s": status, "n": node_id, "at": at, "later": later, "r": ""},
            )
        visits = [
            ("i1", "start", "entered", at),
            ("i1", "wait", "waiting", at),
            ("i1", "send", "sent", later),
            ("i1", "end", "exited", later),
            ("i2", "start", "entered", at),
            ("i2", "send", "exited:step_limit", later),
            ("i3", "start", "entered", at),
            ("i3", "wait", "waiting", at),
        ]
        for instance_id, node_id, outcome, when in visits:
            conn.execute(
                sa.text(
                    "INSERT INTO campaign_visit (instance_id, journey_id, node_id, outcome, at)"
                    " VALUES (:i, 'j1', :n, :o, :at)"
                ),
                {"i": instance_id, "n": node_id, "o": outcome, "at": when},
            )


def _answers(service) -> tuple:  # type: ignore[no-untyped-def]
    reports = ReportStore(service.t)
    with service.db.connection() as conn:
        rows, distinct = reports.visits(conn, "j1", None, None)
        paths = {i: [tuple(v) for v in reports.path(conn, i)] for i in ("i1", "i2", "i3")}
    return sorted(tuple(r) for r in rows), sorted(tuple(r) for r in distinct), paths


def test_the_upgrade_moves_exit_visits_into_the_participants_and_the_downgrade_back(tmp_path, database_url) -> None:
    with campaign_service(tmp_path, database_url) as service:
        engine = service.db.engine
        with engine.connect() as conn:
            command.downgrade(SCHEMA.migrations._config(conn), "campaign_0007")
            conn.commit()
        _stored_the_old_way(service)
        with engine.connect() as conn:
            command.upgrade(SCHEMA.migrations._config(conn), "campaign_0008")
            conn.commit()
        later = T0 + dt.timedelta(hours=1)
        assert _rows(service, "instance", "instance_id", "exited_at") == [("i1", later), ("i2", None), ("i3", None)]
        assert ("end", "exited") not in [(n, o) for n, o in _rows(service, "visit", "node_id", "outcome")]
        rows, distinct, paths = _answers(service)
        assert rows == [
            ("end", "exited", 1, 1),
            ("send", "exited:step_limit", 1, 1),
            ("send", "sent", 1, 1),
            ("start", "entered", 3, 3),
            ("wait", "waiting", 2, 2),
        ]
        assert distinct == [("end", 1), ("send", 2), ("start", 3), ("wait", 2)]
        assert [(n, o) for n, _, o in paths["i1"]] == [
            ("start", "entered"),
            ("wait", "waiting"),
            ("send", "sent"),
            ("end", "exited"),
        ]
        assert [o for _, _, o in paths["i2"]] == ["entered", "exited:step_limit"]
        with engine.connect() as conn:
            command.downgrade(SCHEMA.migrations._config(conn), "campaign_0007")
            conn.commit()
        with engine.connect() as conn:
            assert "exited_at" not in {c["name"] for c in sa.inspect(conn).get_columns("campaign_participant")}
            back = conn.execute(
                sa.text("SELECT instance_id, node_id, outcome FROM campaign_visit WHERE outcome = 'exited'")
            ).all()
        assert [tuple(r) for r in back] == [("i1", "end", "exited")]
        with engine.connect() as conn:
            command.upgrade(SCHEMA.migrations._config(conn), "head")
            conn.commit()
        assert _answers(service) == (rows, distinct, paths)


def _sends(*steps: str, on: str = "signup") -> pb.JourneyGraph:
    """``on`` → the steps (``send:<template>`` or ``branch``: a branch to the default, both ways to the next) →
    exit."""
    nodes = [node("start", trigger=pb.TriggerNode(trigger=on_event(on), next_node_id="n0"))]
    for n, step in enumerate(steps):
        after = f"n{n + 1}" if n + 1 < len(steps) else "end"
        if step == "branch":
            arm = pb.BranchArm(condition=equals(ATTRIBUTE, "risk_rating", "C4"), next_node_id=after)  # nobody's
            nodes.append(node(f"n{n}", branch=pb.BranchNode(arms=[arm], default_node_id=after)))
        else:
            send = pb.SendNode(channel=PUSH, template_id=step.split(":")[1], next_node_id=after, is_marketing=True)
            nodes.append(node(f"n{n}", send=send))
    nodes.append(node("end", exit=pb.ExitNode(reason="done")))
    return pb.JourneyGraph(entry_node_id="start", nodes=nodes)


def test_only_a_send_just_before_the_exit_is_kept_in_the_participant(tmp_path, database_url) -> None:
    with campaign_service(tmp_path, database_url) as service:
        add_template(service, "a")
        add_template(service, "b")
        run_journey(service, _sends("send:a", "send:b"), "two")
        run_journey(service, _sends("send:a", "branch", on="apply"), "branched")
        service.engine.handle([event("signup", "c1"), event("apply", "c2")])
        folded = _rows(service, "instance", "journey_id", "final_send_node", "final_send_outcome")
        # The second push of the day is over the channel's cap: suppressed at the gate, kept so in the participant.
        assert sorted(folded) == [("branched", None, None), ("two", "n1", "suppressed:channel_cap")]
        assert _rows(service, "visit", "node_id", "outcome") == [
            ("start", "entered"),
            ("n0", "sent"),
            ("start", "entered"),
            ("n0", "sent"),
            ("n1", "branch:default"),
        ]
        assert _path(service, "c1", "two") == [
            ("start", "entered"),
            ("n0", "sent"),
            ("n1", "suppressed:channel_cap"),
            ("end", "exited"),
        ]
        assert _path(service, "c2", "branched") == [
            ("start", "entered"),
            ("n0", "sent"),
            ("n1", "branch:default"),
            ("end", "exited"),
        ]
        with service.db.connection() as conn:
            report = service.journeys.report(conn, "two", None, None)
        nodes = {n.node_id: (n.entered, n.sent, dict(n.suppressed_by_reason), n.exited) for n in report.nodes}
        assert nodes == {
            "start": (1, 0, {}, 0),
            "n0": (1, 1, {}, 0),
            "n1": (1, 0, {"channel_cap": 1}, 0),
            "end": (1, 0, {}, 1),
        }


def test_the_downgrade_writes_the_kept_visits_back_in_order(tmp_path, database_url) -> None:
    with campaign_service(tmp_path, database_url) as service:
        add_template(service)
        run_journey(service, wait_then_send())
        service.engine.handle([event("signup", "c1"), event("signup", "c2")])
        service.clock.advance(hours=1)
        service.engine.fire_due_timers()
        before = _answers_of(service)
        with service.db.engine.connect() as conn:
            command.downgrade(SCHEMA.migrations._config(conn), "campaign_0007")
            conn.commit()
        v = service.t["visit"].c
        with service.db.engine.connect() as conn:
            rows = conn.execute(sa.select(v.instance_id, v.node_id, v.outcome).order_by(v.visit_id)).all()
        by_instance: dict[str, list[tuple[str, str]]] = {}
        for instance_id, node_id, outcome in rows:
            by_instance.setdefault(instance_id, []).append((node_id, outcome))
        assert (
            list(by_instance.values())
            == [[("start", "entered"), ("wait", "waiting"), ("send", "sent"), ("end", "exited")]] * 2
        )
        with service.db.engine.connect() as conn:
            command.upgrade(SCHEMA.migrations._config(conn), "head")
            conn.commit()
        # Upgraded again, the exits are in the participants and the sends rows: the same answers.
        assert _answers_of(service) == before


def _answers_of(service) -> tuple:  # type: ignore[no-untyped-def]
    reports, i = ReportStore(service.t), service.t["instance"].c
    with service.db.connection() as conn:
        rows, distinct = reports.visits(conn, "j1", None, None)
        ids = conn.execute(sa.select(i.instance_id).order_by(i.instance_id)).scalars().all()
        paths = [[tuple(v) for v in reports.path(conn, n)] for n in ids]
    return sorted(tuple(r) for r in rows), sorted(tuple(r) for r in distinct), paths
