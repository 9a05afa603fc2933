"""Settings that refuse what they cannot use, naming the setting."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from casebook.settings import Settings, describe_invalid, get_settings
from entrypoints.cli import main
from messaging.kafka_clients import replication_for, security_options


def test_trusted_proxies_are_addresses_networks_or_any() -> None:
    settings = Settings(api_trusted_proxies=" 10.0.0.0/8, 127.0.0.1 ,*, ::1")

    assert settings.api_trusted_proxies == "10.0.0.0/8,127.0.0.1,*,::1"


def test_a_trusted_proxy_that_is_no_address_is_refused_by_name() -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(api_trusted_proxies="10.0.0.1,proxy.internal")

    [error] = refused.value.errors()
    assert error["loc"] == ("api_trusted_proxies",)
    assert "'proxy.internal' is not an IP address or network" in error["msg"]


def test_no_proxy_is_trusted_by_default() -> None:
    assert Settings().api_trusted_proxies == ""


def test_sasl_without_its_credentials_is_refused_naming_each_missing_setting() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(kafka_security_protocol="SASL_SSL", kafka_sasl_username="casebook")
    message = describe_invalid(caught.value)
    assert "CASEBOOK_KAFKA_SASL_MECHANISM" in message
    assert "CASEBOOK_KAFKA_SASL_PASSWORD" in message
    assert "CASEBOOK_KAFKA_SASL_USERNAME" not in message
    assert "\n" not in message


def test_tls_files_with_plaintext_are_refused(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    with pytest.raises(ValidationError, match="CASEBOOK_KAFKA_SSL_CAFILE set but"):
        Settings(kafka_ssl_cafile=ca)


def test_a_missing_ca_file_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="CASEBOOK_KAFKA_SSL_CAFILE: no file at"):
        Settings(kafka_security_protocol="SSL", kafka_ssl_cafile=tmp_path / "absent.pem")


def test_every_kafka_client_gets_the_sasl_ssl_options(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    settings = Settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="casebook",
        kafka_sasl_password="s3cret",
        kafka_ssl_cafile=ca,
    )
    assert security_options(settings) == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "casebook",
        "sasl_plain_password": "s3cret",
        "ssl_check_hostname": True,
        "ssl_cafile": str(ca),
    }
    assert "s3cret" not in repr(settings)


def test_plaintext_clients_get_no_security_options() -> None:
    assert security_options(Settings()) == {"security_protocol": "PLAINTEXT"}


def test_topics_are_replicated_three_times_with_two_in_sync_on_a_cluster() -> None:
    assert replication_for(Settings(), brokers=3) == (3, 2)
    assert replication_for(Settings(), brokers=5) == (3, 2)
    assert replication_for(Settings(), brokers=1) == (1, 1)
    assert replication_for(Settings(topic_replication=2), brokers=3) == (2, 1)
    settings = Settings(topic_replication=5, topic_min_insync_replicas=3)
    assert replication_for(settings, brokers=5) == (5, 3)


def test_the_cli_reports_invalid_settings_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CASEBOOK_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9")
    get_settings.cache_clear()
    try:
        assert main(["relay"]) == 2
    finally:
        get_settings.cache_clear()
    err = capsys.readouterr().err
    assert err.startswith("casebook: error: invalid settings: SASL_SSL needs ")
    assert err.count("\n") == 1
