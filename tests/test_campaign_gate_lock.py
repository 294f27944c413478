"""The policy gate is serialised per customer across transactions on PostgreSQL: a due timer and an incoming event
of one customer, handled at the same moment by the timer loop and the event follower (each in its own
transaction), cannot both pass a cap of one message a day on a channel."""

from __future__ import annotations

import contextlib
import threading

from campaign_helpers import (
    add_template,
    campaign_service,
    event,
    on_event,
    run_journey,
    simple_graph,
    statuses,
    wait_then_send,
)

from svc_campaign.policy import LOCK_DIALECTS, _lock_key


def test_a_timer_and_an_event_of_one_customer_at_once_pass_a_cap_once(tmp_path, database_url_postgresql) -> None:
    with campaign_service(tmp_path, database_url_postgresql) as service:
        add_template(service, "t1")
        add_template(service, "t2")
        run_journey(service, wait_then_send(3600, "t1"), "j1")  # a push an hour after signing up
        run_journey(service, simple_graph(on_event("deposit"), "t2"), "j2")  # a push on a deposit
        service.engine.handle([event("signup", "c1")], "")
        service.clock.advance(hours=1)
        walker = service.engine.walker
        real_flush = walker.flush
        met = threading.Barrier(2)

        def flush_when_both_gated(conn) -> None:
            # Wait (a while) for the other transaction to have gated too. Without the lock both get here having read
            # no message of the other and both queue theirs; with it the second waits for the first's commit.
            with contextlib.suppress(threading.BrokenBarrierError):
                met.wait(timeout=2.0)
            real_flush(conn)

        walker.flush = flush_when_both_gated
        errors: list[BaseException] = []

        def run(work) -> None:
            try:
                work()
            except BaseException as exc:
                errors.append(exc)

        at = service.clock.now()
        threads = [
            threading.Thread(target=run, args=(lambda: service.engine.fire_due_timers(None, (0, 1)),)),
            threading.Thread(target=run, args=(lambda: service.engine.handle([event("deposit", "c1", at=at)], ""),)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors, errors
        assert sorted(statuses(service, "c1")) == [("QUEUED", ""), ("SUPPRESSED", "channel_cap")]


def test_lock_keys_are_stable_signed_32_bit_integers() -> None:
    assert LOCK_DIALECTS == ["postgresql"]
    keys = [_lock_key(f"C{i:08d}") for i in range(1000)]
    assert all(-(1 << 31) <= k < (1 << 31) for k in keys)
    assert _lock_key("C00000001") == _lock_key("C00000001") and len(set(keys)) > 990
