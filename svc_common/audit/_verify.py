"""What ``qiming audit verify`` checks beyond each file's lines: the file's sealed anchor (lines cut from its end),
and the links between a process's files (a missing, renamed or reordered file, or lines cut from the end of a file
that another one continues). Each finding is one sentence; a file with none is OK."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from svc_common.audit._anchor import ANCHOR_SUFFIX, Anchor, AnchorSeal, anchor_path
from svc_common.audit._chain import ChainMac, Verdict, verify_file
from svc_common.audit._sink import FILE_NAME

TORN = "the last line is incomplete"


@dataclass
class Report:
    """One file's verdict: ``problems`` (evidence of tampering or loss: exit 1) and ``notes`` (worth saying)."""

    path: Path
    verdict: Verdict | None = None
    anchor: Anchor | None = None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def whole(self) -> bool:
        """Whether the lines hold up to a crash's torn last line (so its length can be compared)."""
        v = self.verdict
        return v is not None and (v.ok or (v.reason.startswith(TORN) and not self.problems))


Keys = Callable[[Path], tuple[ChainMac, AnchorSeal]]


def verify_paths(files: list[Path], directories: list[Path], keys: Keys) -> tuple[list[str], bool]:
    """Lines of output (one per file, then one per orphaned anchor) and whether everything held."""
    reports = {path: check_file(path, *keys(path)) for path in files}
    _check_links(reports, keys)
    out = [describe_report(report) for report in reports.values()]
    ok = all(r.ok for r in reports.values())
    for directory in directories:
        for line, problem in _orphaned_anchors(directory, keys):
            out.append(line)
            ok = ok and not problem
    return out, ok


def check_file(path: Path, macs: ChainMac, seal: AnchorSeal) -> Report:
    report = Report(path)
    read = seal.read(anchor_path(path))
    anchor = read if isinstance(read, Anchor) else None
    report.anchor = anchor
    try:
        verdict = verify_file(path, macs, anchor.seq if anchor else 0)
    except OSError as exc:
        report.problems.append(f"cannot be read ({exc.strerror})")
        return report
    report.verdict = verdict
    head = verdict.head or {}
    # Files of this release are named to the microsecond and always have an anchor; older ones have neither.
    match = FILE_NAME.fullmatch(path.name)
    anchored = "file" in head or anchor is not None or match is None or "." in match.group("stamp")
    if "file" in head and head["file"] != path.name:
        report.problems.append(f"line 1 names the file {head['file']}: it was renamed (files reordered?)")
    if not verdict.ok and not (anchor is not None and verdict.reason.startswith(TORN)):
        report.problems.append(_line_problem(verdict))
        return report
    if anchor is None:
        if not anchored:
            report.notes.append(
                "no anchor (written before anchors): lines cut from its end cannot be found here; compare its last "
                "seq with the `audit chain closed` log line"
            )
        elif read == "missing":
            report.problems.append(f"its anchor {anchor_path(path).name} is missing (deleted?)")
        else:
            report.problems.append(f"its anchor {anchor_path(path).name} {read}")
        return report
    _check_anchor(report, verdict, anchor)
    return report


def _check_anchor(report: Report, verdict: Verdict, anchor: Anchor) -> None:
    last, named = verdict.last_seq, anchor.seq
    torn = "" if verdict.ok else f" (then an incomplete line {verdict.bad_line})"
    if anchor.file != report.path.name:
        report.problems.append(f"its anchor names another file, {anchor.file} (anchor copied or file renamed)")
    elif named > last:
        cut = named - last
        report.problems.append(
            f"the file ends at line {last}{torn} but its anchor names line {named}: "
            f"{cut} line{'s were' if cut > 1 else ' was'} cut from the end"
        )
    elif named and verdict.mark_mac != anchor.mac:
        report.problems.append(
            f"line {named} is not the line its anchor names (another mac): the file was replaced or rewritten"
        )
    elif torn:
        report.notes.append(
            f"then an incomplete line {verdict.bad_line}, after its anchor's line {named}: a write cut short by a "
            "crash (a restart started a new file)"
        )
    elif last > named:
        report.notes.append(
            f"{last - named} line{'s' if last - named > 1 else ''} after its anchor's line {named} (written after the "
            "anchor's last renewal: a running process, or a crash before the renewal)"
        )


