"""deploy/offline-install.sh, session 17: an upgrade installs the bundle's own Qiming wheel and checks it, a file the
bundle's SHA256SUMS does not list is refused, and a bundle says which build it holds.

The bundles here hold stand-in Qiming wheels (no dependencies), since the real wheel needs hatchling and the network;
`install` runs for real into a virtual environment under tmp_path.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import unavailable

REPO = Path(__file__).parents[1]


@pytest.fixture(autouse=True)
def _tools() -> None:
    """The script needs sha256sum (and git for the build label): skipped locally without them, a failure under CI."""
    for tool in ("sha256sum", "git"):
        if shutil.which(tool) is None:
            unavailable(tool, "not on PATH")


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _stand_in_wheel(directory: Path, version: str, message: str, tag: str = "py3-none-any") -> Path:
    """A Qiming wheel whose `qiming` prints its installed version and MESSAGE (``tag``: as the collector's C extension
    makes it for one CPython, e.g. ``cp311-cp311-linux_x86_64``)."""
    dist_info = f"qiming-{version}.dist-info"
    files = {
        "qiming_standin.py": (
            "from importlib.metadata import version\n\n\n"
            f"def main():\n    print(f\"qiming {{version('qiming')}}: {message}\")\n"
        ),
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: qiming\nVersion: {version}\nProvides-Extra: dm\n",
        f"{dist_info}/WHEEL": (
            f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: {str(tag == 'py3-none-any').lower()}\nTag: {tag}\n"
        ),
        f"{dist_info}/entry_points.txt": "[console_scripts]\nqiming = qiming_standin:main\n",
    }
    record = "".join(f"{name},sha256={_digest(text.encode())},{len(text.encode())}\n" for name, text in files.items())
    path = directory / f"qiming-{version}-{tag}.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        for name, text in files.items():
            wheel.writestr(name, text)
        wheel.writestr(f"{dist_info}/RECORD", record + f"{dist_info}/RECORD,,\n")
    return path


def _sums(bundle: Path) -> None:
    """SHA256SUMS as `download` writes it."""
    names = sorted(
        str(p.relative_to(bundle))
        for p in bundle.rglob("*")
        if not p.is_dir() and p.relative_to(bundle).parts[0] in ("wheelhouse", "deploy", "docs", "EXTRAS", "BUILD")
    )
    lines = [f"{hashlib.sha256((bundle / n).read_bytes()).hexdigest()}  {n}" for n in names]
    (bundle / "SHA256SUMS").write_text("\n".join(lines) + "\n")


def _bundle(root: Path, version: str, message: str, tag: str = "py3-none-any") -> Path:
    """An unpacked bundle as `download` makes it, without extras, holding a stand-in Qiming wheel."""
    bundle = root / "qiming-offline"
    shutil.copytree(REPO / "deploy", bundle / "deploy")
    (bundle / "docs").mkdir()
    (bundle / "docs" / "operations.md").write_text("# manual\n")
    (bundle / "wheelhouse").mkdir()
    wheel = _stand_in_wheel(bundle / "wheelhouse", version, message, tag)
    (bundle / "EXTRAS").write_text("\n")
    (bundle / "BUILD").write_text(
        f"version={version}\nwheel={wheel.name}\nwheel_sha256={hashlib.sha256(wheel.read_bytes()).hexdigest()}\n"
        "commit=0123456789abcdef0123456789abcdef01234567\ntree=clean\nbuilt_at=2026-12-06T20:00:00Z\n"
    )
    _sums(bundle)
    return bundle


def _install(bundle: Path, prefix: Path) -> subprocess.CompletedProcess:
    script = str(bundle / "deploy" / "offline-install.sh")
    return subprocess.run(
        ["bash", script, "install", "--prefix", str(prefix), "--python", sys.executable],
        capture_output=True,
        text=True,
        timeout=180,
    )


def _site_packages(prefix: Path) -> Path:
    return next((prefix / "venv" / "lib").glob("python3.*/site-packages"))


def test_a_bundle_whose_wheel_carries_the_c_check_installs_and_one_for_another_system_is_refused(
    tmp_path: Path,
) -> None:
    """A bundle made on a machine of the target's kind has a wheel tagged for its CPython and Linux architecture
    (hatch_build.py): it installs like a pure one. A wheel named for another system is not a Qiming wheel of a
    bundle: refused (exit 2) before anything is installed."""
    python = f"cp{sys.version_info[0]}{sys.version_info[1]}"
    tag = f"{python}-{python}-linux_{os.uname().machine}"
    installed = _install(_bundle(tmp_path / "native", "0.2.3", "with the C check", tag), tmp_path / "opt")
    assert installed.returncode == 0, installed.stderr
    assert "qiming 0.2.3: with the C check" in installed.stdout

    refused = _install(
        _bundle(tmp_path / "mac", "0.2.3", "elsewhere", f"{python}-{python}-macosx_14_0_arm64"), tmp_path / "o2"
    )
    assert refused.returncode == 2 and "BUILD names no Qiming wheel" in refused.stderr
    assert not (tmp_path / "o2" / "venv").exists()


# M1: every release is 0.1.0, and `pip install --upgrade qiming` kept the installed one: the old code stayed, exit 0.
def test_upgrade_with_a_newer_bundle_of_the_same_version_installs_its_code(tmp_path: Path) -> None:
    prefix = tmp_path / "opt"
    first = _install(_bundle(tmp_path / "sixth", "0.1.0", "sixth landing"), prefix)
    assert first.returncode == 0, first.stderr
    assert "qiming 0.1.0: sixth landing" in first.stdout

    second = _install(_bundle(tmp_path / "seventh", "0.1.0", "seventh landing"), prefix)
    assert second.returncode == 0, second.stderr
    assert "qiming 0.1.0: seventh landing" in second.stdout
    assert "verified:" in second.stdout
    standin = (_site_packages(prefix) / "qiming_standin.py").read_text()
    assert "seventh landing" in standin
    # What was built, from which commit: printed before and after installing.
    assert "bundle: qiming 0.1.0, commit 0123456789abcdef0123456789abcdef01234567 (tree clean)" in second.stdout
    assert second.stdout.rstrip().splitlines()[-2].startswith("offline-install: installed: ")
    assert "wheel sha256 " in second.stdout.rstrip().splitlines()[-2]


# M1: the installed Qiming is checked against the bundle's wheel; anything else fails the install (exit 1).
def test_install_fails_when_the_environment_does_not_hold_the_bundles_qiming(tmp_path: Path) -> None:
    prefix = tmp_path / "opt"
    bundle = _bundle(tmp_path / "b", "0.1.0", "release")
    assert _install(bundle, prefix).returncode == 0
    # A stale Qiming distribution left in the environment (e.g. an interrupted uninstall): which one runs is unclear.
    site = _site_packages(prefix)
    stale = site / "qiming-0.0.9.dist-info"
    shutil.copytree(site / "qiming-0.1.0.dist-info", stale)
    metadata = stale / "METADATA"
    metadata.write_text(metadata.read_text().replace("Version: 0.1.0", "Version: 0.0.9"))
    run = _install(bundle, prefix)
    assert run.returncode == 1, run.stdout
    assert "does not hold the bundle's Qiming: the virtual environment holds 2 Qiming distributions" in run.stderr
    assert "qiming-0.0.9.dist-info" in run.stderr
    assert "installed:" not in run.stdout


# m1: `sha256sum --check` ignores files SHA256SUMS does not name, and pip takes the highest version it finds.
@pytest.mark.parametrize(
    "added",
    ["wheelhouse/qiming-0.1.1-py3-none-any.whl", "wheelhouse/link.whl", "docs/extra.md"],
)
def test_install_refuses_a_file_that_sha256sums_does_not_list(tmp_path: Path, added: str) -> None:
    bundle = _bundle(tmp_path, "0.1.0", "the vendor's wheel")
    if added.endswith("0.1.1-py3-none-any.whl"):
        _stand_in_wheel(bundle / "wheelhouse", "0.1.1", "a wheel added after SHA256SUMS was written")
    elif added.endswith("link.whl"):
        (bundle / added).symlink_to(bundle / "wheelhouse" / "qiming-0.1.0-py3-none-any.whl")
    else:
        (bundle / added).write_text("added\n")
    prefix = tmp_path / "opt"
    run = _install(bundle, prefix)
    assert run.returncode == 2, run.stdout
    assert f"{added} is not listed in SHA256SUMS" in run.stderr
    assert not prefix.exists()  # refused before anything was made


def test_install_refuses_a_bundle_without_build_or_whose_build_names_another_wheel(tmp_path: Path) -> None:
    bundle = _bundle(tmp_path / "a", "0.1.0", "x")
    (bundle / "BUILD").unlink()
    _sums(bundle)
    run = _install(bundle, tmp_path / "opt")
    assert run.returncode == 2 and "no BUILD in" in run.stderr

    bundle = _bundle(tmp_path / "b", "0.1.0", "x")
    build = bundle / "BUILD"
    build.write_text(re.sub(r"wheel_sha256=\w+", "wheel_sha256=" + "0" * 64, build.read_text()))
    _sums(bundle)
    run = _install(bundle, tmp_path / "opt")
    assert run.returncode == 2 and "is not the wheel BUILD names" in run.stderr
    assert not (tmp_path / "opt").exists()


# --- download: the build label in the wheel's version, the BUILD file ---------------------------------------------

_STUB_PYTHON = """#!/bin/sh
# The interpreter download is given: `-m venv DIR` makes a stand-in environment, the rest runs the real Python.
if [ "$1" = -m ] && [ "$2" = venv ]; then
  mkdir -p "$3/bin"
  cat > "$3/bin/python" <<'EOF'
