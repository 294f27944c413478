"""The collector's C extension (``svc_collect/_fastcheck.c``), or None in a pure-Python install (built by
``hatch_build.py`` where a C compiler is; docs/collect.md, "The event check in C")."""

from __future__ import annotations

from types import ModuleType

fastcheck: ModuleType | None
try:
    from svc_collect import _fastcheck as fastcheck
except ImportError:
    fastcheck = None

AVAILABLE = fastcheck is not None
"""Whether this install has the extension."""
