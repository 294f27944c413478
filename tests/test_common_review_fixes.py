"""Fixes from the review of svc_common (report revcommon): each test failed before its fix."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa
from collect_helpers import KEYRING, make_event
from google.rpc import error_details_pb2
from grpc import aio
from grpc_status import rpc_status
from sqlalchemy.engine import make_url

from svc_common.cli import main as cli_main
from svc_common.config import ServerSettings, ServiceSettings, load_settings, redact_url
from svc_common.db import Database, create_engine_from_settings
from svc_common.errors import ConfigError, FieldViolation, InvalidArgument, Unavailable
from svc_common.logclient import CollectClient, LogFollower, RetryPolicy
from svc_common.ops._instances import InstanceRegistry, instance_table
from svc_common.paging import decode_token, encode_token
from svc_common.pb.qiming.common.v1 import event_pb2
from svc_common.process import ServerProcess
from svc_common.protection import JsonKeyProvider, Pseudonymizer, Sealer
from svc_common.protection._sm import SealError
from svc_common.server import ServiceSpec, build_server
from svc_common.server._errors import MAX_VIOLATIONS


class _Proxy:
    """A TCP proxy that can 'black-hole' its existing connections (bytes dropped both ways, sockets kept open, as
    when a firewall forgot an idle session or the peer lost power) while new connections still pass."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.connections = 0
        self.blackholed: set[int] = set()
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        number = self.connections
        self.connections += 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers += [writer, up_writer]

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    if number not in self.blackholed:
                        sink.write(data)
                        await sink.drain()
            except ConnectionError:
                pass

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))

    def blackhole_existing(self) -> None:
        self.blackholed.update(range(self.connections))

    async def close(self) -> None:
        self.server.close()
        for writer in self._writers:
            writer.close()
        await self.server.wait_closed()


async def _wait_for(predicate, timeout: float) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


# F0: a follower on a silently dead connection waited forever; keepalive pings now close the connection and the
# follower resumes from its stored cursor on a new one.
def test_follower_reconnects_after_the_connection_dies_silently(tmp_path: Path) -> None:
    env = {
        "QIMING_COLLECT_KEYRING_JSON": KEYRING,
        "QIMING_COLLECT_GRPC_KEEPALIVE_TIME_SECONDS": "1",
        "QIMING_COLLECT_GRPC_KEEPALIVE_TIMEOUT_SECONDS": "1",
        "QIMING_COLLECT_GRPC_MIN_CLIENT_PING_INTERVAL_SECONDS": "0.2",
    }
    server = ServerProcess("collect", work_dir=tmp_path, env=env).start()

    async def scenario() -> None:
        proxy = _Proxy(server.port)
        proxy_port = await proxy.start()
        direct = CollectClient(server.address)
        via_proxy = CollectClient(f"127.0.0.1:{proxy_port}", keepalive_time_seconds=0.3, keepalive_timeout_seconds=1)
        got: list[str] = []
        state = {"cursor": ""}

        async def load() -> str:
            return state["cursor"]

        async def handle(events, cursor: str) -> None:  # effects and cursor in one "transaction"
            got.extend(e.event_id for e in events)
            state["cursor"] = cursor

        fast = RetryPolicy(attempts=0, initial_backoff_millis=50, max_backoff_millis=200)
        follower = LogFollower(via_proxy, name="t", load_cursor=load, handle=handle, retry=fast)
        follower.start()
        try:
            first = make_event()
            await direct.publish([first])
            assert await _wait_for(lambda: got, 20)
            # Idle but healthy: the client's frequent pings are accepted (no GOAWAY too_many_pings, no reconnect).
            await asyncio.sleep(6)
            assert proxy.connections == 1, "the server closed a healthy connection over the client's pings"

            proxy.blackhole_existing()
            later = [make_event(), make_event()]
            await direct.publish(later[:1])
            await asyncio.sleep(1)
            await direct.publish(later[1:])
            arrived = await _wait_for(lambda: len(got) >= 3, 15)
            assert arrived, f"follower still waits on the dead connection ({proxy.connections} connection(s))"
            await asyncio.sleep(0.5)
            assert got == [first.event_id, *(e.event_id for e in later)]  # nothing lost, nothing twice
            assert proxy.connections >= 2
        finally:
            await follower.stop()
            await direct.close()
            await via_proxy.close()
            await proxy.close()

    try:
        asyncio.run(scenario())
    finally:
        server.terminate()


