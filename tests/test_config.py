from __future__ import annotations

from pathlib import Path

import pytest

from server.config import ServerConfig


def test_flags_beat_environment_beats_defaults() -> None:
    config = ServerConfig.from_args(
        ["--port", "0", "--artifacts", "/tmp/a"],
        {"CRM_PORT": "7000", "CRM_MAX_MESSAGE_MB": "8", "CRM_LOG_LEVEL": "DEBUG"},
    )
    assert config.port == 0
    assert config.artifacts == Path("/tmp/a")
    assert config.max_message_mb == 8
    assert config.max_message_bytes == 8 * 1024 * 1024
    assert config.log_level == "DEBUG"
    assert config.metrics_port == 9095


@pytest.mark.parametrize(
    ("argv", "env"),
    [
        (["--port", "70000"], {}),
        (["--max-message-mb", "0"], {}),
        ([], {"CRM_PORT": "abc"}),
        (["--pin", "churn"], {}),
        (["--log-level", "LOUD"], {}),
        (["--threads", "4", "--max-open-streams", "4"], {}),  # no thread left for unary calls
        (["--max-open-streams", "-1"], {}),
        (["--max-health-watches", "0"], {}),
        ([], {"CRM_MAX_INTEGRITY_LOGS": "0"}),
        (["--max-leaf-kib", "0"], {}),
        (["--max-append-mb", "-1"], {}),
        (["--max-campaign-kib", "0"], {}),
    ],
)
def test_bad_configuration_is_refused(argv: list[str], env: dict[str, str]) -> None:
    with pytest.raises(SystemExit) as err:
        ServerConfig.from_args(argv, env)
    assert err.value.code == 2


def test_open_streams_default_to_half_the_threads() -> None:
    assert ServerConfig.from_args(["--threads", "8"], {}).stream_limit == 4
    assert ServerConfig.from_args(["--threads", "1"], {}).stream_limit == 1
    assert (
        ServerConfig.from_args(["--threads", "8", "--max-open-streams", "7"], {}).stream_limit == 7
    )


def test_pins_parse() -> None:
    config = ServerConfig.from_args(["--pin", "churn=3, spend=2"], {})
    assert config.pinned_versions() == {"churn": 3, "spend": 2}


def test_batching_overrides_parse_and_bad_ones_are_refused() -> None:
    config = ServerConfig.from_args(
        ["--batching", "churn=max_rows:512,delay_us:200; spend=preferred_rows:8"], {}
    )
    assert config.batching_overrides() == {
        "churn": {"max_rows": 512, "delay_us": 200},
        "spend": {"preferred_rows": 8},
    }
    for bad in ("churn", "churn=size:3", "churn=max_rows:-1", "=max_rows:3"):
        with pytest.raises(SystemExit):
            ServerConfig.from_args(["--batching", bad], {})


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [([], {}, True), (["--pin-cpus", "false"], {}, False), ([], {"CRM_PIN_CPUS": "0"}, False),
     ([], {"CRM_PIN_CPUS": "yes"}, True)],
)  # fmt: skip
def test_booleans_parse_the_same_from_flags_and_environment(argv, env, expected) -> None:
    assert ServerConfig.from_args(argv, env).pin_cpus is expected


def test_tls_options_go_together_and_name_existing_files(tmp_path: Path) -> None:
    cert, key, ca = (tmp_path / n for n in ("cert.pem", "key.pem", "ca.pem"))
    for path in (cert, key, ca):
        path.write_text("parsed at start-up, not here")
    plain = ServerConfig.from_args([], {})
    assert (plain.tls_mode, plain.tls_cert, plain.metrics_bind_host) == ("off", None, "127.0.0.1")
    tls = ServerConfig.from_args(
        ["--tls-cert", str(cert), "--metrics-tls", "true", "--host", "10.0.0.1"],
        {"CRM_TLS_KEY": str(key), "CRM_TLS_CLIENT_CA": ""},  # empty: unset
    )
    assert (tls.tls_mode, tls.tls_key, tls.tls_client_ca) == ("tls", key, None)
    assert tls.metrics_bind_host == "10.0.0.1"
    mtls = ServerConfig.from_args(
        ["--tls-cert", str(cert), "--tls-key", str(key), "--tls-client-ca", str(ca),
         "--metrics-host", "127.0.0.2"], {},
    )  # fmt: skip
    assert (mtls.tls_mode, mtls.metrics_bind_host) == ("mtls", "127.0.0.2")
    for bad in (
        ["--tls-cert", str(cert)],  # no key
        ["--tls-key", str(key)],  # no certificate
        ["--tls-client-ca", str(ca)],  # mTLS without a server certificate
        ["--metrics-tls", "true"],  # HTTPS /metrics without a certificate
        ["--tls-cert", str(cert), "--tls-key", str(tmp_path / "missing.pem")],
    ):
        with pytest.raises(SystemExit) as err:
            ServerConfig.from_args(bad, {})
        assert err.value.code == 2, bad


def test_a_server_that_trusts_every_caller_listens_on_loopback_unless_told(
    tmp_path: Path,
) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"x" * 32)
    assert ServerConfig.from_args([], {}).bind_host == "127.0.0.1"
    assert ServerConfig.from_args(["--host", "0.0.0.0"], {}).bind_host == "0.0.0.0"
    assert ServerConfig.from_args([], {"CRM_HOST": "10.1.2.3"}).bind_host == "10.1.2.3"
    secured = ServerConfig.from_args(["--auth-hmac-secret-file", str(secret)], {})
    assert (secured.auth_configured, secured.bind_host) == (True, "0.0.0.0")


def test_tenants_need_authentication(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):  # argparse's exit 2 with the message
        ServerConfig.from_args(["--tenants", "true"], {})
    secret = tmp_path / "secret"
    secret.write_bytes(b"x" * 32)
    config = ServerConfig.from_args(
        ["--tenants", "true", "--auth-hmac-secret-file", str(secret)], {}
    )
    assert config.tenants
