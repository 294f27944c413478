"""Lines cut from the end of an audit file are found by ``qiming audit verify`` itself, against the file's sealed
anchor (renewed after each fsync); a crash between the file's fsync and the anchor's rename (the anchor behind the
file) is not tampering, an anchor ahead of the file is."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
from pathlib import Path

import pytest
from audit_helpers import GET_PROFILE, KEY, audit_record, write_keyring_file

from svc_common.audit import GENESIS, ChainedAuditSink, ChainMac, chain_key
from svc_common.audit._anchor import AnchorSeal, anchor_path
from svc_common.audit._chain import seal
from svc_common.audit.verify_cli import verify_command
from svc_common.protection import generate_keyring
from svc_common.server import AuditRecord


@pytest.fixture
def keyring_file(tmp_path: Path) -> Path:
    return write_keyring_file(tmp_path)


def _record(number: int) -> AuditRecord:
    return audit_record(number, method=GET_PROFILE)


def _write(directory: Path, count: int, start: int = 0) -> Path:
    async def run() -> Path:
        sink = ChainedAuditSink.open(directory, KEY, "profile", host="h1")
        for number in range(start, start + count):
            await sink.record(_record(number))
        sink.close()
        return sink.path

    return asyncio.run(run())


def _verify(paths: list[Path], keyring_file: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = verify_command(paths, None, keyring_file)
    return code, capsys.readouterr().out.strip()


def _keep_lines(path: Path, count: int) -> None:
    path.write_bytes(b"".join(path.read_bytes().splitlines(keepends=True)[:count]))


def test_the_anchor_names_the_last_line_and_is_sealed(tmp_path: Path) -> None:
    path = _write(tmp_path / "audit", 3)
    anchor = AnchorSeal(KEY).read(anchor_path(path))
    last = json.loads(path.read_bytes().splitlines()[-1])
    assert not isinstance(anchor, str)
    assert (anchor.file, anchor.seq, anchor.mac, anchor.next) == (path.name, 3, last["mac"], None)
    assert oct(anchor_path(path).stat().st_mode & 0o777) == "0o640"
    assert AnchorSeal(chain_key(generate_keyring())).read(anchor_path(path)) == (
        "has a mac that does not match (edited, or written under another keyring)"
    )


def test_lines_cut_from_the_end_are_found_and_counted(
    tmp_path: Path, keyring_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path / "audit", 57)
    _keep_lines(path, 41)
    code, out = _verify([tmp_path / "audit"], keyring_file, capsys)
    assert code == 1
    assert out == f"{path}: the file ends at line 41 but its anchor names line 57: 16 lines were cut from the end"


def test_a_file_emptied_is_found(tmp_path: Path, keyring_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path / "audit", 2)
    path.write_bytes(b"")
    code, out = _verify([path], keyring_file, capsys)
    assert code == 1 and out.endswith(
        "the file ends at line 0 but its anchor names line 2: 2 lines were cut from the end"
    )


def test_an_anchor_behind_the_file_is_a_crash_before_its_renewal_not_tampering(
    tmp_path: Path, keyring_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = tmp_path / "audit"
    path = _write(directory, 5)
    old_anchor = anchor_path(path).read_bytes()
    assert _write(directory, 3, start=5) == path  # a restart continues the file
    # The crash: the lines reached the disk, the renewed anchor did not (its temporary file is left behind).
    anchor_path(path).write_bytes(old_anchor)
    (directory / f".{anchor_path(path).name}.tmp").write_bytes(b'{"file"')
    code, out = _verify([directory], keyring_file, capsys)
    assert code == 0, out
    assert out == (
        f"{path}: OK, 8 lines (seq 1 to 8); 3 lines after its anchor's line 5 (written after the anchor's last "
        "renewal: a running process, or a crash before the renewal)"
    )


def test_a_torn_line_after_the_anchor_is_a_crash_and_before_it_a_cut(
    tmp_path: Path, keyring_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path / "audit", 4)
    with path.open("ab") as handle:
        handle.write(b'{"at":"2026-12-06T12:')  # killed in the middle of a write, after the last anchor
    code, out = _verify([path], keyring_file, capsys)
    assert code == 0, out
    assert out.endswith(
        "then an incomplete line 5, after its anchor's line 4: a write cut short by a crash "
        "(a restart started a new file)"
    )
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:2]) + lines[2][:30])
    code, out = _verify([path], keyring_file, capsys)
    assert code == 1
    assert out.endswith(
        "the file ends at line 2 (then an incomplete line 3) but its anchor names line 4: 2 lines were cut from the end"
    )


@pytest.mark.parametrize(
    ("damage", "finding"),
    [
        (lambda anchor, other: anchor.unlink(), "its anchor {name} is missing (deleted?)"),
        (
            lambda anchor, other: anchor.write_text(anchor.read_text().replace('"seq":3', '"seq":2')),
            "its anchor {name} has a mac that does not match",
        ),
        (lambda anchor, other: anchor.write_text("{}"), "its anchor {name} is not an anchor (edited or corrupted)"),
        (lambda anchor, other: shutil.copyfile(other, anchor), "its anchor names another file"),
    ],
)
def test_a_deleted_edited_or_borrowed_anchor_is_found(
    tmp_path: Path, keyring_file: Path, capsys: pytest.CaptureFixture[str], damage: object, finding: str
) -> None:
    path = _write(tmp_path / "a", 3)
    other = _write(tmp_path / "b", 3)
    damage(anchor_path(path), anchor_path(other))  # type: ignore[operator]
    code, out = _verify([path], keyring_file, capsys)
    assert code == 1 and finding.format(name=anchor_path(path).name) in out


def test_an_edited_line_is_still_found_at_its_line(
    tmp_path: Path, keyring_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path / "audit", 4)
    path.write_text(path.read_text().replace('"c2"', '"c9"'))
    code, out = _verify([path], keyring_file, capsys)
    assert code == 1
    assert out == (
        f"{path}: line 3: mac does not match: the line was edited, or it was written under another keyring "
        "(the 2 lines before it hold)"
    )


def test_a_deleted_file_whose_anchor_remains_is_found(
    tmp_path: Path, keyring_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = tmp_path / "audit"
    keep = _write(directory, 2)
    gone = _write(directory / "x", 2)
    shutil.move(anchor_path(gone), directory / anchor_path(gone).name)
    code, out = _verify([directory], keyring_file, capsys)
    assert code == 1
    missing = directory / gone.name
    assert out.splitlines() == [
        f"{keep}: OK, 2 lines (seq 1 to 2)",
        f"{missing}: missing (deleted?), but its anchor {anchor_path(gone).name} names line 2",
    ]


def test_a_restart_does_not_continue_a_file_whose_anchor_is_ahead(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path / "audit"
    first = _write(directory, 5)
    _keep_lines(first, 3)
    cut = first.read_bytes()
    with caplog.at_level(logging.WARNING, logger="qiming.audit"):
        second = _write(directory, 1, start=5)
    assert second != first and first.read_bytes() == cut
    warning = next(r for r in caplog.records if "not continued" in r.getMessage())
    assert "its anchor names line 5 but it ends at line 3" in warning.reason  # type: ignore[attr-defined]
    assert json.loads(second.read_bytes().splitlines()[0])["prev"] == GENESIS


def test_a_file_from_before_anchors_verifies_with_a_note_and_its_chain_goes_on_in_a_new_file(
    tmp_path: Path, keyring_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = tmp_path / "audit"
    directory.mkdir()
    old = directory / "audit-profile-h1-0-20261205T080000Z.jsonl"
    macs, prev, lines = ChainMac(KEY), GENESIS, []
    for seq in (1, 2):
        line, prev = seal(macs, {"method": "/m", "customers": ["c1"]}, seq, prev)
        lines.append(line)
    old.write_bytes(b"".join(lines))
    new = _write(directory, 2)
    assert new != old and old.read_bytes() == b"".join(lines)
    first = json.loads(new.read_bytes().splitlines()[0])
    assert (first["prev_file"], first["prev_seq"], first["prev"]) == (old.name, 2, prev)
    (directory / "audit-profile-h1-0-20261205T070000Z.jsonl").touch()  # a crash before its first line
    code, out = _verify([directory], keyring_file, capsys)
    assert code == 0, out
    note = (
        "no anchor (written before anchors): lines cut from its end cannot be found here; compare its last seq with "
        "the `audit chain closed` log line"
    )
    assert out.splitlines() == [
        f"{directory}/audit-profile-h1-0-20261205T070000Z.jsonl: OK, empty; {note}",
        f"{old}: OK, 2 lines (seq 1 to 2); {note}",
        f"{new}: OK, 2 lines (seq 1 to 2)",
    ]