def test_keepalive_settings_reach_the_server_options() -> None:
    from svc_common.config import ServerSettings
    from svc_common.server._app import server_keepalive_options

    options = server_keepalive_options(ServerSettings())
    assert options["grpc.keepalive_time_ms"] == 30_000
    assert options["grpc.http2.ping_timeout_ms"] == 10_000
    assert options["grpc.keepalive_permit_without_calls"] == 1
    # Below the clients' default keepalive, or their pings get GOAWAY too_many_pings.
    assert options["grpc.http2.min_ping_interval_without_data_ms"] <= options["grpc.keepalive_time_ms"]


# F11: one normalisation inside Pseudonymizer, so svc_collect (raw value) and svc_profile (stripped) agree.
def test_same_phone_gets_the_same_pseudonym_in_collect_and_profile() -> None:
    from svc_collect.protect import EventProtector
    from svc_common.config import load_settings
    from svc_common.pb.qiming.common.v1 import event_pb2, types_pb2
    from svc_common.protection import JsonKeyProvider
    from svc_profile.config import ProfileSettings
    from svc_profile.identity import IdPolicy

    keys = JsonKeyProvider(KEYRING)
    phone = types_pb2.ID_TYPE_PHONE_PSEUDONYM
    event = event_pb2.Event(event_id="e1", event_type="login")
    event.identities.add(type=phone, value=" 13800138000 ")
    EventProtector(keys, ()).protect(event, None)
    via_profile_api = IdPolicy(load_settings(ProfileSettings), keys).ref(phone, " 13800138000 ", "user")[1]
    assert event.identities[0].value == via_profile_api


def test_pseudonym_normalisation_keeps_clean_values_and_merges_spellings() -> None:
    from cryptography.hazmat.primitives import hashes, hmac

    from svc_common.protection import JsonKeyProvider, Pseudonymizer

    keys = JsonKeyProvider(KEYRING)
    pseudonyms = Pseudonymizer(keys)

    def before_the_fix(kind: str, value: str) -> str:  # HMAC-SM3 over the value as given
        derive = hmac.HMAC(keys.keyring().pseudonym_key, hashes.SM3())
        derive.update(b"qiming/pseudonym")
        mac = hmac.HMAC(derive.finalize(), hashes.SM3())
        mac.update(kind.encode() + b"\x00" + value.encode())
        return "ps1:" + mac.finalize()[:16].hex()

    for kind, clean in (("phone", "13800138000"), ("fund_account", "310000123456"), ("email", "a@b.c")):
        assert pseudonyms.pseudonymize(kind, clean) == before_the_fix(kind, clean)  # stored pseudonyms stay valid
    clean = pseudonyms.pseudonymize("phone", "13800138000")
    for spelling in (" 13800138000\t", "+86 138-0013-8000", "0086 13800138000", "008613800138000", "(138) 0013.8000",
                     "１３８００１３８０００", "＋８６１３８００１３８０００"):  # fmt: skip
        assert pseudonyms.pseudonymize("phone", spelling) == clean, spelling
    # Not a number after the separators go: kept as typed (stripped), so distinct junk stays distinct.
    assert pseudonyms.pseudonymize("phone", "n/a x") != pseudonyms.pseudonymize("phone", "n/a y")
    assert pseudonyms.pseudonymize("phone", "+86") == before_the_fix("phone", "+86")
    # Other kinds are only stripped: separators may be meaningful there.
    assert pseudonyms.pseudonymize("fund_account", " 3100-01 ") == before_the_fix("fund_account", "3100-01")
    # A pseudonym with blanks around it is the pseudonym, not a value to hash again.
    assert pseudonyms.pseudonymize("phone", f" {clean} ") == clean