#!/bin/sh
# pip in the throw-away build environment: `wheel` builds the stand-in wheel, install and download do nothing.
if [ "$1" = -m ] && [ "$2" = pip ]; then
  case "$3" in
    wheel) shift 3; while [ "$1" != --wheel-dir ]; do shift; done; exec {real} {maker} "$2" ;;
    *) exit 0 ;;
  esac
fi
exec {real} "$@"
EOF
  chmod +x "$3/bin/python"
  exit 0
fi
exec {real} "$@"
"""


def _source_tree(tmp_path: Path) -> tuple[Path, Path]:
    """A source tree with pyproject.toml, deploy/ and docs/, and an interpreter whose pip `wheel` needs no network."""
    tree = tmp_path / "src"
    shutil.copytree(REPO / "deploy", tree / "deploy")
    (tree / "docs").mkdir()
    (tree / "docs" / "operations.md").write_text("# manual\n")
    (tree / "pyproject.toml").write_text('[project]\nname = "qiming"\nversion = "0.1.0"\n')
    (tree / ".gitignore").write_text("/dist/\n")
    maker = tmp_path / "make_wheel.py"
    maker.write_text(
        f"import sys\nsys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from pathlib import Path\nfrom test_fixdeploy17_install import _stand_in_wheel\n"
        "_stand_in_wheel(Path(sys.argv[1]), '0.1.0', 'built from the tree')\n"
    )
    python = tmp_path / "python"
    python.write_text(_STUB_PYTHON.format(real=sys.executable, maker=maker))
    python.chmod(0o755)
    return tree, python


def _download(tree: Path, python: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(tree / "deploy" / "offline-install.sh"), "download", "--extras", "", "--python", str(python)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _git(tree: Path, *args: str) -> str:
    command = ["git", "-C", str(tree), "-c", "user.name=t", "-c", "user.email=t@example.com", *args]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()


def test_download_labels_the_wheel_with_the_commit_and_install_shows_it(tmp_path: Path) -> None:
    tree, python = _source_tree(tmp_path)
    _git(tree, "init", "-q")
    _git(tree, "add", "-A")
    _git(tree, "commit", "-q", "-m", "release")
    commit = _git(tree, "rev-parse", "HEAD")

    run = _download(tree, python)
    assert run.returncode == 0, run.stderr
    version = f"0.1.0+g{commit[:12]}"
    bundle = tree / "dist" / f"qiming-offline-{version}-{os.uname().machine}"
    assert (bundle.parent / f"{bundle.name}.tar.gz").is_file()
    wheel = bundle / "wheelhouse" / f"qiming-{version}-py3-none-any.whl"
    assert [p.name for p in (bundle / "wheelhouse").iterdir()] == [wheel.name]
    build = dict(line.split("=", 1) for line in (bundle / "BUILD").read_text().splitlines())
    assert build["version"] == version and build["wheel"] == wheel.name
    assert build["wheel_sha256"] == hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert build["commit"] == commit and build["tree"] == "clean"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", build["built_at"])
    assert "  BUILD\n" in (bundle / "SHA256SUMS").read_text()
    with zipfile.ZipFile(wheel) as z:
        assert f"Version: {version}\n" in z.read(f"qiming-{version}.dist-info/METADATA").decode()
        assert not [n for n in z.namelist() if n.startswith("qiming-0.1.0.dist-info/")]

    # The relabelled wheel installs, passes the file-by-file check, and `qiming` reports the build.
    installed = _install(bundle, tmp_path / "opt")
    assert installed.returncode == 0, installed.stderr
    assert f"qiming {version}: built from the tree" in installed.stdout
    assert f"bundle: qiming {version}, commit {commit} (tree clean)" in installed.stdout

    # A tree with changes is not that commit: the label says so.
    (tree / "docs" / "operations.md").write_text("# changed\n")
    run = _download(tree, python)
    assert run.returncode == 0, run.stderr
    bundle = tree / "dist" / f"qiming-offline-0.1.0+g{commit[:12]}.dirty-{os.uname().machine}"
    assert "tree=modified\n" in (bundle / "BUILD").read_text()


def test_download_outside_git_labels_the_wheel_with_the_build_time(tmp_path: Path) -> None:
    tree, python = _source_tree(tmp_path)
    run = _download(tree, python)
    assert run.returncode == 0, run.stderr
    (bundle,) = [p for p in (tree / "dist").iterdir() if p.is_dir()]
    assert re.fullmatch(r"qiming-offline-0\.1\.0\+b\d{14}-\w+", bundle.name)
    build = (bundle / "BUILD").read_text()
    assert "commit=unknown\n" in build and "tree=unknown\n" in build


def test_download_refuses_a_version_too_long_for_the_instances_table(tmp_path: Path) -> None:
    tree, python = _source_tree(tmp_path)
    (tree / "pyproject.toml").write_text('[project]\nname = "qiming"\nversion = "2026.12.6.1234567890"\n')
    run = _download(tree, python)
    assert run.returncode == 2
    assert "is longer than 32 characters" in run.stderr
    assert not (tree / "dist").exists()
