"""What the JetStream log makes of NATS's errors, against real nats-servers: at start a StartupError saying what to
change, while serving a precise gRPC status with the collector staying up. Before, these escaped as raw nats-py
exceptions (a traceback at start) or all became UNAVAILABLE with nats-py's own text."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import nats
import pytest
from collect_helpers import KEYRING, collect_settings, ingest_when_back, make_event, running_service
from conftest import NatsServer, free_port
from nats.js import api as js_api
from test_cli import _one_error_line, qiming

from svc_collect.service import ACCEPTED, REJECTED
from svc_common.errors import ConfigError, FailedPrecondition, ResourceExhausted, StartupError, Unavailable
from svc_common.pb.qiming.collect.v1 import collect_pb2
from svc_common.pb.qiming.common.v1 import errors_pb2

pytestmark = pytest.mark.nats

_ACCOUNTS = """
accounts {
  WITH_JS: { jetstream: enabled, users: [
    { user: writer, password: w },
    { user: nojsapi, password: n, permissions: { publish: { deny: ["$JS.API.>"] } } }
  ] }
  WITHOUT_JS: { users: [ { user: plain, password: p } ] }
  SMALL: { jetstream: { max_file: 300000 }, users: [ { user: small, password: s } ] }
}
"""


def _settings(tmp_path: Path, url: str, name: str, **overrides):
    return collect_settings(
        tmp_path,
        log_backend="jetstream",
        nats_url=url,
        jetstream_stream=name,
        jetstream_subject_prefix=f"{name}.events",
        **overrides,
    )


def _start(settings) -> None:
    async def start() -> None:
        async with running_service(settings):
            pass

    asyncio.run(start())


async def _js_call(url: str, call) -> None:
    nc = await nats.connect(url)
    try:
        await call(nc.jetstream())
    finally:
        await nc.close()


@pytest.fixture(scope="module")
def accounts_server(tmp_path_factory: pytest.TempPathFactory):
    server = NatsServer(tmp_path_factory.mktemp("nats-accounts"), free_port(), extra_config=_ACCOUNTS).start()
    try:
        yield server
    finally:
        server.stop()


def test_a_server_without_jetstream_is_refused_at_start(tmp_path: Path) -> None:
    server = NatsServer(tmp_path / "nats", free_port(), jetstream=False).start()
    try:
        with pytest.raises(StartupError, match=r"no JetStream answers at .*run nats-server with JetStream enabled"):
            _start(_settings(tmp_path, server.url, "NOJS"))
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("user", "message"),
    [
        ("plain:p", r"account that nats_url .* has no JetStream: enable it for that account"),
        ("nojsapi:n", r"did not answer the JetStream API within 1 s.*may publish to \$JS\.API\.>"),
    ],
)
def test_an_account_without_jetstream_is_refused_at_start(
    user: str, message: str, accounts_server: NatsServer, tmp_path: Path
) -> None:
    url = accounts_server.url.replace("nats://", f"nats://{user}@")
    settings = _settings(tmp_path, url, f"a{uuid.uuid4().hex[:10]}", jetstream_publish_timeout_millis=1000)
    with pytest.raises(StartupError, match=message):
        _start(settings)


def test_a_refused_login_is_named_at_start_without_the_password(accounts_server: NatsServer, tmp_path: Path) -> None:
    """It said "cannot reach NATS" (after the timeout, the client retrying the login) and printed nats_url whole."""
    url = accounts_server.url.replace("nats://", "nats://writer:secret-pw@")
    settings = _settings(tmp_path, url, "LOGIN", jetstream_publish_timeout_millis=1500)
    with pytest.raises(
        ConfigError, match=r"writer:\*\*\*@.* refused the collector's login .*Authorization Viol"
    ) as caught:
        _start(settings)
    assert "secret-pw" not in str(caught.value)


def test_subjects_overlapping_another_stream_are_refused_at_start(jetstream_server: NatsServer, tmp_path: Path) -> None:
    name = f"o{uuid.uuid4().hex[:10]}"
    other = f"{name}_OTHER"
    asyncio.run(_js_call(jetstream_server.url, lambda js: js.add_stream(name=other, subjects=[f"{name}.>"])))
    with pytest.raises(ConfigError, match=rf"overlap with those of stream {other}; set jetstream_subject_prefix"):
        _start(_settings(tmp_path, jetstream_server.url, name))


def test_replicas_on_a_single_server_are_refused_at_start(jetstream_server: NatsServer, tmp_path: Path) -> None:
    settings = _settings(tmp_path, jetstream_server.url, f"r{uuid.uuid4().hex[:10]}", jetstream_replicas=3)
    with pytest.raises(ConfigError, match=r"jetstream_replicas=3 but the nats-server at .* is not clustered"):
        _start(settings)


def test_qiming_serve_collect_refused_by_its_stream_prints_one_line_and_exits_2(
    jetstream_server: NatsServer, tmp_path: Path
) -> None:
    """A restart cannot fix a setting: exit 2, which the systemd unit does not restart (it was 3, restarted every
    10 s for ever, with a grpc traceback after the message)."""
    name = f"r{uuid.uuid4().hex[:10]}"
    env = {
        "QIMING_COLLECT_DATA_DIR": str(tmp_path),
        "QIMING_COLLECT_GRPC_PORT": "0",
        "QIMING_COLLECT_LOG_BACKEND": "jetstream",
        "QIMING_COLLECT_NATS_URL": jetstream_server.url,
        "QIMING_COLLECT_JETSTREAM_STREAM": name,
        "QIMING_COLLECT_JETSTREAM_SUBJECT_PREFIX": f"{name}.events",
        "QIMING_COLLECT_JETSTREAM_REPLICAS": "3",
        "QIMING_COLLECT_LOG_LEVEL": "WARNING",  # a warning of a NATS outage would be wrong: we closed the connection
        "QIMING_COLLECT_KEYRING_JSON": KEYRING,
    }
    result = qiming("serve", "collect", env=env)
    assert result.returncode == 2, result.stderr
    line = _one_error_line(result)
    assert "jetstream_replicas=3 but the nats-server at" in line and "set jetstream_replicas=1" in line


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"retention": js_api.RetentionPolicy.INTEREST}, r"has retention=interest.*needs retention=limits"),
        ({"retention": js_api.RetentionPolicy.WORK_QUEUE}, r"has retention=workqueue.*needs retention=limits"),
        ({"storage": js_api.StorageType.MEMORY}, r"has storage=memory.*needs file storage"),
        ({"no_ack": True}, r"has no_ack: true.*set no_ack: false"),
    ],
)
def test_a_stream_that_would_not_keep_the_events_is_refused_at_start(
    config: dict, message: str, jetstream_server: NatsServer, tmp_path: Path
) -> None:
    """Made by hand with the right subjects, but it would drop events (retention, memory) or never acknowledge them:
    the collector started on it and lost events, or timed out on every write."""
    name = f"k{uuid.uuid4().hex[:10]}"

    async def make(js) -> None:
        await js.add_stream(name=name, subjects=[f"{name}.events.*"], allow_direct=True, **config)

    asyncio.run(_js_call(jetstream_server.url, make))
    with pytest.raises(ConfigError, match=message):
        _start(_settings(tmp_path, jetstream_server.url, name))


def test_packs_fit_the_max_msg_size_of_the_stream(jetstream_server: NatsServer, tmp_path: Path) -> None:
    """A stream whose max_msg_size is below the server's max_payload refused every larger pack (as UNAVAILABLE)."""
    name = f"m{uuid.uuid4().hex[:10]}"
    settings = _settings(tmp_path, jetstream_server.url, name, jetstream_shards=1)
    _start(settings)  # creates the stream

    async def limit(js) -> None:
        config = (await js.stream_info(name)).config
        config.max_msg_size = 20_000
        await js.update_stream(config)

    asyncio.run(_js_call(jetstream_server.url, limit))

    async def scenario() -> None:
        async with running_service(settings) as (service, _):
            events = [make_event(user_id="c1", note="x" * 1500, n=i) for i in range(40)]
            assert [o.status for o in await service.ingest(events)] == [ACCEPTED] * 40
            pages = [
                e.event_id async for page, _ in service.read(collect_pb2.ReadEventsRequest(), frozenset()) for e in page
            ]
            assert pages == [e.event_id for e in events]

    asyncio.run(scenario())