# F7: a status with many violations (or long texts) must stay below the client's trailer limit and keep its code.
@pytest.mark.parametrize(
    ("count", "message", "description"),
    [
        (10, "bad dataset definition", "not in the file"),
        (400, "bad dataset definition", "not in the file"),
        (3, "坏的数据集定义 " * 2000, "列" * 5000),
    ],
)
def test_many_field_violations_keep_their_status(count: int, message: str, description: str) -> None:
    violations = [FieldViolation(f"dataset.columns[{i}]", f"'column_{i}' {description}") for i in range(count)]

    async def bad(request: bytes, context) -> bytes:
        raise InvalidArgument(message, violations=violations, metadata={"dataset_id": "d1"})

    def register(server: aio.Server) -> None:
        handler = grpc.unary_unary_rpc_method_handler(bad)
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("t.T", {"Bad": handler}),))

    async def scenario() -> aio.AioRpcError:
        running = build_server([ServiceSpec("t", ("t.T",), register)], ServerSettings(grpc_port=0))
        await running.server.start()
        try:
            async with aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
                with pytest.raises(aio.AioRpcError) as raised:
                    await channel.unary_unary("/t.T/Bad")(b"", timeout=10)
                return raised.value
        finally:
            await running.server.stop(0)

    error = asyncio.run(scenario())
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT, (error.code(), error.details())
    status = rpc_status.from_call(error)
    info, bad_request = error_details_pb2.ErrorInfo(), error_details_pb2.BadRequest()
    status.details[0].Unpack(info)
    status.details[1].Unpack(bad_request)
    listed = [v.field for v in bad_request.field_violations]
    assert listed == [f"dataset.columns[{i}]" for i in range(len(listed))]  # the first ones, in order
    assert info.metadata["dataset_id"] == "d1"
    if count == 400:
        assert 10 <= len(listed) <= MAX_VIOLATIONS
        assert info.metadata["violations_total"] == "400"
        assert info.metadata["violations_omitted"] == str(400 - len(listed))
        assert error.details().startswith("bad dataset definition (400 field violations; the first")
    else:
        assert len(listed) == count and "violations_total" not in info.metadata
    assert len(error.details().encode()) <= 1024


# F1: a keyring given as a TOML table (not a JSON string) fails validation; its keys must not be echoed.
def test_config_error_does_not_echo_a_secret_setting(tmp_path: Path) -> None:
    from svc_collect.config import CollectSettings

    config = tmp_path / "q.toml"
    config.write_text(
        '[collect]\nkeyring_json = { format = 1, active_key_id = "k1", '
        'encryption_keys = { k1 = "U0VDUkVULVNNNC1LRVkhIQ==" }, pseudonym_key = "VERY-SECRET-PSEUDONYM-KEY" }\n'
    )
    with pytest.raises(ConfigError) as raised:
        load_settings(CollectSettings, config)
    message = str(raised.value)
    assert "keyring_json: Input should be a valid string" in message
    assert "VERY-SECRET" not in message and "U0VDUkVU" not in message


