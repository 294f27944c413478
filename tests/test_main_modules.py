"""``python -m svc_<service>`` takes the command line of ``qiming serve <service>`` (walk 2026-12-06: it ignored every
argument, so ``--config`` was dropped and the service started on defaults with a new keyring in the working dir)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("service", ["collect", "profile", "campaign", "modeling"])
def test_python_m_passes_its_arguments_on(service: str, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.toml"
    done = subprocess.run(
        [sys.executable, "-m", f"svc_{service}", "--config", str(missing)],
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert f"config file {missing} does not exist" in done.stderr
    assert not (tmp_path / "qiming-data").exists()  # nothing started on the defaults in the working dir
