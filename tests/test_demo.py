"""`qiming demo` (the README's quick start, `make demo`) runs to its end: it drives every service over real gRPC, so
a change of behaviour it relies on (a refusal it did not expect) fails here rather than in a newcomer's first run."""

from __future__ import annotations

from pathlib import Path

from test_cli import qiming


def test_the_demo_runs_every_step_and_stops_cleanly(tmp_path: Path) -> None:
    result = qiming("demo", "--data-dir", str(tmp_path / "demo"), cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    steps = [line for line in result.stdout.splitlines() if line.startswith("== ")]
    assert steps[0].startswith("== starting `qiming serve all`")
    assert any("ExperimentService" in s for s in steps) and steps[-1].startswith("== stopping with SIGTERM")
    assert "SRM p = " in result.stdout and "decision: " in result.stdout
