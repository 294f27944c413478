"""Builds the collector's C extension (``svc_collect/_fastcheck.c``) into the wheel, or in place for an editable
install.

The extension is optional. Without a C compiler and the Python headers, or with ``QIMING_PURE_PYTHON=1``, the wheel
is pure Python and the collector checks every event in Python (``svc_collect.validation``; docs/collect.md, "The
event check in C"). ``python hatch_build.py`` builds it in place (``make native``: after changing the C file).
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
import sysconfig
import tempfile
from pathlib import Path

try:
    from hatchling.builders.hooks.plugin.interface import BuildHookInterface
except ImportError:  # run as a script, outside a build
    BuildHookInterface = object  # type: ignore[assignment,misc]

MODULE = "svc_collect._fastcheck"
SOURCE = "svc_collect/_fastcheck.c"
PURE_PYTHON = "QIMING_PURE_PYTHON"


def compile_extension(root: Path, out_dir: Path) -> Path:
    """Compile the extension with setuptools' compiler set-up (the flags CPython was built with); its path."""
    from setuptools import Distribution, Extension
    from setuptools.command.build_ext import build_ext

    # The baseline instruction set of the architecture, whatever CPython was built with (a distribution's
    # -march=x86-64-v2 would make the module die with SIGILL on an older CPU of the same architecture).
    baseline = {"x86_64": ["-march=x86-64", "-mtune=generic"], "aarch64": ["-march=armv8-a"]}
    portable = baseline.get(platform.machine(), []) if sys.platform == "linux" else []
    extension = Extension(MODULE, [SOURCE], extra_compile_args=["-O2", "-std=c11", *portable])
    command = build_ext(Distribution({"name": "qiming-native", "ext_modules": [extension]}))
    with tempfile.TemporaryDirectory(prefix="qiming-native-") as temp:
        command.build_lib = str(out_dir)
        command.build_temp = temp
        command.ensure_finalized()
        cwd = os.getcwd()
        os.chdir(root)  # setuptools takes the source path relative to the working directory
        try:
            command.run()
        finally:
            os.chdir(cwd)
    return out_dir / module_file()


def replace_in_place(built: Path, target: Path) -> None:
    """Put the module at ``target`` by a rename: a process that has the old one loaded keeps its own file."""
    temporary = target.with_name(f".{target.name}.new")
    shutil.copy2(built, temporary)
    os.replace(temporary, target)


def module_file() -> str:
    """The module's file, relative to the tree (or to a build's output directory)."""
    return MODULE.replace(".", "/") + sysconfig.get_config_var("EXT_SUFFIX")


def in_place_path(root: Path) -> Path:
    return root / module_file()


def build_in_place(root: Path) -> Path:
    """Compile and put the module beside its source (an editable install, ``make native``); raises if it cannot."""
    with tempfile.TemporaryDirectory(prefix="qiming-native-lib-") as out:
        built = compile_extension(root, Path(out))
        target = in_place_path(root)
        replace_in_place(built, target)
    return target


def remove_in_place(root: Path) -> bool:
    """Remove a module built in place before: a tree that could not build it now must not run the old one."""
    target = in_place_path(root)
    if target.exists():
        target.unlink()
        return True
    return False


class NativeBuildHook(BuildHookInterface):  # type: ignore[misc]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict) -> None:
        if self.target_name != "wheel":
            return
        root = Path(self.root)
        editable = version == "editable"
        if os.environ.get(PURE_PYTHON) == "1":
            self.app.display_info(f"{PURE_PYTHON}=1: a pure-Python wheel, without {MODULE}")
            if editable and remove_in_place(root):
                self.app.display_info(f"removed the {MODULE} built in place before")
            return
        try:
            if editable:  # the tree itself is on the path: the module goes beside its source
                build_in_place(root)
            else:
                out_dir = Path(tempfile.mkdtemp(prefix="qiming-native-lib-"))
                self._out_dir = out_dir
                built = compile_extension(root, out_dir)
                build_data["force_include"][str(built)] = built.relative_to(out_dir).as_posix()
        except Exception as exc:  # no compiler or headers: the collector checks events in Python
            self.app.display_warning(f"{MODULE} not built ({exc}); the install is pure Python")
            if editable:
                remove_in_place(root)
            return
        build_data["pure_python"] = False
        build_data["infer_tag"] = True

    def finalize(self, version: str, build_data: dict, artifact_path: str) -> None:
        out_dir = getattr(self, "_out_dir", None)
        if out_dir is not None:
            shutil.rmtree(out_dir, ignore_errors=True)


if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    if sys.argv[1:] == ["--if-possible"]:  # make's test and demo: build it if this machine can, else no stale one
        try:
            built_at = build_in_place(here)
        except Exception as exc:
            removed = remove_in_place(here)
            print(
                f"warning: {MODULE} not built ({exc}); events are checked in Python"
                + (" (the module built before was removed)" if removed else ""),
                file=sys.stderr,
            )
            sys.exit(0)
    else:
        built_at = build_in_place(here)
    print(f"built {built_at.relative_to(here)}", file=sys.stderr)
