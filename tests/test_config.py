from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from svc_campaign.config import CampaignSettings
from svc_collect.config import CollectSettings
from svc_common.config import ServerSettings, describe_fields, load_settings
from svc_common.errors import ConfigError
from svc_profile.config import ProfileSettings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("QIMING_"):
            monkeypatch.delenv(name)


def test_defaults_give_each_service_its_own_port_and_sqlite_file() -> None:
    collect = load_settings(CollectSettings)
    profile = load_settings(ProfileSettings)
    assert (collect.resolved_port(), profile.resolved_port()) == (50051, 50052)
    assert collect.resolved_database_url().endswith("qiming-data/collect.db")
    assert profile.resolved_database_url().endswith("qiming-data/profile.db")


def test_environment_overrides_toml_which_overrides_common(tmp_path: Path, monkeypatch) -> None:
    config = tmp_path / "qiming.toml"
    config.write_text(
        '[common]\nlog_level = "DEBUG"\nshutdown_grace_seconds = 3\n'
        "[collect]\ngrpc_port = 6001\nshutdown_grace_seconds = 7\n"
    )
    monkeypatch.setenv("QIMING_COLLECT_GRPC_PORT", "6002")
    settings = load_settings(CollectSettings, config)
    assert settings.grpc_port == 6002  # env beats TOML
    assert settings.shutdown_grace_seconds == 7  # [collect] beats [common]
    assert settings.log_level == "DEBUG"  # [common] applies
    assert load_settings(ProfileSettings, config).grpc_port == -1  # [collect] is not profile's


def test_config_file_from_environment(tmp_path: Path, monkeypatch) -> None:
    config = tmp_path / "q.toml"
    config.write_text("[profile]\ndatabase_pool_size = 3\n")
    monkeypatch.setenv("QIMING_CONFIG_FILE", str(config))
    assert load_settings(ProfileSettings).database_pool_size == 3


def test_bad_env_value_names_the_variable(monkeypatch) -> None:
    monkeypatch.setenv("QIMING_COLLECT_GRPC_PORT", "seventy")
    with pytest.raises(ConfigError) as err:
        load_settings(CollectSettings)
    assert str(err.value).startswith("QIMING_COLLECT_GRPC_PORT:")
    assert "'seventy'" in str(err.value)


def test_out_of_range_toml_value_names_file_table_and_key(tmp_path: Path) -> None:
    config = tmp_path / "q.toml"
    config.write_text("[collect]\ngrpc_port = 70000\n")
    with pytest.raises(ConfigError, match=r"q\.toml \[collect\] grpc_port: .*65535.*70000"):
        load_settings(CollectSettings, config)


def test_unknown_keys_are_refused_not_ignored(tmp_path: Path, monkeypatch) -> None:
    config = tmp_path / "q.toml"
    config.write_text("[collect]\ngrpc_prot = 1\n")
    with pytest.raises(ConfigError, match="grpc_prot: unknown setting"):
        load_settings(CollectSettings, config)
    monkeypatch.setenv("QIMING_COLLECT_GRCP_PORT", "1")
    with pytest.raises(ConfigError, match="QIMING_COLLECT_GRCP_PORT: unknown setting"):
        load_settings(CollectSettings)


def test_bad_database_url_is_a_config_error(monkeypatch) -> None:
    monkeypatch.setenv("QIMING_COLLECT_DATABASE_URL", "mysql://root@localhost/x")
    with pytest.raises(ConfigError, match=r"QIMING_COLLECT_DATABASE_URL: .*unsupported database 'mysql'"):
        load_settings(CollectSettings)
    monkeypatch.setenv("QIMING_COLLECT_DATABASE_URL", "postgresql+psycopg2://h/db")
    with pytest.raises(ConfigError, match=r"driver 'psycopg2' is not supported.*postgresql\+psycopg://"):
        load_settings(CollectSettings)
    monkeypatch.setenv("QIMING_COLLECT_DATABASE_URL", "sqlite://")
    with pytest.raises(ConfigError, match="in-memory SQLite"):
        load_settings(CollectSettings)


