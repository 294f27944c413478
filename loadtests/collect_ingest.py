r"""Locust load test of svc_collect ingest: send N events in batches through CollectService.Ingest, then check the log.

Each Locust user owns a gRPC channel whose client interceptor reports every call to Locust's statistics (Locust
itself speaks HTTP). Each task sends one batch of ``--batch-size`` new events; users stop once ``--events`` events
have been sent and answered, so a run is "send N events", not "run for T seconds". When Locust quits, the run's
ledger is written to ``--ids-dir`` and the whole log is read back (``ReadEvents`` from the beginning) to check that
it holds exactly the acknowledged events: none lost, none doubled (see ``collect_check.py``).

Run it single-process (no ``--processes``/``--master``): the target and the ledger are shared by the users of one
process. Usually started by ``make load-collect`` (``loadtests/run_collect_ingest.py``); by hand:

    .venv/bin/locust -f loadtests/collect_ingest.py --headless -u 8 -r 8 --host 127.0.0.1:50051 \
        --batch-size 1000 --events 1000000 --csv loadtests/reports/collect_ingest_b1000 \
        --html loadtests/reports/collect_ingest_b1000.html
"""

from __future__ import annotations

import itertools
import logging
import random
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import gevent
import grpc
import grpc.experimental.gevent as grpc_gevent
from collect_check import Ledger, check_log, open_channel, report
from locust import User, constant, events, task
from locust import stats as locust_stats
from locust.env import Environment
from locust.exception import StopUser
from locust.runners import LocalRunner

from svc_common.ids import new_event_id
from svc_common.pb.qiming.collect.v1 import collect_pb2, collect_pb2_grpc
from svc_common.pb.qiming.common.v1 import errors_pb2, event_pb2, types_pb2

# Locust runs its users as gevent greenlets: without this, a gRPC call blocks every user, not just its own.
# It must run before the first channel is created.
grpc_gevent.init_gevent()

log = logging.getLogger("collect_ingest")

_DEFAULT_IDS_DIR = Path(__file__).resolve().parent / "reports" / "collect_ingest_ids"
# Transient failures: the batch may or may not have been stored, and a retry is safe (de-duplication by event_id).
_RETRYABLE = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.CANCELLED,
}
_ACCEPTED, _DUPLICATE, _REJECTED = (
    collect_pb2.EVENT_STATUS_ACCEPTED,
    collect_pb2.EVENT_STATUS_DUPLICATE,
    collect_pb2.EVENT_STATUS_REJECTED,
)
_PAYLOAD_MISMATCH = errors_pb2.ERROR_REASON_PAYLOAD_MISMATCH


@events.init_command_line_parser.add_listener
def _arguments(parser: Any) -> None:
    group = parser.add_argument_group("collect ingest")
    group.add_argument("--batch-size", type=int, default=1000, help="events per Ingest call (1, 100, 1000 ...)")
    group.add_argument("--events", type=int, default=1_000_000, help="events to send in all; users stop after")
    group.add_argument(
        "--ids-dir", default=str(_DEFAULT_IDS_DIR), help="where the run's ledger of event ids is written"
    )
    group.add_argument("--call-timeout", type=float, default=30.0, help="deadline of one Ingest call, seconds")
    group.add_argument("--retries", type=int, default=3, help="retries of a batch whose call failed transiently")
    group.add_argument("--customers", type=int, default=100_000, help="distinct customer numbers in the events")
    group.add_argument("--no-check", action="store_true", help="write the ledger but do not read the log back")


class GrpcCallError(Exception):
    """A failed call as Locust shows it: status code and details (the RpcError's text varies per call)."""


def _short_method(method: str | bytes) -> str:
    text = method.decode() if isinstance(method, bytes) else method
    return text.rsplit(".", 1)[-1]  # "/qiming.collect.v1.CollectService/Ingest" -> "CollectService/Ingest"


class LocustReporter(grpc.UnaryUnaryClientInterceptor):
    """Reports each unary call to Locust: latency, and as the response length the number of events sent."""

    def __init__(self, environment: Environment) -> None:
        self._request_event = environment.events.request

    def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        started = time.perf_counter()
        call = continuation(client_call_details, request)
        error = call.exception()  # waits for the outcome; None on success
        exception = None
        if error is not None:
            code = error.code() if isinstance(error, grpc.Call) else None
            details = error.details() if isinstance(error, grpc.Call) else str(error)
            exception = GrpcCallError(f"{code.name if code else type(error).__name__}: {details}")
        self._request_event.fire(
            request_type="grpc",
            name=_short_method(client_call_details.method),
            response_time=(time.perf_counter() - started) * 1000,
            response_length=len(getattr(request, "events", ())),
            response=None,
            context={},
            exception=exception,
        )
        return call


