"""The ``qiming`` command: serve, migrate, demo, config, keyring, audit, version.

Errors that stop the process (bad setting, bad database URL, unreachable database, port in use)
print one line ``qiming: error: …`` naming the problem and exit non-zero.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path

from svc_common import __version__
from svc_common.errors import ConfigError, StartupError
from svc_common.suite import SERVICE_NAMES, entries

EXIT_CONFIG = 2
EXIT_STARTUP = 3


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qiming",
        description="Qiming (启明): event collection, profiles, campaigns and modelling for securities brokers.",
    )
    parser.add_argument("--version", action="version", version=f"qiming {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser(
        "serve",
        help="run one service, or all four in one process",
        description="Run a service until SIGTERM/SIGINT. Settings come from QIMING_<SERVICE>_* environment "
        "variables and the TOML file (--config or QIMING_CONFIG_FILE); `qiming config SERVICE` lists them.",
    )
    serve.add_argument("service", choices=[*SERVICE_NAMES, "all"], help="which service ('all': one process, one port)")
    serve.add_argument("--config", type=Path, help="TOML settings file")

    migrate = sub.add_parser(
        "migrate",
        help="apply pending schema migrations",
        description="Bring each service's database schema to the latest revision and print it.",
    )
    migrate.add_argument("services", nargs="*", choices=[*SERVICE_NAMES, "all"], default="all", metavar="SERVICE")
    migrate.add_argument("--config", type=Path, help="TOML settings file")

    demo = sub.add_parser(
        "demo",
        help="start the suite on SQLite, run a scenario over gRPC, print what happened, stop",
        description="Starts `qiming serve all` in a child process on a free port with a temporary data "
        "directory, drives it over real gRPC, prints each step, and stops it.",
    )
    demo.add_argument("--data-dir", type=Path, help="keep the demo's data here instead of a temporary directory")

    config = sub.add_parser(
        "config",
        help="list the settings of a service with their environment variables, defaults and meaning",
    )
    config.add_argument("service", choices=[*SERVICE_NAMES, "suite"], help="whose settings")
    config.add_argument("--config", type=Path, help="TOML file: also show the values it sets")

    keyring = sub.add_parser(
        "keyring",
        help="create a keyring file (SM4 and pseudonym keys)",
        description="Create a new keyring file with random keys, mode 0600. Give every service the same keyring "
        "(QIMING_<SERVICE>_KEYRING_FILE or keyring_file in [common]) and back it up: protected data cannot be read "
        "without it.",
    )
    keyring.add_argument("action", choices=["init"], help="init: create a new keyring file")
    keyring.add_argument("path", type=Path, help="where to write it (must not exist)")
    keyring.add_argument("--key-id", default="k1", help="id of the first SM4 key (default k1)")

    audit = sub.add_parser(
        "audit",
        help="verify the tamper-evident audit files",
        description="Recompute the HMAC-SM3 chain of each audit file with the keyring (the one the service uses: "
        "--config, the environment, or --keyring), check it against its sealed anchor (lines cut from the end) and, "
        "for a directory, check each process's files as one sequence (a missing, renamed or reordered file). Print "
        "OK with the line count, or what is wrong and where. Exit 0 when every file holds, 1 otherwise.",
    )
    audit.add_argument("action", choices=["verify"], help="verify: check audit files")
    audit.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="audit files, or directories of them")
    audit.add_argument("--config", type=Path, help="TOML settings file (for the keyring settings)")
    audit.add_argument("--keyring", type=Path, help="keyring file (instead of the service's keyring settings)")

    sub.add_parser("version", help="print the version")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            _serve(args.service, args.config)
        elif args.command == "migrate":
            # argparse checks a list default against choices, so the default is the string "all".
            services = [args.services] if isinstance(args.services, str) else args.services
            _migrate(services, args.config)
        elif args.command == "demo":
            from svc_common.demo import run_demo

            sys.exit(run_demo(args.data_dir))
        elif args.command == "keyring":
            _keyring_init(args.path, args.key_id)
        elif args.command == "audit":
            from svc_common.audit.verify_cli import verify_command

            sys.exit(verify_command(args.paths, args.config, args.keyring))
        elif args.command == "config":
            _show_config(args.service, args.config)
        elif args.command == "version":
            print(f"qiming {__version__}")
    except ConfigError as exc:
        print(f"qiming: error: {exc}", file=sys.stderr)
        sys.exit(EXIT_CONFIG)
    except StartupError as exc:
        print(f"qiming: error: {exc}", file=sys.stderr)
        sys.exit(EXIT_STARTUP)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        # The reader went away (`qiming config collect | head`): stop quietly, as other command-line tools do;
        # stdout goes to /dev/null so that the interpreter's own flush at exit does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(128 + signal.SIGPIPE)


def _serve(service: str, config_file: Path | None) -> None:
    from svc_common.audit import open_audit_sinks
    from svc_common.config import ServerSettings, load_settings
    from svc_common.gctune import tune_for_serving
    from svc_common.logs import configure_logging
    from svc_common.ops.servicer import ops_spec
    from svc_common.runtime import ServiceRuntime
    from svc_common.server import serve
    from svc_common.telemetry import configure_tracing, shutdown_tracing
    from svc_common.workers import die_with_parent, run_workers

    die_with_parent()
    chosen = entries(None if service == "all" else [service])
    service_settings = [load_settings(e.settings_class, config_file) for e in chosen]
    workers = getattr(service_settings[0], "workers", 1) if service != "all" else 1
    if workers > 1:
        configure_logging(service_settings[0].log_level, service_settings[0].log_format)
        # Migrations and a first keyring once, here, not raced by the workers.
        ServiceRuntime.open(chosen[0].schema, service_settings[0]).database.dispose()
        sys.exit(run_workers(service, config_file, service_settings[0], workers))
    server_settings = load_settings(ServerSettings, config_file) if service == "all" else service_settings[0]
    configure_logging(server_settings.log_level, server_settings.log_format)
    configure_tracing(server_settings, service)
    runtimes: list[ServiceRuntime] = []
    try:
        for e, settings in zip(chosen, service_settings, strict=True):
            runtimes.append(ServiceRuntime.open(e.schema, settings))
        specs = [e.build_spec(rt) for e, rt in zip(chosen, runtimes, strict=True)]
        specs.append(ops_spec(runtimes))
        audit_sink, chain = open_audit_sinks(service_settings[0], runtimes[0].keys, service)
        tune_for_serving(server_settings.gc_young_threshold)
        try:
            asyncio.run(serve(specs, server_settings, audit_sink=audit_sink))
        finally:
            if chain is not None:
                chain.close()  # the lines of the last calls, queued, are written and synced
    except BaseException:
        for rt in runtimes:
            rt.database.dispose()
        raise
    finally:
        shutdown_tracing()


def _keyring_init(path: Path, key_id: str) -> None:
    from svc_common.protection import FileKeyProvider, Keyring, generate_keyring
    from svc_common.protection._keys import write_keyring_file

    if path.exists():
        raise ConfigError(f"keyring file {path} already exists; refusing to overwrite keys")
    keyring = generate_keyring(key_id)
    Keyring.from_json(keyring.to_json(), "--key-id")  # a bad key id is refused before a file exists
    if not write_keyring_file(path, keyring):
        raise ConfigError(f"keyring file {path} already exists; refusing to overwrite keys")
    FileKeyProvider(path)  # read it back: proves the file is valid and private
    print(f"created keyring {path} (mode 0600, active key {key_id}); back it up somewhere safe")


def _migrate(services: list[str], config_file: Path | None) -> None:
    from svc_common.config import load_settings
    from svc_common.db import Database
    from svc_common.logs import configure_logging

    configure_logging("WARNING", "text")
    names = None if "all" in services else services
    for e in entries(names):
        settings = load_settings(e.settings_class, config_file)
        database = Database.from_settings(settings)
        try:
            revision = e.schema.migrations.upgrade(database.engine)
        finally:
            database.dispose()
        where = database.engine.url.render_as_string(hide_password=True)
        print(f"{e.name}: at revision {revision} ({where})")


def _show_config(service: str, config_file: Path | None) -> None:
    from svc_common.config import ServerSettings, describe_fields, load_settings, redact_url

    cls = ServerSettings if service == "suite" else next(e.settings_class for e in entries([service]))
    current = load_settings(cls, config_file)
    print(f"# settings of {service}: environment variable, TOML key in [{cls.section}], current value")
    for env, key, _default, doc in describe_fields(cls):
        value = getattr(current, key)
        if key.endswith("_url") and isinstance(value, str):
            value = redact_url(value)  # database_url, nats_url, gateway_url: never print a password
        print(f"{env}\n    [{cls.section}] {key} = {value!r}\n    {doc}")


if __name__ == "__main__":
    main()
