"""svc_campaign's background loops run on threads of their own (``svc_campaign/threads.py``), not on the event
loop's default pool that serves RPCs: with that pool's every thread taken, the timer loops still fire due timers,
and with every loop busy, a blocking call of an RPC still gets a thread."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

from campaign_helpers import add_template, campaign_service, event, run_journey, wait_then_send


def _due_timers(service, customers: int) -> None:
    add_template(service, "t1")
    run_journey(service, wait_then_send(3600, "t1"), "j1")
    service.engine.handle([event("signup", f"c{n}") for n in range(customers)])
    service.clock.advance(hours=1)


def test_timer_loops_fire_while_every_thread_of_the_rpc_pool_is_taken(tmp_path) -> None:
    with campaign_service(tmp_path, settings={"timer_batch_size": 2, "timer_poll_millis": 10}) as service:
        _due_timers(service, 6)

        async def scenario() -> tuple[int, set[str]]:
            loop = asyncio.get_running_loop()
            rpc_pool = ThreadPoolExecutor(max_workers=1)
            loop.set_default_executor(rpc_pool)
            release = threading.Event()
            blocked = loop.run_in_executor(None, release.wait)  # the only RPC thread is busy until the end
            names: set[str] = set()
            fire = service.engine.fire_due_timers

            def fire_and_note(*args):  # type: ignore[no-untyped-def]
                names.add(threading.current_thread().name)
                return fire(*args)

            service.engine.fire_due_timers = fire_and_note  # type: ignore[method-assign]
            await service.start()
            try:
                for _ in range(500):
                    if service.engine.pending_timers() == 0:
                        break
                    await asyncio.sleep(0.01)
                return service.engine.pending_timers(), names
            finally:
                release.set()
                await blocked
                await service.stop()

        left, names = asyncio.run(scenario())
        assert left == 0  # on the default pool the timer loop would wait for the blocked thread forever
        assert names and all(name.startswith("campaign-loop") for name in names)


def test_an_rpc_gets_a_thread_while_every_loop_is_busy(tmp_path) -> None:
    with campaign_service(tmp_path) as service:
        threads = service.threads

        async def scenario() -> bool:
            release = threading.Event()
            busy = [asyncio.ensure_future(threads.run(release.wait)) for _ in range(threads.size)]
            try:
                # An RPC handler's blocking call (server.py runs them with asyncio.to_thread) is served at once.
                return await asyncio.wait_for(asyncio.to_thread(lambda: True), 5)
            finally:
                release.set()
                await asyncio.gather(*busy)
                await threads.close()

        assert asyncio.run(scenario()) is True
        # SQLite: one timer loop; then the follower, schedules, the outbox, the publisher and auto-promotion.
        assert threads.size == 1 + 5
