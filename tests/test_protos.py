"""The contracts lint clean, build, and the committed generated code matches them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUF = Path(sys.executable).parent / "buf"


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_buf_lint_passes() -> None:
    result = _run(str(BUF), "lint", cwd=ROOT / "protos")
    assert result.returncode == 0, result.stdout + result.stderr


def test_buf_build_passes() -> None:
    result = _run(str(BUF), "build", cwd=ROOT / "protos")
    assert result.returncode == 0, result.stdout + result.stderr


def test_generated_code_is_up_to_date() -> None:
    result = _run(sys.executable, "scripts/gen_protos.py", "--check", cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_package_has_services_and_imports_resolve_under_svc_common() -> None:
    import importlib

    from svc_common.server import contract_services

    for package in ("collect", "profile", "campaign", "modeling"):
        services = contract_services(package)
        assert services, f"qiming.{package}.v1 defines no service"
        assert all(name.startswith(f"qiming.{package}.v1.") for name in services)
    importlib.import_module("svc_common.pb.qiming.common.v1.ops_pb2_grpc")