@pytest.mark.parametrize(
    ("nats_url", "message"),
    [
        ("nats://h:99999", "server 'nats://h:99999': the port is not a TCP port"),
        ("nats://u:secret@h:0", r"server 'nats://u:\*\*\*@h:0': the port is not a TCP port"),
        ("nats://h:x", "the port is not a TCP port"),
        ("http://h:4222", "scheme 'http' is not one of nats, tls, ws, wss"),
        ("nats://", "server 'nats://' names no host"),
        ("nats://a:4222,", "an empty server in the list"),
        ("nats://a:4222,ws://b:80", "cannot be mixed"),
        ("nats://h:4222/stream", "has no path or query"),
    ],
)
def test_a_malformed_nats_url_is_a_config_error(monkeypatch, nats_url: str, message: str) -> None:
    # Checked with the settings (so by `qiming config` too), not first when the collector connects at start.
    monkeypatch.setenv("QIMING_COLLECT_NATS_URL", nats_url)
    with pytest.raises(ConfigError, match=f"QIMING_COLLECT_NATS_URL: .*{message}") as caught:
        load_settings(CollectSettings)
    assert "secret" not in str(caught.value)


@pytest.mark.parametrize("nats_url", ["nats://127.0.0.1:4222", "nats://u:p@a:4222, tls://b", "a:4222,b", "wss://a"])
def test_nats_urls_the_client_reads_are_accepted(monkeypatch, nats_url: str) -> None:
    monkeypatch.setenv("QIMING_COLLECT_NATS_URL", nats_url)
    assert load_settings(CollectSettings).nats_url == nats_url


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(CollectSettings, tmp_path / "nope.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[collect\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(CollectSettings, broken)


def test_every_field_is_documented_with_a_unit_where_it_has_one() -> None:
    for cls in (ServerSettings, CollectSettings):
        for env, key, _default, doc in describe_fields(cls):
            assert doc, f"{env} has no docstring"
            if any(word in key for word in ("timeout", "interval", "grace", "recycle")):
                assert key.endswith(("_seconds", "_millis")), f"{key} lacks a unit"


def test_empty_environment_values_mean_unset(monkeypatch) -> None:
    monkeypatch.setenv("QIMING_COLLECT_GRPC_PORT_FILE", "")
    monkeypatch.setenv("QIMING_COLLECT_TELEMETRY_FILE_PATH", "")
    monkeypatch.setenv("QIMING_COLLECT_KEYRING_FILE", "")
    settings = load_settings(CollectSettings)
    assert settings.grpc_port_file is None
    assert settings.telemetry_file_path is None
    assert settings.keyring_file is None


def test_an_empty_environment_variable_lets_the_files_value_apply(tmp_path: Path, monkeypatch) -> None:
    config = tmp_path / "qiming.toml"
    config.write_text(
        '[collect]\ndatabase_url = "postgresql+psycopg://qiming@db1:5432/qiming"\ndata_dir = "/srv/qiming"\n'
        '[campaign]\ngrpc_channels = ["fax"]\n'
    )
    for name in ("DATABASE_URL", "DATA_DIR", "UNMASK_ROLES", "GRPC_PORT"):
        monkeypatch.setenv(f"QIMING_COLLECT_{name}", " ")
    settings = load_settings(CollectSettings, config)
    assert settings.database_url == "postgresql+psycopg://qiming@db1:5432/qiming"  # not SQLite in the data dir
    assert settings.data_dir == Path("/srv/qiming")
    assert settings.unmask_roles == ("unmask", "admin")
    # A bad value from the file is blamed on the file, not on the empty variable.
    monkeypatch.setenv("QIMING_CAMPAIGN_GRPC_CHANNELS", "")
    with pytest.raises(ConfigError, match=r"qiming.toml \[campaign\] grpc_channels: unknown channel 'fax'"):
        load_settings(CampaignSettings, config)


def test_typos_in_common_and_table_names_are_refused(tmp_path: Path) -> None:
    typo = tmp_path / "typo.toml"
    typo.write_text("[common]\nlog_levle = 'DEBUG'\n")
    with pytest.raises(ConfigError, match=r"\[common\] log_levle: unknown setting"):
        load_settings(CollectSettings, typo)
    table = tmp_path / "table.toml"
    table.write_text("[colect]\ngrpc_port = 1\n")
    with pytest.raises(ConfigError, match=r"unknown table \[colect\]"):
        load_settings(CollectSettings, table)
    shared = tmp_path / "shared.toml"  # a key only svc_collect has is fine in [common]
    shared.write_text("[common]\nmax_batch_events = 500\n")
    assert load_settings(CollectSettings, shared).max_batch_events == 500
    assert load_settings(ProfileSettings, shared).resolved_port() == 50052


def test_a_rule_across_settings_names_them() -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(ProfileSettings, job_heartbeat_seconds=40, job_orphan_seconds=60)
    assert str(err.value).startswith("[profile] settings: job_orphan_seconds (60) must be at least twice")


def test_lists_in_the_environment_as_commas_or_json_and_empty_as_unset(monkeypatch) -> None:
    monkeypatch.setenv("QIMING_COLLECT_UNMASK_ROLES", " admin, auditor ")
    assert load_settings(CollectSettings).unmask_roles == ("admin", "auditor")
    monkeypatch.setenv("QIMING_COLLECT_UNMASK_ROLES", '["admin"]')
    assert load_settings(CollectSettings).unmask_roles == ("admin",)
    monkeypatch.setenv("QIMING_COLLECT_UNMASK_ROLES", "[]")
    assert load_settings(CollectSettings).unmask_roles == ()
    monkeypatch.setenv("QIMING_CAMPAIGN_GRPC_CHANNELS", "sms,email")
    assert load_settings(CampaignSettings).grpc_channels == ["sms", "email"]
    default = load_settings(ProfileSettings).placeholder_ids
    monkeypatch.setenv("QIMING_PROFILE_PLACEHOLDER_IDS", "")
    assert load_settings(ProfileSettings).placeholder_ids == default
    for mistyped in ("id_number phone", '"admin"'):  # one name each, silently, before
        monkeypatch.setenv("QIMING_COLLECT_SENSITIVE_PROPERTIES", mistyped)
        with pytest.raises(ConfigError, match=r"^QIMING_COLLECT_SENSITIVE_PROPERTIES: a list item holds a blank"):
            load_settings(CollectSettings)
    monkeypatch.delenv("QIMING_COLLECT_SENSITIVE_PROPERTIES")
    monkeypatch.setenv("QIMING_COLLECT_UNMASK_ROLES", '["admin"')
    with pytest.raises(ConfigError, match=r"^QIMING_COLLECT_UNMASK_ROLES: not valid JSON \(got '\[\"admin\"'\)"):
        load_settings(CollectSettings)


def test_an_unencoded_at_sign_in_a_database_password_is_refused_without_echoing_it(monkeypatch) -> None:
    monkeypatch.setenv("QIMING_COLLECT_DATABASE_URL", "postgresql+psycopg://qiming:SEC@RET@db1:5432/qiming")
    with pytest.raises(ConfigError, match="contains '@'; write it URL-encoded as %40") as caught:
        load_settings(CollectSettings)
    assert "SEC" not in str(caught.value) and "RET" not in str(caught.value)
    monkeypatch.setenv("QIMING_COLLECT_DATABASE_URL", "postgresql+psycopg://qiming:Ab/c@TAIL@db1:5432/qiming")
    with pytest.raises(ConfigError, match="contains '@'") as caught:
        load_settings(CollectSettings)
    assert "TAIL" not in str(caught.value) and "Ab/c" not in str(caught.value)
    monkeypatch.setenv("QIMING_COLLECT_DATABASE_URL", "postgresql+psycopg://qiming:SEC%40RET@db1:5432/qiming")
    assert load_settings(CollectSettings).database_url.endswith("SEC%40RET@db1:5432/qiming")


def test_an_unknown_campaign_time_zone_is_refused_at_start(monkeypatch) -> None:
    for zone in ("Mars/Olympus", "Asia"):  # "Asia" is a directory of the zone database
        monkeypatch.setenv("QIMING_CAMPAIGN_TIMEZONE", zone)
        with pytest.raises(ConfigError, match=rf"QIMING_CAMPAIGN_TIMEZONE: unknown time zone '{zone}'"):
            load_settings(CampaignSettings)


def test_the_jetstream_log_without_the_nats_extra_is_a_config_error(tmp_path: Path) -> None:
    # A process whose import system cannot find nats-py, as in an install without the extra.
    code = (
        "import importlib.util, sys\n"
        "real = importlib.util.find_spec\n"
        "importlib.util.find_spec = lambda name, *a: None if name == 'nats' else real(name, *a)\n"
        "from svc_common.cli import main\n"
        "sys.argv = ['qiming', 'config', 'collect']\n"
        "main()\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("QIMING_")}
    env["QIMING_COLLECT_LOG_BACKEND"] = "jetstream"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == (
        "qiming: error: QIMING_COLLECT_LOG_BACKEND: the jetstream log needs the nats extra, not installed here: "
        "pip install 'qiming[nats]'"
    )