class RunLedger(Ledger):
    """The shared state of a run: how many events are still to send, and the fate of each one sent."""

    def __init__(self, target: int, batch_size: int) -> None:
        super().__init__(target=target)
        self.batch_size = batch_size
        self.reserved = 0
        self.in_flight = 0
        self.quitting = False
        self.calls = self.failed_calls = self.retries = self.duplicates_on_retry = 0
        self.first_call_at = self.last_answer_at = 0.0
        self.per_user: dict[int, Counter[str]] = {}

    def reserve(self, wanted: int) -> int:
        """Events the next batch may carry (0: the target is reached). Greenlets switch only on I/O, so no lock."""
        n = max(0, min(wanted, self.target - self.reserved))
        if n:
            self.reserved += n
            self.in_flight += 1
            if not self.first_call_at:
                self.first_call_at = time.monotonic()
        return n

    def sending(self, ids: list[str]) -> None:
        # Unknown until the collector answers: a call cut off mid-way leaves its events here.
        self.unknown.update(ids)

    def answered(self, user: int, request: collect_pb2.IngestRequest, reply: Any, retry: bool) -> None:
        self.calls += 1
        self.last_answer_at = time.monotonic()
        counts = self.per_user.setdefault(user, Counter())
        events_sent = request.events
        for result in reply.results:
            event_id = events_sent[result.index].event_id
            self.unknown.discard(event_id)
            if result.status == _ACCEPTED:
                self.acknowledged.add(event_id)
                counts["accepted"] += 1
            elif result.status == _DUPLICATE:
                counts["duplicate"] += 1
                if result.reason == _PAYLOAD_MISMATCH:
                    self.payload_mismatches.add(event_id)
                elif retry:
                    # The first, unanswered, attempt stored it: acknowledged once, now.
                    self.acknowledged.add(event_id)
                    self.duplicates_on_retry += 1
                else:
                    self.unexpected_duplicates.add(event_id)
            elif result.status == _REJECTED:
                self.rejected[event_id] = errors_pb2.ErrorReason.Name(result.reason)
                counts["rejected"] += 1
            else:
                self.unknown.add(event_id)  # a status this client does not know: not an acknowledgement

    def failed(self, user: int) -> None:
        self.failed_calls += 1
        self.per_user.setdefault(user, Counter())["failed_calls"] += 1

    def done(self) -> None:
        self.in_flight -= 1

    def finish(self, environment: Environment) -> None:
        seconds = (self.last_answer_at - self.first_call_at) if self.last_answer_at else 0.0
        options = environment.parsed_options
        self.summary = {
            "host": environment.host,
            "batch_size": self.batch_size,
            "users": environment.runner.target_user_count if environment.runner else None,
            "calls": self.calls,
            "failed_calls": self.failed_calls,
            "retries": self.retries,
            "duplicates_on_retry": self.duplicates_on_retry,
            "acknowledged": len(self.acknowledged),
            "rejected": len(self.rejected),
            "unknown": len(self.unknown),
            "ingest_seconds": round(seconds, 3),
            "acknowledged_per_second": round(len(self.acknowledged) / seconds, 1) if seconds else 0.0,
            "call_timeout": options.call_timeout,
            "per_user": {str(u): dict(c) for u, c in sorted(self.per_user.items())},
        }


_ledger: RunLedger | None = None
_progress: gevent.Greenlet | None = None
_user_numbers = itertools.count(1)


def _report_progress(ledger: RunLedger) -> None:
    while True:
        gevent.sleep(10)
        elapsed = time.monotonic() - ledger.first_call_at if ledger.first_call_at else 0.0
        rate = len(ledger.acknowledged) / elapsed if elapsed else 0.0
        log.info(
            "acknowledged %s of %s events (%.0f/s), %s failed calls",
            f"{len(ledger.acknowledged):,}",
            f"{ledger.target:,}",
            rate,
            ledger.failed_calls,
        )


