"""Configuration: validation, clear problems, secrets from outside the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from edge.cli import main
from edge.config import Config, ConfigError, load_config, parse_config, redacted
from tests.conftest import REPO_ROOT


def test_defaults_are_valid() -> None:
    """Every field has a default that validates."""
    config = Config()
    assert config.mqtt.port == 1883
    assert config.kiosk.host == "127.0.0.1"


def test_demo_config_is_valid() -> None:
    """The shipped demo configuration loads and resolves its relative paths."""
    config = load_config(REPO_ROOT / "firmware_config" / "demo.toml")
    assert config.device.data_dir.is_absolute()
    assert config.kiosk.port == 8080


def test_check_names_bad_value_and_unknown_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`config check` exits 2 and names both the out-of-range port and the unknown key."""
    path = tmp_path / "bad.toml"
    path.write_text("[mqtt]\nport = 70000\n\n[beacons]\ncolour = 1\n")
    assert main(["config", "check", str(path)]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line]
    assert len(lines) == 2
    assert any("mqtt.port" in line and "70000" in line and "65535" in line for line in lines)
    assert any("beacons.colour" in line and "unknown key" in line for line in lines)


def test_check_names_syntax_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A TOML syntax error is reported with its line number."""
    path = tmp_path / "broken.toml"
    path.write_text('[device]\nstore_id = "a"\nlocale = \n')
    assert main(["config", "check", str(path)]) == 2
    assert "line 3" in capsys.readouterr().err


def test_check_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A good file exits 0."""
    path = tmp_path / "good.toml"
    path.write_text('[device]\nstore_id = "s1"\n')
    assert main(["config", "check", str(path)]) == 0
    assert "ok" in capsys.readouterr().out


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    """A missing file says so rather than raising FileNotFoundError."""
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.toml")


def test_literal_and_pattern_problems_say_what_is_allowed() -> None:
    """Enumerations and patterns list what is allowed."""
    with pytest.raises(ConfigError) as info:
        parse_config({"mqtt": {"protocol": "4"}, "device": {"store_id": "bad id!"}})
    text = str(info.value)
    assert "mqtt.protocol" in text
    assert "'5'" in text
    assert "device.store_id" in text


def test_secrets_from_environment_and_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Secrets come from the environment first, then from systemd credentials."""
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "smtp_password").write_text("from-credential\n")
    (creds / "mqtt_password").write_text("ignored")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    monkeypatch.setenv("KIOSK_EDGE_MQTT_PASSWORD", "from-env")
    config = parse_config({"mqtt": {"password": "in-file"}})
    assert config.mqtt.password == "from-env"
    assert config.mail.password == "from-credential"


def test_redacted_hides_secrets() -> None:
    """The redacted view never shows a password or the salt."""
    config = parse_config(
        {
            "mqtt": {"password": "p1"},
            "kiosk": {"admin_password": "p2"},
            "device": {"identity_salt": "s"},
        }
    )
    text = str(redacted(config))
    assert "p1" not in text
    assert "p2" not in text
    assert "'s'" not in text
    assert (
        config.fingerprint()
        == parse_config(
            {
                "mqtt": {"password": "other"},
                "kiosk": {"admin_password": "x"},
                "device": {"identity_salt": "y"},
            }
        ).fingerprint()
    )


def test_url_template_needs_placeholder() -> None:
    """The compare URL template must contain {skus}."""
    with pytest.raises(ConfigError, match="skus"):
        parse_config({"kiosk": {"compare_url_template": "https://x.example/"}})


@pytest.mark.parametrize(
    ("data", "key", "words"),
    [
        ({"mqtt": {"host": "mqtt://broker:1883"}}, "mqtt.host", "wrong form"),
        ({"mqtt": {"host": "broker example"}}, "mqtt.host", "wrong form"),
        ({"mqtt": {"reconnect_min_s": 30, "reconnect_max_s": 5}}, "mqtt", "at least"),
        ({"mqtt": {"tls": {"key_file": "/k.pem"}}}, "mqtt.tls", "cert_file"),
    ],
)
def test_mqtt_settings_that_cannot_work_are_refused(
    data: dict[str, Any], key: str, words: str
) -> None:
    """A URL or a space in the broker host, a backoff ceiling below its floor and a client
    key without its certificate are named at check time, not found at the first connect."""
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    assert [p.key for p in info.value.problems] == [key]
    assert words in str(info.value)


def test_broker_host_forms_that_work() -> None:
    """Host names, IPv4 and bare IPv6 addresses are accepted."""
    for host in ("broker.example.com", "10.0.0.5", "::1", "mqtt-1.store_7.lan"):
        assert parse_config({"mqtt": {"host": host}}).mqtt.host == host


def test_unreadable_credential_is_a_config_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A systemd credential that is not text is a named problem, not a traceback."""
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "mqtt_password").write_bytes(b"\xff\xfe\x00")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    monkeypatch.delenv("KIOSK_EDGE_MQTT_PASSWORD", raising=False)
    path = tmp_path / "edge.toml"
    path.write_text("")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.path == path
    assert [p.key for p in info.value.problems] == ["mqtt.password"]
    assert "LoadCredential" in str(info.value)


def test_a_section_that_is_not_a_table_says_how_to_write_it() -> None:
    """`mqtt = 5` names the section and shows the table syntax (not pydantic's class name)."""
    with pytest.raises(ConfigError) as info:
        parse_config({"mqtt": 5, "beacons": {"enabled": False}, "printer": {"enabled": False}})
    assert [str(p) for p in info.value.problems] == [
        "mqtt: 5 is not a table; write [mqtt] with its keys on the lines below it"
    ]
    with pytest.raises(ConfigError, match=r"write \[mqtt\.tls\]"):
        parse_config({"mqtt": {"tls": "yes"}})