def test_an_event_too_large_for_the_stream_is_rejected_alone(
    jetstream_server: NatsServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """max_event_bytes above what the stream takes in one message: it was UNAVAILABLE, retried for ever, then (0.2.5)
    FAILED_PRECONDITION for the whole batch; now the event is rejected alone (EVENT_TOO_LARGE, quarantined whole) and
    the rest of its batch is stored. The start says so in the log."""
    name = f"e{uuid.uuid4().hex[:10]}"
    settings = _settings(tmp_path, jetstream_server.url, name, jetstream_shards=1)
    _start(settings)

    async def limit(js) -> None:
        config = (await js.stream_info(name)).config
        config.max_msg_size = 9_000
        await js.update_stream(config)

    asyncio.run(_js_call(jetstream_server.url, limit))

    async def scenario() -> None:
        async with running_service(settings) as (service, catalog):
            assert "one message of the event log holds events of at most 4904 bytes" in caplog.text
            big = make_event(note="x" * 8000, more="y" * 3000)
            small, large, after = await service.ingest([make_event(note="x" * 1000), big, make_event(n=2)])
            assert [small.status, large.status, after.status] == [ACCEPTED, REJECTED, ACCEPTED]
            assert large.reason == errors_pb2.ERROR_REASON_EVENT_TOO_LARGE
            assert "holds 4904: send smaller events, or raise NATS's max_payload" in large.message
            (record,) = catalog.list_quarantine(reasons=["EVENT_TOO_LARGE"])
            assert service.open_quarantined(record) == big
            read = [
                e.event_id async for page, _ in service.read(collect_pb2.ReadEventsRequest(), frozenset()) for e in page
            ]
            assert read == [small.event_id, after.event_id]

    asyncio.run(scenario())


def test_a_stream_deleted_while_serving_is_failed_precondition(jetstream_server: NatsServer, tmp_path: Path) -> None:
    """Ingest, reads, stats and a quarantine replay (the calls that touch the log): all were UNAVAILABLE with
    nats-py's "no responders", which clients retry for ever."""
    name = f"d{uuid.uuid4().hex[:10]}"
    settings = _settings(tmp_path, jetstream_server.url, name, unknown_event_type_policy="quarantine")

    async def scenario() -> None:
        async with running_service(settings) as (service, catalog):
            (held,) = await service.ingest([make_event("mystery")])
            assert held.quarantine_id
            await service.schemas.register(collect_pb2.EventSchema(event_type="mystery"), 0, "test")
            await _js_call(jetstream_server.url, lambda js: js.delete_stream(name))

            async def read() -> None:
                async for _ in service.read(collect_pb2.ReadEventsRequest(), frozenset()):
                    pass

            calls = {
                "ingest": lambda: service.ingest([make_event("mystery")]),
                "read": read,
                "stats": lambda: service.stats(None, None, []),
                "replay": lambda: service.replay(catalog.get_quarantined([held.quarantine_id])),
            }
            for call in calls.values():
                with pytest.raises(FailedPrecondition, match=rf"stream {name} no longer exists") as caught:
                    await call()
                assert caught.value.reason == "LOG_MISCONFIGURED"
            assert catalog.get_quarantined([held.quarantine_id])[0].released_seq is None  # still held

    asyncio.run(scenario())


def test_a_full_stream_is_resource_exhausted_and_reads_go_on(jetstream_server: NatsServer, tmp_path: Path) -> None:
    name = f"f{uuid.uuid4().hex[:10]}"

    async def scenario() -> None:
        async with running_service(_settings(tmp_path, jetstream_server.url, name)) as (service, _):
            (first,) = await service.ingest([make_event()])

            async def fill(js) -> None:
                config = (await js.stream_info(name)).config
                config.max_msgs = 1
                config.discard = js_api.DiscardPolicy.NEW
                await js.update_stream(config)

            await _js_call(jetstream_server.url, fill)
            with pytest.raises(ResourceExhausted, match=rf"stream {name} is full.*raise the stream's limits") as caught:
                await service.ingest([make_event()])
            assert caught.value.reason == "LOG_FULL"
            read = [
                e.event_id async for page, _ in service.read(collect_pb2.ReadEventsRequest(), frozenset()) for e in page
            ]
            assert read == [first.event_id]

    asyncio.run(scenario())


def test_an_account_out_of_storage_is_resource_exhausted(accounts_server: NatsServer, tmp_path: Path) -> None:
    """The account's max_file reached: JetStream's 10002 was UNAVAILABLE ("refused the write")."""
    url = accounts_server.url.replace("nats://", "nats://small:s@")
    settings = _settings(tmp_path, url, f"s{uuid.uuid4().hex[:10]}", jetstream_shards=1)

    async def scenario() -> None:
        async with running_service(settings) as (service, _):
            with pytest.raises(ResourceExhausted, match=r"no storage left .*raise the account's") as caught:
                for n in range(40):
                    await service.ingest([make_event(note="x" * 1500, n=n * 100 + i) for i in range(100)])
            assert caught.value.reason == "LOG_FULL"

    asyncio.run(scenario())


@pytest.mark.parametrize("change", ["max_msg_size", "subjects"])
def test_a_stream_changed_while_serving_is_failed_precondition(
    change: str, jetstream_server: NatsServer, tmp_path: Path
) -> None:
    """Its max_msg_size lowered below the packs, or its subjects given to another stream: both were UNAVAILABLE,
    which clients retry for ever; the message now names what changed."""
    name = f"c{uuid.uuid4().hex[:10]}"

    async def edit(js) -> None:
        config = (await js.stream_info(name)).config
        if change == "max_msg_size":
            config.max_msg_size = 20_000
            await js.update_stream(config)
        else:
            config.subjects = [f"{name}.moved.*"]
            await js.update_stream(config)
            await js.add_stream(name=f"{name}_OTHER", subjects=[f"{name}.events.*"])

    async def scenario() -> None:
        async with running_service(_settings(tmp_path, jetstream_server.url, name, jetstream_shards=1)) as (
            service,
            _,
        ):
            await service.ingest([make_event()])
            await _js_call(jetstream_server.url, edit)
            expected = r"refuses a pack as too large" if change == "max_msg_size" else r"no longer stored by JetStream"
            with pytest.raises(FailedPrecondition, match=expected) as caught:
                await service.ingest([make_event(note="x" * 1500, n=i) for i in range(40)])
            assert caught.value.reason == "LOG_MISCONFIGURED"

    asyncio.run(scenario())


def test_jetstream_switched_off_while_serving_is_unavailable(tmp_path: Path) -> None:
    """nats-server restarted without JetStream: retryable, and the collector serves again once it is back."""
    server = NatsServer(tmp_path / "nats", free_port()).start()
    settings = _settings(tmp_path, server.url, "OFF", jetstream_publish_timeout_millis=1000)

    async def scenario() -> None:
        async with running_service(settings) as (service, _):
            server.stop()
            server.jetstream = False
            server.start()
            with pytest.raises(Unavailable, match="no JetStream answered") as caught:
                for _ in range(40):  # until the client has reconnected
                    try:
                        await service.ingest([make_event()])
                    except Unavailable as exc:
                        if "no JetStream" in str(exc):
                            raise
                    await asyncio.sleep(0.25)
            assert caught.value.reason == "LOG_UNAVAILABLE"
            server.stop()
            server.jetstream = True
            server.start()
            assert (await ingest_when_back(service)).status == ACCEPTED

    try:
        asyncio.run(scenario())
    finally:
        server.stop()


def test_a_message_that_is_not_a_pack_is_named_with_its_removal(jetstream_server: NatsServer, tmp_path: Path) -> None:
    """Someone published on the log's subjects: reads and writes of that shard failed INTERNAL (a protobuf
    DecodeError), and the next start failed with its traceback."""
    name = f"j{uuid.uuid4().hex[:10]}"
    settings = _settings(tmp_path, jetstream_server.url, name, jetstream_shards=1)
    fix = rf"message 2 of JetStream stream {name} is not a pack of events.*nats stream rmm {name} 2"

    async def scenario() -> None:
        async with running_service(settings) as (service, _):
            await service.ingest([make_event()])
            await _js_call(jetstream_server.url, lambda js: js.publish(f"{name}.events.0", b'{"not": "a pack"}'))
            with pytest.raises(FailedPrecondition, match=fix) as caught:
                async for _ in service.read(collect_pb2.ReadEventsRequest(), frozenset()):
                    pass
            assert caught.value.reason == "LOG_MISCONFIGURED"
            with pytest.raises(FailedPrecondition, match=fix):
                await service.ingest([make_event()])

    asyncio.run(scenario())
    with pytest.raises(ConfigError, match=fix):
        _start(settings)


@pytest.mark.parametrize(
    ("description", "expected"),
    [
        ("maximum messages exceeded", ResourceExhausted),
        ("maximum bytes exceeded", ResourceExhausted),
        ("write /data/jetstream/msgs/1.blk: input/output error", Unavailable),
    ],
)
def test_a_store_failure_is_called_full_only_when_a_limit_was_reached(description: str, expected: type) -> None:
    """JetStream's 10077 is any store failure: a stream limit reached (full, RESOURCE_EXHAUSTED) or the server's
    storage failing, which is no reason to tell the operator to raise limits (it was all LOG_FULL)."""
    from nats.js.errors import APIError

    from svc_collect.store._jetstream_errors import serving_error

    error = serving_error(APIError(code=503, description=description, err_code=10077), "log", None)
    assert type(error) is expected
    assert description in error.message if expected is Unavailable else "limits" in error.message