@events.init.add_listener
def _single_process_only(environment: Environment, **_: Any) -> None:
    if environment.runner is not None and not isinstance(environment.runner, LocalRunner):
        # The target counter and the ledger live in one process; workers would each send N events.
        raise RuntimeError("collect_ingest.py runs single-process: no --processes, --master or --worker")


@events.test_start.add_listener
def _start(environment: Environment, **_: Any) -> None:
    global _ledger, _progress
    options = environment.parsed_options
    if options.batch_size < 1 or options.events < 1:
        raise ValueError("--batch-size and --events must be at least 1")
    _ledger = RunLedger(options.events, options.batch_size)
    _progress = gevent.spawn(_report_progress, _ledger)


@events.test_stop.add_listener
def _stop(environment: Environment, **_: Any) -> None:
    if _progress is not None:
        _progress.kill(block=False)


@events.quitting.add_listener
def _check_the_log(environment: Environment, **_: Any) -> None:
    if _ledger is None:
        return
    if environment.runner is not None:
        # On Ctrl-C or --run-time, users may still be sending: stop them first (their open calls stay unknown).
        environment.runner.stop()
    # Locust's --csv writer rewrites the files once a second and not at exit: give it one more pass, or the CSV
    # misses the last second of calls (the console summary and the HTML report have them all).
    gevent.sleep(locust_stats.CSV_STATS_INTERVAL_SEC + 0.5)
    _ledger.finish(environment)
    options = environment.parsed_options
    ids_dir = Path(options.ids_dir)
    _ledger.write(ids_dir)
    log.info("ledger written to %s", ids_dir)
    if options.no_check:
        log.warning("--no-check: the log was not read back; run loadtests/collect_check.py to check it")
        return
    try:
        with open_channel(environment.host) as channel:
            result = check_log(channel, _ledger)
    except grpc.RpcError as error:
        log.error("FAIL: could not read the log back from %s: %s", environment.host, error)
        environment.process_exit_code = 1
        return
    print(report(_ledger, result), flush=True)
    # The verdict is the check's: a failed call that a retry settled is in the statistics, not a failure here.
    environment.process_exit_code = 0 if result.passed else 1


class EventFactory:
    """A realistic mix of app behaviour: mostly page and quote views, some fund views, a few filled trades whose
    amount and quantity are level 3 (encrypted at rest by the collector, as in production)."""

    TYPES = ("page_view", "quote_view", "fund_view", "trade_filled")
    WEIGHTS = (50, 30, 15, 5)
    SCREENS = ("home", "market", "fund_detail", "stock_detail", "portfolio", "news", "ipo_calendar", "me")
    SECURITIES = ("600519", "000001", "601318", "300750", "000858", "600036", "688981", "00700")
    FUNDS = ("000001", "110022", "161725", "005827", "519674", "003095")
    DEVICES = (
        ("iOS", "17.5", "iPhone15,2", "Apple", types_pb2.CHANNEL_APP),
        ("Android", "14", "V2309A", "vivo", types_pb2.CHANNEL_APP),
        ("Android", "13", "HUAWEI Mate 60", "HUAWEI", types_pb2.CHANNEL_APP),
        ("Windows", "11", "", "", types_pb2.CHANNEL_WEB),
        ("iOS", "17.4", "iPhone14,5", "Apple", types_pb2.CHANNEL_WECHAT_MINI_PROGRAM),
    )

    def __init__(self, customers: int, templates: int = 512) -> None:
        self.customers = customers
        # Building each event from scratch costs several times more than copying a template; the load generator
        # shares two cores with the collector, so it must stay cheap.
        self.templates = [self._template() for _ in range(templates)]

    def _template(self) -> event_pb2.Event:
        event_type = random.choices(self.TYPES, self.WEIGHTS)[0]
        os_name, os_version, model, maker, channel = random.choice(self.DEVICES)
        screen = random.choice(self.SCREENS)
        event = event_pb2.Event(
            event_type=event_type,
            anonymous_id=str(uuid.uuid4()),
            session_id=uuid.uuid4().hex[:16],
            channel=channel,
        )
        c = event.context
        c.app_version, c.os, c.os_version = "8.6.2", os_name, os_version
        c.device_model, c.device_manufacturer, c.screen = model, maker, screen
        c.locale, c.timezone, c.network_type = "zh_CN", "Asia/Shanghai", random.choice(("wifi", "5g", "4g"))
        c.library_name, c.library_version = f"qiming-sdk-{os_name.lower()}", "2.3.0"
        p = event.properties
        if event_type == "page_view":
            p["screen"].string_value = screen
            p["page_url"].string_value = f"qiming://app/{screen}"
            p["referrer_screen"].string_value = random.choice(self.SCREENS)
            p["duration_ms"].int_value = random.randint(200, 120_000)
            p["is_first_visit"].bool_value = random.random() < 0.1
        elif event_type == "quote_view":
            p["security_code"].string_value = random.choice(self.SECURITIES)
            p["market"].string_value = random.choice(("SH", "SZ", "HK"))
            p["last_price"].double_value = round(random.uniform(3, 1800), 2)
            p["from_watchlist"].bool_value = random.random() < 0.4
        elif event_type == "fund_view":
            p["fund_code"].string_value = random.choice(self.FUNDS)
            p["fund_type"].string_value = random.choice(("equity", "bond", "money_market", "hybrid"))
            p["risk_level"].int_value = random.randint(1, 5)
            p["from_recommendation"].bool_value = random.random() < 0.3
        else:
            p["security_code"].string_value = random.choice(self.SECURITIES)
            p["side"].string_value = random.choice(("buy", "sell"))
            p["order_id"].string_value = uuid.uuid4().hex[:20]
            # Level 3 by the collector's default sensitive_properties: encrypted at rest.
            p["order_quantity"].int_value = random.randrange(100, 10_000, 100)
            p["amount_fen"].money_fen_value = random.randint(1_000_00, 5_000_000_00)
        return event

    def batch(self, n: int) -> collect_pb2.IngestRequest:
        request = collect_pb2.IngestRequest()
        add, templates, customers = request.events.add, self.templates, self.customers
        now_ns = time.time_ns()
        for _ in range(n):
            event = add()
            event.CopyFrom(templates[random.randrange(len(templates))])
            event.event_id = new_event_id()  # UUIDv7, as docs/collect.md asks producers
            event.user_id = f"c{random.randrange(customers):08d}"
            event.occurred_at.FromNanoseconds(now_ns)
        return request


