"""Qiming's shared service kit: config, database, gRPC server, telemetry, generated contracts (``svc_common.pb``)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("qiming")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+source"
