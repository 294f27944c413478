"""The tamper-evident audit file: lines chained by HMAC-SM3, verified line by line; tampering is found at the line
where it happened; a restart continues the chain, a torn file is left as it is and a new one started."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from audit_helpers import KEY, audit_record

from svc_common.audit import GENESIS, ChainedAuditSink, ChainMac, chain_key, stream_prefix, verify_file
from svc_common.audit._chain import canonical, record_bodies, seal
from svc_common.audit.verify_cli import describe, verify_command
from svc_common.errors import ConfigError
from svc_common.protection import generate_keyring
from svc_common.server import AuditRecord


def _record(number: int, customers: tuple[str, ...] = ("c1",)) -> AuditRecord:
    return audit_record(number, customers=customers)


def _write(directory: Path, count: int, start: int = 0, key: bytes = KEY) -> Path:
    async def run() -> Path:
        sink = ChainedAuditSink.open(directory, key, "collect", host="h1")
        for number in range(start, start + count):
            await sink.record(_record(number))
        sink.close()
        return sink.path

    return asyncio.run(run())


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def test_records_are_chained_lines_that_verify(tmp_path: Path) -> None:
    path = _write(tmp_path, 5)
    assert path.name.startswith("audit-collect-h1-0-") and path.suffix == ".jsonl"
    lines = [json.loads(raw) for raw in _lines(path)]
    assert [line["seq"] for line in lines] == [1, 2, 3, 4, 5]
    assert lines[0]["prev"] == GENESIS
    assert all(lines[i]["prev"] == lines[i - 1]["mac"] for i in range(1, 5))
    assert lines[0]["customers"] == ["c1"] and lines[0]["method"].endswith("/Ingest")
    assert lines[0]["trace_id"] == f"{0:032x}" and lines[0]["status"] == "OK"
    verdict = verify_file(path, ChainMac(KEY))
    assert verdict.ok and verdict.lines == 5
    assert describe(verdict).endswith("OK, 5 lines (seq 1 to 5)")


def test_a_call_over_1000_customers_is_written_in_chained_parts(tmp_path: Path) -> None:
    async def run() -> Path:
        sink = ChainedAuditSink.open(tmp_path, KEY, "profile", host="h1")
        await sink.record(_record(1, tuple(f"c{i}" for i in range(2500))))
        sink.close()
        return sink.path

    path = asyncio.run(run())
    lines = [json.loads(raw) for raw in _lines(path)]
    assert [(line["part"], line["parts"], len(line["customers"])) for line in lines] == [
        (1, 3, 1000),
        (2, 3, 1000),
        (3, 3, 500),
    ]
    assert verify_file(path, ChainMac(KEY)).ok


def _tampered(tmp_path: Path, change: Callable[[list[bytes]], list[bytes]]) -> tuple[int | None, str]:
    path = _write(tmp_path, 6)
    lines = _lines(path)
    path.write_bytes(b"".join(change(lines)))
    verdict = verify_file(path, ChainMac(KEY))
    return verdict.bad_line, verdict.reason


def _edit_line_3(lines: list[bytes]) -> list[bytes]:
    edited = json.loads(lines[2])
    edited["customers"] = ["someone-else"]
    lines[2] = json.dumps(edited).encode() + b"\n"
    return lines


def test_an_edited_line_is_found_at_its_line(tmp_path: Path) -> None:
    line, reason = _tampered(tmp_path, _edit_line_3)
    assert line == 3 and "mac does not match" in reason


def test_a_deleted_line_is_found_where_it_was(tmp_path: Path) -> None:
    line, reason = _tampered(tmp_path, lambda lines: lines[:3] + lines[4:])
    assert line == 4 and "seq 5 where 4 was expected" in reason and "deleted" in reason


def test_a_deleted_first_line_is_found(tmp_path: Path) -> None:
    line, reason = _tampered(tmp_path, lambda lines: lines[1:])
    assert line == 1 and "seq 2 where 1 was expected" in reason


def test_a_swapped_pair_is_found_at_the_first_of_them(tmp_path: Path) -> None:
    line, reason = _tampered(tmp_path, lambda lines: [*lines[:1], lines[2], lines[1], *lines[3:]])
    assert line == 2 and "seq 3 where 2 was expected" in reason


def test_a_truncated_tail_is_found(tmp_path: Path) -> None:
    line, reason = _tampered(tmp_path, lambda lines: [*lines[:5], lines[5][:40]])
    assert line == 6 and "incomplete" in reason


def test_another_keyring_fails_at_line_1(tmp_path: Path) -> None:
    path = _write(tmp_path, 3)
    verdict = verify_file(path, ChainMac(chain_key(generate_keyring())))
    assert verdict.bad_line == 1 and "another keyring" in verdict.reason


def test_a_restart_continues_the_chain_of_its_file(tmp_path: Path) -> None:
    first = _write(tmp_path, 3)
    second = _write(tmp_path, 2, start=3)
    assert second == first
    lines = [json.loads(raw) for raw in _lines(first)]
    assert [line["seq"] for line in lines] == [1, 2, 3, 4, 5]
    assert verify_file(first, ChainMac(KEY)).ok


def test_a_torn_last_line_is_kept_and_a_new_file_started_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = _write(tmp_path, 3)
    with first.open("ab") as handle:
        handle.write(b'{"at":"2026-12-06T12:')  # the process died in the middle of a write
    torn = first.read_bytes()
    with caplog.at_level(logging.WARNING, logger="qiming.audit"):
        second = _write_later(tmp_path)
    assert second != first and first.read_bytes() == torn  # evidence untouched
    assert any("not continued" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    assert verify_file(second, ChainMac(KEY)).ok
    assert json.loads(_lines(second)[0])["prev"] == GENESIS
    assert verify_file(first, ChainMac(KEY)).bad_line == 4
    assert _write(tmp_path, 1) == second  # the next start continues the new file, not the torn one
    assert verify_file(second, ChainMac(KEY)).lines == 2


def _write_later(directory: Path) -> Path:
    # The new file must not take the torn file's name: a start in the same second gets a -p<pid> suffix.
    return _write(directory, 1)


def test_a_file_held_by_a_live_process_is_not_shared(tmp_path: Path) -> None:
    async def run() -> tuple[Path, Path]:
        one = ChainedAuditSink.open(tmp_path, KEY, "collect", host="h1")
        two = ChainedAuditSink.open(tmp_path, KEY, "collect", host="h1")
        await one.record(_record(1))
        await two.record(_record(2))
        one.close()
        two.close()
        return one.path, two.path

    one, two = asyncio.run(run())
    assert one != two
    assert verify_file(one, ChainMac(KEY)).lines == 1 and verify_file(two, ChainMac(KEY)).lines == 1


def test_lines_queued_at_close_are_written(tmp_path: Path) -> None:
    path = _write(tmp_path, 500)
    assert verify_file(path, ChainMac(KEY)).lines == 500


def test_an_unwritable_directory_is_a_config_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ConfigError, match=r"audit_chain_dir .* cannot be written"):
        ChainedAuditSink.open(blocker / "audit", KEY, "collect")


def test_verify_command_reports_each_file_and_exits_1_on_a_bad_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keyring = generate_keyring()
    keyring_file = tmp_path / "keyring.json"
    keyring_file.write_text(keyring.to_json())
    keyring_file.chmod(0o600)
    good = _write(tmp_path / "a", 4, key=chain_key(keyring))
    assert verify_command([good], None, keyring_file) == 0
    assert capsys.readouterr().out.strip() == f"{good}: OK, 4 lines (seq 1 to 4)"
    lines = _lines(good)
    bad = tmp_path / "b" / good.name
    bad.parent.mkdir()
    bad.write_bytes(b"".join([lines[0], lines[2], lines[3]]))
    assert verify_command([tmp_path / "a", tmp_path / "b"], None, keyring_file) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("OK, 4 lines (seq 1 to 4)")
    assert out[1].startswith(f"{bad}: line 2: seq 3 where 2 was expected")


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, "data/audit"), ("off", None), ("OFF", None), ("", "data/audit"), ("~/trail", "~/trail")],
)
def test_audit_chain_dir_defaults_under_data_dir_and_only_off_turns_it_off(
    tmp_path: Path, value: str | None, expected: str | None
) -> None:
    from svc_collect.config import CollectSettings
    from svc_common.config import load_settings

    overrides = {} if value is None else {"audit_chain_dir": value}
    settings = load_settings(CollectSettings, data_dir=tmp_path / "data", **overrides)
    wanted = None if expected is None else Path(expected.replace("data/", f"{tmp_path}/data/")).expanduser()
    assert settings.resolved_audit_chain_dir() == wanted


def test_a_later_start_in_the_same_second_sorts_after_and_a_worker_has_its_own_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from svc_common.audit._sink import _files_of

    for name in ("audit-collect-h1-0-20261206T120000Z-p7.jsonl", "audit-collect-h1-0-20261206T120000Z.jsonl"):
        (tmp_path / name).touch()
    assert [p.name for p in _files_of(tmp_path, "audit-collect-h1-0-")][-1].endswith("Z-p7.jsonl")
    monkeypatch.setenv("QIMING_WORKER_INDEX", "3")
    assert stream_prefix("collect", "db-1") == "audit-collect-db_1-3-"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"a": 1},
        {"z": [1, 2]},
        {"file": "audit-collect-h1-0-x.jsonl", "prev_file": "p.jsonl", "prev_seq": 3, "at": "t", "method": "/m"},
        {"ma": 1, "macintosh": 2, "m": 3, "mb": '\u0000"mac":', "方法": "客户"},
        {"at": "t", "method": "/m", "detail": {"method": 'x"method":', "mac": "not the line's"}, "customers": ["c1"]},
        {"mac": "a caller's own", "at": "t"},
    ],
)
def test_a_sealed_line_is_the_canonical_encoding_of_the_line_with_its_mac(body: dict[str, object]) -> None:
    """``seal`` encodes a line once (the keys before "mac" and after it apart): its bytes and MAC must be exactly what
    encoding it whole gives, as every earlier file has them and the verifier recomputes them."""
    macs = ChainMac(KEY)
    for prev in (GENESIS, "f" * 64):
        full = {**body, "seq": 9, "prev": prev}
        expected_mac = macs.of(full)
        line, mac = seal(macs, body, 9, prev)
        assert mac == expected_mac
        assert line == canonical({**full, "mac": expected_mac}) + b"\n"
    for number in range(3):  # and records as the sink writes them, 1 to 2,401 customers
        for part in record_bodies(audit_record(number, customers=tuple(f"c{i}" for i in range(1 + number * 1200)))):
            line, mac = seal(macs, part, 1, GENESIS)
            assert (
                line
                == canonical({**part, "seq": 1, "prev": GENESIS, "mac": macs.of({**part, "seq": 1, "prev": GENESIS})})
                + b"\n"
            )
