"""Several timer loops on PostgreSQL (``timer_workers``): each fires the timers of its own share of the customers,
so all of one customer's timers are fired by one loop (two loops never gate one customer at once), the shares together
fire every timer exactly once, loops running at once lose and double nothing, and only PostgreSQL runs more than
one loop."""

from __future__ import annotations

import asyncio
import threading

import sqlalchemy as sa
from campaign_helpers import add_template, campaign_service, event, run_journey, statuses, wait_then_send

CUSTOMERS = [f"c{n}" for n in range(40)]


def _waiting(service) -> None:
    """Every customer waits in j1; c1 also in j2 (both pushes due at the same moment: the cap allows one)."""
    add_template(service, "t1")
    add_template(service, "t2")
    run_journey(service, wait_then_send(3600, "t1"), "j1")
    run_journey(service, wait_then_send(3600, "t2", entry_event="deposit"), "j2")
    service.engine.handle([event("signup", c) for c in CUSTOMERS] + [event("deposit", "c1")])
    assert service.engine.pending_timers() == len(CUSTOMERS) + 1
    service.clock.advance(hours=1)


def _messages_by_customer(service) -> dict[str, list[tuple[str, str]]]:
    return {c: sorted(statuses(service, c)) for c in CUSTOMERS}


def _expected() -> dict[str, list[tuple[str, str]]]:
    return {c: [("QUEUED", "")] if c != "c1" else [("QUEUED", ""), ("SUPPRESSED", "channel_cap")] for c in CUSTOMERS}


def test_each_share_fires_its_own_customers_and_together_all_once(tmp_path, database_url_postgresql) -> None:
    with campaign_service(tmp_path, database_url_postgresql) as service:
        _waiting(service)
        fired = {}
        for share in (0, 1):
            with service.db.connection() as conn:
                timer = service.t["timer"].c
                due = {r.user_id for r in conn.execute(sa.select(timer.user_id))}
            fired[share] = service.engine.fire_due_timers(None, (share, 2)).timers_fired
            with service.db.connection() as conn:
                left = {r.user_id for r in conn.execute(sa.select(timer.user_id))}
            if share == 0:
                first = due - left
                assert first and left  # both shares have customers (40 customers, a hash of each)
            else:
                assert not left and not (first & (due - left))  # the second share took the rest, none of the first's
        assert fired[0] + fired[1] == len(CUSTOMERS) + 1
        assert _messages_by_customer(service) == _expected()  # c1's two timers in one share: the cap still applies
        assert service.engine.fire_due_timers(None, (0, 2)).timers_fired == 0


def test_loops_firing_at_once_lose_and_double_nothing(tmp_path, database_url_postgresql) -> None:
    with campaign_service(tmp_path, database_url_postgresql, settings={"timer_batch_size": 3}) as service:
        _waiting(service)
        counts, errors = [0, 0, 0], []

        def loop(share: int) -> None:
            try:
                while n := service.engine.fire_due_timers(None, (share, 3)).timers_fired:
                    counts[share] += n
            except Exception as error:  # pragma: no cover - reported below
                errors.append(error)

        threads = [threading.Thread(target=loop, args=(k,)) for k in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors
        assert sum(counts) == len(CUSTOMERS) + 1 and service.engine.pending_timers() == 0
        assert _messages_by_customer(service) == _expected()


def _timer_loops(service) -> list[str]:
    async def started() -> list[str]:
        await service.start()
        try:
            return sorted(t.get_name() for t in service._tasks if t.get_name().startswith("campaign-timers"))
        finally:
            await service.stop()

    return asyncio.run(started())


def test_only_postgresql_runs_several_timer_loops(tmp_path, database_url) -> None:
    with campaign_service(tmp_path, database_url, settings={"timer_workers": 3}) as service:
        loops = _timer_loops(service)
    if database_url.startswith("sqlite"):
        assert loops == ["campaign-timers"]
    else:
        assert loops == ["campaign-timers-0", "campaign-timers-1", "campaign-timers-2"]
