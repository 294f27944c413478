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
    return out_dir / (MODULE.replace(".", "/") + sysconfig.get_config_var("EXT_SUFFIX"))


def replace_in_place(built: Path, target: Path) -> None:
    """Put the module at ``target`` by a rename: a process that has the old one loaded keeps its own file."""
    temporary = target.with_name(f".{target.name}.new")
    shutil.copy2(built, temporary)
    os.replace(temporary, target)


class NativeBuildHook(BuildHookInterface):  # type: ignore[misc]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict) -> None:
        if self.target_name != "wheel":
            return
        if os.environ.get(PURE_PYTHON) == "1":
            self.app.display_info(f"{PURE_PYTHON}=1: a pure-Python wheel, without {MODULE}")
            return
        root = Path(self.root)
        out_dir = Path(tempfile.mkdtemp(prefix="qiming-native-lib-"))
        try:
            built = compile_extension(root, out_dir)
        except Exception as exc:  # no compiler or headers: the collector checks events in Python
            self.app.display_warning(f"{MODULE} not built ({exc}); the wheel is pure Python")
            shutil.rmtree(out_dir, ignore_errors=True)
            return
        self._out_dir = out_dir
        relative = built.relative_to(out_dir).as_posix()
        if version == "editable":  # the tree itself is on the path: the module goes beside its source
            replace_in_place(built, root / relative)
        else:
            build_data["force_include"][str(built)] = relative
        build_data["pure_python"] = False
        build_data["infer_tag"] = True

    def finalize(self, version: str, build_data: dict, artifact_path: str) -> None:
        out_dir = getattr(self, "_out_dir", None)
        if out_dir is not None:
            shutil.rmtree(out_dir, ignore_errors=True)


if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    with tempfile.TemporaryDirectory(prefix="qiming-native-lib-") as out:
        built = compile_extension(here, Path(out))
        target = here / built.relative_to(out)
        replace_in_place(built, target)
    print(f"built {target.relative_to(here)}", file=sys.stderr)