class CollectIngestUser(User):
    """One client of the collector (an app gateway, say) sending batches as fast as they are acknowledged."""

    host = "127.0.0.1:50051"
    wait_time = constant(0)

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        self.number = next(_user_numbers)
        self._channel: grpc.Channel | None = None

    def on_start(self) -> None:
        options = self.environment.parsed_options
        self._batch_size = options.batch_size
        self._timeout = options.call_timeout
        self._retries = options.retries
        self._factory = EventFactory(options.customers)
        # A connection of its own per user (no shared subchannel): collector workers are spread by connection.
        options = [("grpc.max_send_message_length", 64 * 1024 * 1024), ("grpc.use_local_subchannel_pool", 1)]
        channel = grpc.insecure_channel(self.host, options=options)
        self._channel = grpc.intercept_channel(channel, LocustReporter(self.environment))
        self._stub = collect_pb2_grpc.CollectServiceStub(self._channel)

    def on_stop(self) -> None:
        if self._channel is not None:
            self._channel.close()

    @task
    def ingest_batch(self) -> None:
        ledger = _ledger
        assert ledger is not None
        n = ledger.reserve(self._batch_size)
        if not n:
            self._target_reached(ledger)
        request = self._factory.batch(n)
        ledger.sending([e.event_id for e in request.events])
        try:
            for attempt in range(self._retries + 1):
                if attempt:
                    ledger.retries += 1
                    gevent.sleep(min(0.2 * 2**attempt, 5.0))
                try:
                    reply = self._stub.Ingest(request, timeout=self._timeout)
                except grpc.RpcError as error:
                    ledger.failed(self.number)
                    if error.code() not in _RETRYABLE:
                        break  # e.g. RESOURCE_EXHAUSTED: the same batch would fail again
                    continue
                ledger.answered(self.number, request, reply, retry=attempt > 0)
                break
        finally:
            ledger.done()

    def _target_reached(self, ledger: RunLedger) -> None:
        # The last user to see nothing left and nothing in flight ends the run; the others just stop.
        if ledger.in_flight == 0 and not ledger.quitting:
            ledger.quitting = True
            log.info("all %s events sent and answered: stopping", f"{ledger.target:,}")
            runner = self.environment.runner
            if runner is not None:
                gevent.spawn(runner.quit)
        raise StopUser()