def _check_links(reports: dict[Path, Report], keys: Keys) -> None:
    streams: dict[tuple[Path, str], list[Report]] = {}
    for report in reports.values():
        match = FILE_NAME.fullmatch(report.path.name)
        if match:
            streams.setdefault((report.path.parent, match.group("prefix")), []).append(report)
    for stream in streams.values():
        stream.sort(key=lambda r: r.path.stem)
        by_name = {r.path.name: r for r in stream}
        for report in stream:
            _check_previous(report, stream, by_name)
            _check_next(report, by_name, keys)


def _check_previous(report: Report, stream: list[Report], by_name: dict[str, Report]) -> None:
    head = (report.verdict.head if report.verdict else None) or {}
    previous_name = head.get("prev_file")
    if not isinstance(previous_name, str):
        return
    prev_seq = head.get("prev_seq")
    if Path(previous_name).stem >= report.path.stem:
        report.problems.append(f"line 1 continues {previous_name}, which sorts after it: files renamed")
        return
    previous = by_name.get(previous_name)
    if previous is None:
        if (report.path.parent / previous_name).exists():
            report.notes.append(f"continues {previous_name} (not checked here: verify the directory)")
        elif any(r.path.stem < Path(previous_name).stem for r in stream):
            report.problems.append(f"line 1 continues {previous_name}, which is missing (deleted or moved)")
        else:
            report.notes.append(f"continues {previous_name}, which is not here (archived or deleted: retention)")
        return
    if not previous.whole or previous.verdict is None:
        return  # its own finding says what broke
    ends = previous.verdict.last_seq
    if isinstance(prev_seq, int) and ends < prev_seq:
        cut = prev_seq - ends
        previous.problems.append(
            f"the file ends at line {ends} but {report.path.name} continues it from line {prev_seq}: "
            f"{cut} line{'s were' if cut > 1 else ' was'} cut from the end"
        )
    elif ends != prev_seq:
        previous.problems.append(f"it goes on after line {prev_seq}, where {report.path.name} continues it")
    elif previous.verdict.last_mac != head.get("prev"):
        report.problems.append(f"line 1 does not continue {previous_name} (another mac): a file was replaced")


def _check_next(report: Report, by_name: dict[str, Report], keys: Keys) -> None:
    following = report.anchor.next if report.anchor else None
    if following is None:
        return
    successor = by_name.get(following)
    if successor is not None:
        head = (successor.verdict.head if successor.verdict else None) or {}
        if successor.verdict and successor.verdict.lines and head.get("prev_file") != report.path.name:
            report.problems.append(f"its anchor says the chain went on in {following}, which does not continue it")
        return
    path = report.path.parent / following
    if path.exists():
        report.notes.append(f"the chain goes on in {following} (not checked here: verify the directory)")
        return
    read = keys(path)[1].read(anchor_path(path))
    if isinstance(read, Anchor) and read.seq == 0 and read.file == following:
        return  # its anchor says it never had a line: a crash while it was created (said on its own line)
    report.problems.append(f"its anchor says the chain went on in {following}, which is missing (deleted?)")


def _orphaned_anchors(directory: Path, keys: Keys) -> list[tuple[str, bool]]:
    """(line, whether it is a problem) for each anchor whose file is gone: a problem unless the anchor says the
    file never had a line."""
    out = []
    for anchor_file in sorted(directory.glob(f"audit-*{ANCHOR_SUFFIX}")):
        path = anchor_file.with_suffix(".jsonl")
        if path.exists():
            continue
        read = keys(path)[1].read(anchor_file)
        if isinstance(read, Anchor) and read.seq == 0 and read.file == path.name:
            out.append(
                (f"{path}: never written (its anchor of {read.at} is at line 0: a crash as it was created)", False)
            )
        elif isinstance(read, Anchor):
            out.append((f"{path}: missing (deleted?), but its anchor {anchor_file.name} names line {read.seq}", True))
        else:
            out.append((f"{path}: missing (deleted?), and its anchor {anchor_file.name} {read}", True))
    return out


def _line_problem(verdict: Verdict) -> str:
    held = (
        "no line before it"
        if verdict.lines == 0
        else "the line before it holds"
        if verdict.lines == 1
        else f"the {verdict.lines} lines before it hold"
    )
    return f"line {verdict.bad_line}: {verdict.reason} ({held})"


def describe_report(report: Report) -> str:
    if report.problems:
        return f"{report.path}: " + "; ".join(report.problems)
    v = report.verdict
    assert v is not None
    lines = "OK, empty" if v.lines == 0 else f"OK, {v.lines} lines (seq 1 to {v.last_seq})"
    return f"{report.path}: " + "; ".join([lines, *report.notes])