# F2: an unparsable database URL is named without its password.
@pytest.mark.parametrize(
    "url",
    ["postgresql+psycopg//qiming:s3cr3t-pw@db:5432/qiming", "postgresql+psycopg://qiming:s3cr3t-pw@db:port/qiming"],
)
def test_unparsable_database_url_does_not_echo_its_password(url: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(ServiceSettings, database_url=url)
    assert "s3cr3t-pw" not in str(raised.value)
    assert "qiming:***@db" in str(raised.value)


def test_redact_url() -> None:
    assert redact_url("nats://u:p@h1:4222,nats://u:q@h2:4222") == "nats://u:***@h1:4222,nats://u:***@h2:4222"
    assert redact_url("postgresql://db/x?user=a&password=secret&sslmode=require").endswith(
        "password=***&sslmode=require"
    )
    assert redact_url("sqlite:///data/collect.db") == "sqlite:///data/collect.db"
    # Other secrets a URL carries (the operator review): libpq's key passphrase, bearer tokens, API keys.
    assert (
        redact_url("postgresql://u:p@h/db?password=a&sslpassword=b&sslmode=require&sslkey=/etc/k.pem")
        == "postgresql://u:***@h/db?password=***&sslpassword=***&sslmode=require&sslkey=/etc/k.pem"
    )
    assert (
        redact_url("https://gw:p@gw.internal/x?token=a&access_token=b&client_secret=c&api_key=d&apiKey=e&page=2")
        == "https://gw:***@gw.internal/x?token=***&access_token=***&client_secret=***&api_key=***&apiKey=***&page=2"
    )
    # An unencoded "@" in the password: masked whole, not up to its first "@".
    assert redact_url("x postgresql://q:SEC@RET@h:1/d y") == "x postgresql://q:***@h:1/d y"
    assert redact_url("postgresql://q:ab//cd@db1:5432/q") == "postgresql://q:***@db1:5432/q"
    assert redact_url("nats://h:4222") == "nats://h:4222"


# F2b: `qiming config` masks the password of every URL setting, not only database_url's.
def test_config_listing_hides_url_passwords(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("QIMING_COLLECT_NATS_URL", "nats://qiming:n4ts-s3cret@nats1:4222")
    monkeypatch.setenv("QIMING_COLLECT_DATABASE_URL", "postgresql+psycopg://qiming:pg-s3cret@db:5432/qiming")
    cli_main(["config", "collect"])
    out = capsys.readouterr().out
    assert "n4ts-s3cret" not in out and "pg-s3cret" not in out
    assert "'nats://qiming:***@nats1:4222'" in out


# F9: UNAVAILABLE tells callers nothing about the database server; the detail is in the server's log.
def test_unavailable_does_not_name_the_database_server(
    tmp_path: Path, postgres_server_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = make_url(postgres_server_url).set(username="commonfix_no_such_role", password=None, database="commonfix_x")
    settings = ServiceSettings(
        data_dir=tmp_path, database_url=url.render_as_string(hide_password=False), database_connect_timeout_seconds=2
    )
    database = Database.from_settings(settings, wait=False)
    try:
        with pytest.raises(Unavailable) as raised, database.connection() as conn:
            conn.exec_driver_sql("SELECT 1")
    finally:
        database.dispose()
    message = str(raised.value)
    for internal in (url.host, str(url.port), "commonfix_no_such_role", "commonfix_x"):
        assert internal not in message, message
    assert "retry" in message
    assert any("commonfix_no_such_role" in r.getMessage() for r in caplog.records)  # for the operators


# F3: the default offline bundle is the full product; a bundle or install without an extra says what will not work.
def _offline_install(
    tmp_path: Path, *args: str, extras_file: str | None = None, sums: bool = True
) -> subprocess.CompletedProcess:
    bundle = tmp_path / "bundle"
    shutil.copytree(Path(__file__).parents[1] / "deploy", bundle / "deploy")
    (bundle / "wheelhouse").mkdir()
    (bundle / "wheelhouse" / "qiming-0-py3-none-any.whl").write_bytes(b"a wheel")
    if extras_file is not None:
        (bundle / "EXTRAS").write_text(extras_file + "\n")
    wheel_sum = hashlib.sha256(b"a wheel").hexdigest()
    (bundle / "BUILD").write_text(f"version=0\nwheel=qiming-0-py3-none-any.whl\nwheel_sha256={wheel_sum}\n")
    if sums:  # as `download` writes them
        files = sorted(p for p in bundle.rglob("*") if p.is_file())
        lines = [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(bundle)}" for p in files]
        (bundle / "SHA256SUMS").write_text("\n".join(lines) + "\n")
    python = tmp_path / "python"  # passes the version check, then stops before a virtual environment is made
    python.write_text(f'#!/bin/sh\n[ "$1" = -c ] && exec {sys.executable} "$@"\necho "stub python: $*" >&2\nexit 7\n')
    python.chmod(0o755)
    return subprocess.run(
        ["bash", str(bundle / "deploy" / "offline-install.sh"), *args, "--python", str(python)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_offline_install_defaults_to_the_full_product(tmp_path: Path) -> None:
    script = (Path(__file__).parents[1] / "deploy" / "offline-install.sh").read_text()
    assert 'EXTRAS_DEFAULT="dm,opengauss,modeling,nats"' in script
    run = _offline_install(tmp_path, "install", "--prefix", str(tmp_path / "opt"))
    assert run.returncode == 7, run.stderr  # reached `python -m venv`
    assert "extras: dm,opengauss,modeling,nats" in run.stdout
    assert "warning" not in run.stdout


def test_offline_install_names_what_a_bundle_without_modeling_cannot_do(tmp_path: Path) -> None:
    run = _offline_install(tmp_path, "install", "--prefix", str(tmp_path / "opt"), extras_file="dm,opengauss")
    assert "extras: dm,opengauss" in run.stdout
    assert "without the 'modeling' extra, qiming@modeling starts but answers every call UNIMPLEMENTED" in run.stdout
    assert "without the 'nats' extra" in run.stdout


def test_offline_install_refuses_a_bundle_without_its_sums_or_with_a_changed_file(tmp_path: Path) -> None:
    run = _offline_install(tmp_path / "a", "install", "--prefix", str(tmp_path / "opt"), sums=False)
    assert run.returncode == 2  # stopped before a virtual environment is made
    assert "no SHA256SUMS in" in run.stderr and "copy it again" in run.stderr

    bundle = tmp_path / "b" / "bundle"
    first = _offline_install(tmp_path / "b", "install", "--prefix", str(tmp_path / "opt"))
    assert first.returncode == 7, first.stderr  # the sums match: it went on
    (bundle / "wheelhouse" / "qiming-0-py3-none-any.whl").write_bytes(b"a swapped wheel")
    python = tmp_path / "b" / "python"
    script = str(bundle / "deploy" / "offline-install.sh")
    run = subprocess.run(
        ["bash", script, "install", "--prefix", str(tmp_path / "opt"), "--python", str(python)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "the bundle is damaged or was changed" in run.stderr and run.returncode == 2


def test_offline_install_refuses_an_unknown_extra(tmp_path: Path) -> None:
    run = _offline_install(tmp_path, "install", "--extras", "dm,modelling")
    assert run.returncode == 2
    assert "unknown extra 'modelling'" in run.stderr


# F4: a page token whose position this listing did not write is INVALID_ARGUMENT, not INTERNAL.
@pytest.fixture
def instances(tmp_path: Path) -> Iterator[InstanceRegistry]:
    engine = sa.create_engine(f"sqlite:///{tmp_path}/ops.db")
    metadata = sa.MetaData()
    table = instance_table(metadata, "collect")
    metadata.create_all(engine)
    registry = InstanceRegistry(Database(engine), table, "collect", "0.1.0")
    registry.record_start()
    yield registry
    engine.dispose()


@pytest.mark.parametrize(
    "position",
    [
        {"instance_id": "x"},
        {"started_at": 5, "instance_id": "x"},
        {"started_at": "yesterday", "instance_id": "x"},
        {"started_at": "2026-01-01T00:00:00", "instance_id": "x"},  # naive
        {"started_at": "2026-01-01T00:00:00+00:00", "instance_id": ["x"]},
    ],
)
def test_instances_refuse_a_foreign_position(instances: InstanceRegistry, position: dict) -> None:
    with pytest.raises(InvalidArgument) as raised:
        instances.list(10, encode_token("instances:collect", position))
    assert raised.value.reason == "INVALID_PAGE_TOKEN"


def test_instances_pages_still_work(instances: InstanceRegistry) -> None:
    InstanceRegistry(instances._db, instances._table, "collect", "0.1.0").record_start()  # a second instance
    rows, token = instances.list(1, "")
    assert len(rows) == 1 and token
    more, _ = instances.list(1, token)
    assert more and more[0].instance_id != rows[0].instance_id


@pytest.mark.parametrize("raw", [b"[" * 100_000, b'{"k":"jobs","p":' + b"[" * 3000 + b"]" * 3000 + b"}"])
def test_deep_or_long_page_token_is_invalid_argument(raw: bytes) -> None:
    token = base64.urlsafe_b64encode(raw).decode()
    with pytest.raises(InvalidArgument):
        decode_token(token, "jobs")


# F5: anything that cannot be opened is a SealError, truncated values included.
@pytest.mark.parametrize("keep", [0, 1, 3, 6, 10, 20, -1])
def test_truncated_sealed_value_is_a_seal_error(keep: int) -> None:
    sealer = Sealer(JsonKeyProvider(KEYRING))
    sealed = sealer.seal(b"13800138000", b"ctx")
    with pytest.raises(SealError):
        sealer.open(sealed[:keep], b"ctx")
    corrupt = bytearray(sealed)
    corrupt[1] = 200  # a key id length beyond the value
    with pytest.raises(SealError):
        sealer.open(bytes(corrupt), b"ctx")
    assert sealer.open(sealer.seal(b"", b"ctx"), b"ctx") == b""  # the shortest valid value still opens


# F12: only "ps1:" + 32 lowercase hex digits is a pseudonym; other values starting with "ps1:" get pseudonymized.
def test_only_real_pseudonyms_are_taken_as_pseudonyms() -> None:
    from svc_collect.protect import EventProtector
    from svc_common.pb.qiming.common.v1 import event_pb2, types_pb2

    clear = "ps1:13800138000/11010119900307451X00"
    assert len(clear) == 36
    assert not Pseudonymizer.is_pseudonym(clear)
    assert not Pseudonymizer.is_pseudonym("ps1:" + "A" * 32)
    real = Pseudonymizer(JsonKeyProvider(KEYRING)).pseudonymize("phone", "13800138000")
    assert Pseudonymizer.is_pseudonym(real)
    event = event_pb2.Event(event_id="e1", event_type="login")
    event.identities.add(type=types_pb2.ID_TYPE_PHONE_PSEUDONYM, value=clear)
    EventProtector(JsonKeyProvider(KEYRING), ()).protect(event, None)
    assert Pseudonymizer.is_pseudonym(event.identities[0].value)


# F6: the reconnect backoff starts over after a stream that handed over events (it used to ratchet up for good).
class _RecordingRetry(RetryPolicy):
    def __init__(self) -> None:
        super().__init__(attempts=0, initial_backoff_millis=1, max_backoff_millis=2)
        object.__setattr__(self, "attempts_seen", [])

    def delay_seconds(self, attempt: int) -> float:
        self.attempts_seen.append(attempt)  # type: ignore[attr-defined]
        return 0.001


class _BreakingClient:
    """Each follow stream delivers one new event and then breaks (a collector restart); after ``progress_until``
    streams it breaks at once, without progress."""

    def __init__(self, progress_until: int) -> None:
        self.streams = 0
        self.progress_until = progress_until

    async def wait_reachable(self, timeout_seconds: float) -> bool:
        return True

    async def read(self, after_cursor, *, event_types=(), follow=False, batch_size=0, max_events=0):
        if not follow:
            return
        self.streams += 1
        if self.streams <= self.progress_until:
            yield [event_pb2.Event(event_id=f"e{self.streams}")], str(self.streams)
        raise RuntimeError("collector restarted")


def test_follower_backoff_starts_over_after_progress() -> None:
    retry = _RecordingRetry()
    state = {"cursor": ""}

    async def load() -> str:
        return state["cursor"]

    async def handle(events, cursor: str) -> None:
        state["cursor"] = cursor

    async def scenario() -> None:
        client = _BreakingClient(progress_until=4)
        follower = LogFollower(client, name="t", load_cursor=load, handle=handle, retry=retry)  # type: ignore[arg-type]
        follower.start()
        assert await _wait_for(lambda: len(retry.attempts_seen) >= 7, 10)
        await follower.stop()

    asyncio.run(scenario())
    # Four streams with progress: each break is a first failure; then breaks without progress count up.
    assert retry.attempts_seen[:7] == [1, 1, 1, 1, 2, 3, 4], retry.attempts_seen


# F8: `qiming keyring init` refuses a bad key id before it writes a file, so a corrected retry works.
def test_keyring_init_with_a_bad_key_id_leaves_no_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "keyring.json"
    with pytest.raises(SystemExit) as exited:
        cli_main(["keyring", "init", str(path), "--key-id", "bad id"])
    assert exited.value.code == 2
    assert "key id 'bad id' must be 1-32 ASCII letters" in capsys.readouterr().err
    assert not path.exists()
    cli_main(["keyring", "init", str(path), "--key-id", "k2"])
    assert path.exists()


# F10: database_connect_timeout_seconds reaches dmPython (as login_timeout) like it reaches psycopg.
def test_dameng_gets_the_connect_timeout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("dmPython")
    settings = ServiceSettings(
        data_dir=tmp_path, database_url="dm+dmPython://QIMING:pw@192.0.2.1:5236", database_connect_timeout_seconds=3
    )
    engine = create_engine_from_settings(settings)
    seen: dict = {}

    def connect(*args, **kwargs):  # stands in for dmPython.connect: no DM server here
        seen.update(kwargs)
        raise engine.dialect.dbapi.OperationalError("stop here")

    monkeypatch.setattr(engine.dialect.dbapi, "connect", connect)
    try:
        with pytest.raises(sa.exc.DBAPIError):
            engine.connect()
    finally:
        engine.dispose()
    assert seen["login_timeout"] == 3
    assert seen.get("connection_timeout", 0) == 0  # that one would bound every statement


# Review note: Database.session(write=True) took SQLite's write lock outside its error mapping.
def test_busy_write_session_is_unavailable_and_gives_its_connection_back(tmp_path: Path) -> None:
    database = Database.from_settings(ServiceSettings(data_dir=tmp_path, sqlite_busy_timeout_millis=50))
    with database.engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (x int)"))
    holder = database.engine.connect().execution_options(sqlite_write=True)
    holder.begin()  # BEGIN IMMEDIATE: holds the write lock
    try:
        before = database.engine.pool.checkedout()
        with pytest.raises(Unavailable), database.session(write=True) as session:
            session.execute(sa.text("INSERT INTO t VALUES (2)"))
        assert database.engine.pool.checkedout() == before
    finally:
        holder.rollback()
        holder.close()
        database.dispose()


# Review note: keyring problems a restart cannot fix exit 2 (systemd's RestartPreventExitStatus), not 3.
@pytest.mark.parametrize("mode", [None, 0o640])
def test_unusable_keyring_file_exits_2(tmp_path: Path, mode: int | None) -> None:
    keyring = tmp_path / "keyring.json"
    if mode is not None:
        keyring.write_text(KEYRING)
        keyring.chmod(mode)
    env = {k: v for k, v in os.environ.items() if not k.startswith("QIMING_")}
    env |= {"QIMING_MODELING_KEYRING_FILE": str(keyring), "QIMING_MODELING_GRPC_PORT": "0"}
    result = subprocess.run(
        [sys.executable, "-m", "svc_common.cli", "serve", "modeling"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr
    assert f"qiming: error: keyring file {keyring}" in result.stderr


def test_offline_download_checks_its_options_before_removing_the_earlier_bundle(tmp_path: Path) -> None:
    earlier = tmp_path / "earlier-bundle"
    earlier.mkdir()
    (earlier / "EXTRAS").write_text("dm\n")
    for n, (option, value, message) in enumerate(
        (
            ("--glibc", "2.x", "--glibc: a version such as 2.28"),
            ("--arch", "sparc", "--arch: x86_64 or aarch64"),
            ("--python-version", "3", "--python-version: a version such as 3.11"),
        )
    ):
        run = _offline_install(tmp_path / str(n), "download", "--out", str(earlier), option, value)
        assert run.returncode == 2, run.stderr
        assert message in run.stderr
        assert (earlier / "EXTRAS").read_text() == "dm\n"
