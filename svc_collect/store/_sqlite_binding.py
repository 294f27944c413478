"""SQLite parameters bound as they are, without CPython's adaptation step."""

from __future__ import annotations

# The stdlib sqlite3 binds only int, float, str and bytearray without "adapting" them: for each bytes or None
# parameter (every payload, most sealed values) it looks ``__adapt__`` up on its protocol type, which raises an
# AttributeError with a formatted message and clears it — ~0.3 µs each, two per event. With an adapter registered
# for the type (the identity: nothing changes in what is bound) the lookup is a dict hit. Process-wide, and
# harmless to any other sqlite3 user.
_NONE_AS_IS = {None: None}.get  # a C callable that gives None back


def bind_bytes_and_none_directly(dbapi: object) -> None:
    register = getattr(dbapi, "register_adapter", None)
    if register is not None:
        register(bytes, bytes)  # bytes(b) is b itself for an exact bytes object
        register(type(None), _NONE_AS_IS)
