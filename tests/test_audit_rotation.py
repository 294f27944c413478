"""Audit files rotate by size and by UTC day; the chain goes on across files (a file's first line names the file
before it, its last seq and mac), names sort in the order written, and ``qiming audit verify`` checks a directory's
files as one sequence: a missing, renamed or reordered middle file, lines cut from the end of a rotated file, and
the newest file deleted are found; old files deleted by retention are not a finding."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from audit_helpers import KEY, KEYRING, audit_record, write_keyring_file

from svc_common.audit import ChainedAuditSink, ChainMac, verify_file
from svc_common.audit import _sink as sink_module
from svc_common.audit._anchor import AnchorSeal, anchor_path
from svc_common.audit.verify_cli import verify_command
from svc_common.server import AuditRecord


@pytest.fixture
def keyring_file(tmp_path: Path) -> Path:
    return write_keyring_file(tmp_path)


def _record(number: int) -> AuditRecord:
    return audit_record(number, customers=(f"c{number:04d}",), at=datetime.now(UTC))


async def _records(sink: ChainedAuditSink, numbers: range) -> None:
    for number in numbers:
        await sink.record(_record(number))
        await asyncio.sleep(0)


def _write(directory: Path, numbers: range, **limits: Any) -> list[Path]:
    async def run() -> None:
        sink = ChainedAuditSink.open(directory, KEY, "collect", host="h1", **limits)
        await _records(sink, numbers)
        sink.close()

    asyncio.run(run())
    return _files(directory)


def _files(directory: Path) -> list[Path]:
    return sorted(directory.glob("audit-*.jsonl"))


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(raw) for raw in path.read_bytes().splitlines()]


def _verify(paths: list[Path], keyring_file: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = verify_command(paths, None, keyring_file)
    return code, capsys.readouterr().out.strip().splitlines()


def _rotated(directory: Path) -> list[Path]:
    """Four files of 3 lines each (a line is about 400 bytes, a first line about 500)."""
    files = _write(directory, range(12), rotate_bytes=1400)
    assert len(files) == 4, [len(_lines(f)) for f in files]
    return files


def test_size_rotation_chains_the_files_in_name_order(
    tmp_path: Path, keyring_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = _rotated(tmp_path / "audit")
    assert files == sorted(files, key=lambda p: p.stem)
    customers = [c for f in files for line in _lines(f) for c in line["customers"]]
    assert customers == [f"c{n:04d}" for n in range(12)]  # every record, once, in order
    for before, after in itertools.pairwise(files):
        first = _lines(after)[0]
        last = _lines(before)[-1]
        assert first["seq"] == 1 and first["file"] == after.name
        assert (first["prev_file"], first["prev_seq"], first["prev"]) == (before.name, last["seq"], last["mac"])
        assert all(f.stat().st_size <= 1400 for f in files)
        anchor = AnchorSeal(KEY).read(anchor_path(before))
        assert not isinstance(anchor, str) and anchor.next == after.name and anchor.seq == last["seq"]
    assert all(verify_file(f, ChainMac(KEY)).ok for f in files)
    code, out = _verify([tmp_path / "audit"], keyring_file, capsys)
    assert code == 0, out
    assert out == [f"{f}: OK, {len(_lines(f))} lines (seq 1 to {len(_lines(f))})" for f in files]


def test_a_line_larger_than_the_limit_gets_a_file_of_its_own(tmp_path: Path) -> None:
    files = _write(tmp_path / "audit", range(3), rotate_bytes=100)
    assert [len(_lines(f)) for f in files] == [1, 1, 1]


def test_rotation_by_utc_day_and_names_that_sort_even_when_the_clock_goes_back(
    tmp_path: Path, keyring_file: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [datetime(2026, 12, 6, 23, 59, 59, 900000, tzinfo=UTC)]

    class Clock(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return clock[0]

    monkeypatch.setattr(sink_module, "datetime", Clock)
    directory = tmp_path / "audit"

    async def run() -> None:
        sink = ChainedAuditSink.open(directory, KEY, "collect", host="h1")
        await _records(sink, range(2))
        await _wait_written(sink, 2)
        clock[0] = datetime(2026, 12, 7, 0, 0, 0, 100000, tzinfo=UTC)
        await _records(sink, range(2, 4))
        await _wait_written(sink, 4)
        clock[0] = datetime(2026, 12, 6, 23, 59, 59, 950000, tzinfo=UTC)  # stepped back, to the day before
        await _records(sink, range(4, 5))
        sink.close()

    asyncio.run(run())
    files = _files(directory)
    assert [f.name[-29:] for f in files] == [
        "20261206T235959.900000Z.jsonl",
        "20261207T000000.100000Z.jsonl",
        "20261207T000000.100001Z.jsonl",  # not …T235959.950000Z: names keep the order written
    ]
    assert [len(_lines(f)) for f in files] == [2, 2, 1]
    code, out = _verify([directory], keyring_file, capsys)
    assert code == 0, out


async def _wait_written(sink: ChainedAuditSink, lines: int) -> None:
    while sink._done < lines:
        await asyncio.sleep(0.005)


def test_a_restart_continues_the_newest_file_and_rotates_from_there(
    tmp_path: Path, keyring_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = tmp_path / "audit"
    first = _write(directory, range(2), rotate_bytes=1400)
    files = _write(directory, range(2, 6), rotate_bytes=1400)
    assert files[0] == first[0] and len(files) == 2
    assert [line["seq"] for f in files for line in _lines(f)] == [1, 2, 3, 1, 2, 3]
    code, out = _verify([directory], keyring_file, capsys)
    assert code == 0, out


def test_a_missing_middle_file_is_found_from_both_sides(
    tmp_path: Path, keyring_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = _rotated(tmp_path / "audit")
    files[1].unlink()
    anchor_path(files[1]).unlink()
    code, out = _verify([tmp_path / "audit"], keyring_file, capsys)
    assert code == 1
    assert out[0] == f"{files[0]}: its anchor says the chain went on in {files[1].name}, which is missing (deleted?)"
    assert out[1] == f"{files[2]}: line 1 continues {files[1].name}, which is missing (deleted or moved)"
    assert out[2].startswith(f"{files[3]}: OK")


def test_files_renamed_to_reorder_them_are_found(
    tmp_path: Path, keyring_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = _rotated(tmp_path / "audit")
    spare = files[1].with_name("spare")
    for source, target in ((files[1], spare), (files[2], files[1]), (spare, files[2])):
        source.rename(target)
    code, out = _verify([tmp_path / "audit"], keyring_file, capsys)
    assert code == 1
    assert f"{files[1]}: line 1 names the file {files[2].name}: it was renamed (files reordered?)" in out[1]
    assert f"{files[2]}: line 1 names the file {files[1].name}: it was renamed" in out[2]


def test_lines_cut_from_a_rotated_file_are_found_by_the_next_file_too(
    tmp_path: Path, keyring_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = _rotated(tmp_path / "audit")
    lines = files[1].read_bytes().splitlines(keepends=True)
    files[1].write_bytes(lines[0])
    anchor_path(files[1]).unlink()  # the anchor would say it; the next file's first line says it as well
    code, out = _verify([tmp_path / "audit"], keyring_file, capsys)
    assert code == 1
    assert out[1] == (
        f"{files[1]}: its anchor {anchor_path(files[1]).name} is missing (deleted?); the file ends at line 1 but "
        f"{files[2].name} continues it from line {len(lines)}: {len(lines) - 1} lines were cut from the end"
    )


def test_the_newest_file_deleted_is_found_from_the_file_before(
    tmp_path: Path, keyring_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = _rotated(tmp_path / "audit")
    files[3].unlink()
    anchor_path(files[3]).unlink()
    code, out = _verify([tmp_path / "audit"], keyring_file, capsys)
    assert code == 1 and out[2] == (
        f"{files[2]}: its anchor says the chain went on in {files[3].name}, which is missing (deleted?)"
    )


def test_old_files_deleted_by_retention_are_not_a_finding(
    tmp_path: Path, keyring_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = _rotated(tmp_path / "audit")
    for old in files[:2]:
        old.unlink()
        anchor_path(old).unlink()
    code, out = _verify([tmp_path / "audit"], keyring_file, capsys)
    assert code == 0, out
    assert out[0].endswith(f"; continues {files[1].name}, which is not here (archived or deleted: retention)")


def test_a_crash_while_rotating_is_not_a_finding(
    tmp_path: Path, keyring_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = _rotated(tmp_path / "audit")
    # The newest file's anchor (seq 0) was written, its file not yet created: what a crash at that moment leaves.
    files[3].unlink()
    anchor = AnchorSeal(KEY).read(anchor_path(files[3]))
    assert not isinstance(anchor, str)
    AnchorSeal(KEY).write(anchor_path(files[3]), type(anchor)(files[3].name, 0, anchor.mac, anchor.at))
    code, out = _verify([tmp_path / "audit"], keyring_file, capsys)
    assert code == 0, out
    assert out[-1].startswith(f"{files[3]}: never written (its anchor of ")


def test_the_rotation_setting_reaches_the_sink(tmp_path: Path) -> None:
    from svc_collect.config import CollectSettings
    from svc_common.audit import open_audit_sinks
    from svc_common.config import load_settings
    from svc_common.protection import JsonKeyProvider

    settings = load_settings(
        CollectSettings, data_dir=tmp_path, audit_chain_rotate_bytes=1400, audit_chain_queue_lines=7
    )
    _, chain = open_audit_sinks(settings, JsonKeyProvider(KEYRING.to_json()), "collect")
    assert chain is not None
    try:
        assert (chain._rotate_bytes, chain._queue_lines, chain._queue_wait) == (1400, 7, 1.0)
    finally:
        chain.close()
    assert os.listdir(tmp_path / "audit") == []  # an idle run leaves no file


def test_verify_of_a_single_rotated_file_says_what_it_could_not_check(
    tmp_path: Path, keyring_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = _rotated(tmp_path / "audit")
    shutil.copy(files[0], tmp_path / files[0].name)
    code, out = _verify([files[1]], keyring_file, capsys)
    assert code == 0, out
    assert out == [
        f"{files[1]}: OK, 3 lines (seq 1 to 3); continues {files[0].name} (not checked here: verify the directory); "
        f"the chain goes on in {files[2].name} (not checked here: verify the directory)"
    ]
