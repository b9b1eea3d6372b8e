"""Provisioning into a temporary root: files, permissions, idempotence, dry runs, bad input."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from werkzeug.security import check_password_hash

from edge.config import load_config
from edge.provision import main as provision_main
from tests.conftest import KIOSK_EDGE, REPO_ROOT

CMDLINE = (
    "console=serial0,115200 console=tty1 root=PARTUUID=4e639091-02 rootfstype=ext4 "
    "fsck.repair=yes rootwait consoleblank=600\n"
)
CONFIG_TXT = "# Pi OS default\ndtparam=audio=on\n"
BASE_ARGS = [
    "--store",
    "paris-01",
    "--device",
    "kiosk-3",
    "--broker",
    "mqtts://broker.example:8883",
]


@pytest.fixture
def image(tmp_path: Path) -> Path:
    """A mounted-image stand-in: boot files as Raspberry Pi OS ships them."""
    root = tmp_path / "root"
    (root / "boot/firmware").mkdir(parents=True)
    (root / "boot/firmware/cmdline.txt").write_text(CMDLINE)
    (root / "boot/firmware/config.txt").write_text(CONFIG_TXT)
    (root / "etc/bluetooth").mkdir(parents=True)
    (root / "etc/bluetooth/main.conf").write_text("[General]\n#Name = BlueZ\n")
    return root


def snapshot(root: Path) -> dict[str, tuple[str, int, int, str]]:
    """Every path under root: content hash, mode, mtime and link target."""
    out = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        link = os.readlink(path) if path.is_symlink() else ""
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
        out[str(path.relative_to(root))] = (digest, st.st_mode, st.st_mtime_ns, link)
    return out


def run(root: Path, *extra: str) -> int:
    return provision_main([*BASE_ARGS, "--root", str(root), *extra])


def test_files_and_permissions(image: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Config, key (0600), CSR, units, rules and boot config land where a Pi expects them."""
    assert run(image, "--printer", "tcp://192.0.2.40:9100", "--locale", "en_GB") == 0
    out = capsys.readouterr().out
    etc = image / "etc/kiosk-edge"
    config = load_config(etc / "edge.toml")
    assert config.device.store_id == "paris-01"
    assert config.device.device_id == "kiosk-3"
    assert config.device.locale == "en_GB"
    assert (config.mqtt.host, config.mqtt.port, config.mqtt.tls.enabled) == (
        "broker.example",
        8883,
        True,
    )
    assert str(config.mqtt.tls.key_file) == "/run/credentials/kiosk-edge.service/mqtt_client_key"
    assert config.printer.url == "tcp://192.0.2.40:9100"
    assert (etc / "credentials").stat().st_mode & 0o777 == 0o700
    key_path = etc / "credentials/mqtt_client_key"
    assert key_path.stat().st_mode & 0o777 == 0o600
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    csr = x509.load_pem_x509_csr((etc / "mqtt-client.csr").read_bytes())
    assert csr.is_signature_valid
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == (
        "kiosk-edge-paris-01-kiosk-3"
    )
    assert csr.public_key() == key.public_key()
    admin = etc / "credentials/admin_password"
    assert admin.stat().st_mode & 0o777 == 0o600
    password = out.split("stored hashed): ")[1].split()[0]
    assert check_password_hash(admin.read_text().strip(), password)
    assert password not in admin.read_text()
    unit = (image / "etc/systemd/system/kiosk-edge.service").read_text()
    assert f"ExecStart={sys.prefix}/bin/kiosk-edge run" in unit
    wants = image / "etc/systemd/system/multi-user.target.wants/kiosk-edge.service"
    assert os.readlink(wants) == "/etc/systemd/system/kiosk-edge.service"
    assert (image / "etc/udev/rules.d/70-kiosk-edge.rules").exists()
    assert (image / "etc/sysusers.d/kiosk-edge.conf").exists()
    assert (image / "etc/bluetooth/main.conf.kiosk-edge-orig").read_text() == (
        "[General]\n#Name = BlueZ\n"
    )
    assert "ControllerMode = le" in (image / "etc/bluetooth/main.conf").read_text()
    boot = (image / "boot/firmware/config.txt").read_text()
    assert boot.startswith(CONFIG_TXT)
    assert boot.count("# BEGIN kiosk-edge") == 1
    assert "dtparam=watchdog=on" in boot
    cmdline = (image / "boot/firmware/cmdline.txt").read_text()
    assert cmdline.count("\n") == 1
    assert "consoleblank=0" in cmdline
    assert "consoleblank=600" not in cmdline
    assert "root=PARTUUID=4e639091-02" in cmdline
    assert "video=HDMI-A-1:1920x1080@60D,rotate=0" in cmdline
    assert "mqtt-client.csr" in out


def test_second_run_changes_nothing(image: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Idempotent: the same arguments again touch no file (not even its mtime)."""
    assert run(image) == 0
    before = snapshot(image)
    capsys.readouterr()
    assert run(image) == 0
    assert snapshot(image) == before
    out = capsys.readouterr().out
    assert "nothing to change" in out
    assert "stored hashed" not in out


def test_rotation_change_updates_only_cmdline(
    image: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Changing one setting rewrites only the file it lives in."""
    assert run(image) == 0
    before = snapshot(image)
    assert run(image, "--rotate", "90") == 0
    after = snapshot(image)
    changed = {k for k in after if after[k] != before.get(k) and (image / k).is_file()}
    assert changed == {"boot/firmware/cmdline.txt"}
    assert "rotate=90" in (image / "boot/firmware/cmdline.txt").read_text()
    assert (image / "boot/firmware/cmdline.txt").read_text().count("video=") == 1


def test_dry_run_writes_nothing_and_shows_the_diff(
    image: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--dry-run lists what would change (with a diff) and leaves the tree as it was."""
    before = snapshot(image)
    assert run(image, "--dry-run") == 0
    assert snapshot(image) == before
    out = capsys.readouterr().out
    assert "would create /etc/kiosk-edge/edge.toml" in out
    assert "would update /boot/firmware/cmdline.txt" in out
    assert "+console=serial0" in out or "consoleblank=0" in out
    assert run(image) == 0
    capsys.readouterr()
    provisioned = snapshot(image)
    assert run(image, "--locale", "de_DE", "--dry-run") == 0
    out = capsys.readouterr().out
    assert '-locale = "fr_FR"' in out
    assert '+locale = "de_DE"' in out
    assert snapshot(image) == provisioned


def test_keys_added_by_store_it_are_kept(image: Path) -> None:
    """Another run keeps keys that were added to edge.toml by hand."""
    assert run(image) == 0
    path = image / "etc/kiosk-edge/edge.toml"
    path.write_text(path.read_text() + "\n[kiosk]\nidle_timeout_s = 45.0\n")
    assert run(image, "--locale", "en_GB") == 0
    config = load_config(path)
    assert config.kiosk.idle_timeout_s == 45.0
    assert config.device.locale == "en_GB"


def test_store_wide_config_is_the_base(image: Path, tmp_path: Path) -> None:
    """--config gives a store-wide template; the kiosk's file and the options win over it."""
    template = tmp_path / "store.toml"
    template.write_text(
        '[kiosk]\nidle_timeout_s = 120.0\n\n[device]\nstore_id = "ignored"\nlocale = "en_GB"\n'
    )
    assert run(image, "--config", str(template)) == 0
    path = image / "etc/kiosk-edge/edge.toml"
    config = load_config(path)
    assert config.kiosk.idle_timeout_s == 120.0
    assert config.device.store_id == "paris-01"  # --store wins over the template
    assert config.device.locale == "fr_FR"  # so does --locale's default
    path.write_text(path.read_text().replace("120.0", "60.0"))
    assert run(image, "--config", str(template)) == 0
    assert load_config(path).kiosk.idle_timeout_s == 60.0  # the kiosk's own edit is kept


def test_unreadable_store_config_writes_nothing(
    image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A broken --config file is refused before anything is written."""
    template = tmp_path / "store.toml"
    template.write_text("[kiosk\n")
    before = snapshot(image)
    assert run(image, "--config", str(template)) == 2
    assert "--config" in capsys.readouterr().err
    assert snapshot(image) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--broker", "http://broker.example"], "mqtt:// or mqtts://"),
        (["--broker", "mqtts://broker.example:99999"], "port"),
        (["--store", "paris 01"], "--store"),
        (["--device", ""], "--device"),
        (["--locale", "french"], "--locale"),
        (["--printer", "lpt://1"], "--printer"),
        (["--printer", "usb://epson"], "vendor:product"),
        (["--rotate", "45"], "--rotate"),
        (["--cert", "/nonexistent/cert.pem"], "does not exist"),
    ],
)
def test_bad_arguments_write_nothing(
    image: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    """Each bad argument: exit 2, one sentence naming it, and the root left untouched."""
    before = snapshot(image)
    assert provision_main([*BASE_ARGS, *args, "--root", str(image)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err
    assert len(err.splitlines()) == 1
    assert snapshot(image) == before


def sign(csr_pem: bytes, days: int = 365) -> tuple[bytes, bytes]:
    """Sign a CSR with a throw-away CA: (certificate PEM, CA PEM)."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "central test CA")])
    now = datetime.now(UTC)
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    csr = x509.load_pem_x509_csr(csr_pem)
    cert = (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(ca_name)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=days))
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return cert.public_bytes(pem), ca.public_bytes(pem)


def test_signed_certificate_is_installed(image: Path, tmp_path: Path) -> None:
    """The certificate central signed for the CSR is installed; a foreign one is refused."""
    assert run(image) == 0
    csr = (image / "etc/kiosk-edge/mqtt-client.csr").read_bytes()
    cert, ca = sign(csr)
    (tmp_path / "client.crt").write_bytes(cert)
    (tmp_path / "ca.crt").write_bytes(ca)
    assert run(image, "--cert", str(tmp_path / "client.crt"), "--ca", str(tmp_path / "ca.crt")) == 0
    assert (image / "etc/kiosk-edge/mqtt-client.crt").read_bytes() == cert
    config = load_config(image / "etc/kiosk-edge/edge.toml")
    assert str(config.mqtt.tls.ca_file) == "/etc/kiosk-edge/ca.crt"
    # A certificate for some other key is refused before anything is written.
    other_key = ec.generate_private_key(ec.SECP256R1())
    other_csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")]))
        .sign(other_key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
    )
    foreign, _ = sign(other_csr)
    (tmp_path / "foreign.crt").write_bytes(foreign)
    before = snapshot(image)
    assert run(image, "--cert", str(tmp_path / "foreign.crt")) == 2
    assert snapshot(image) == before


def test_script_and_cli_are_the_same_code(image: Path, cli_env: dict[str, str]) -> None:
    """scripts/provision and `kiosk-edge provision` run the same code: the rerun is a no-op."""

    def call(*command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            command, capture_output=True, text=True, env=cli_env, cwd=REPO_ROOT, timeout=60,
            check=False,
        )  # fmt: skip

    script_path = str(REPO_ROOT / "scripts/provision")
    script = call(script_path, *BASE_ARGS, "--root", str(image))
    assert script.returncode == 0, script.stderr
    assert "create /etc/kiosk-edge/edge.toml" in script.stdout
    cli = call(*KIOSK_EDGE, "provision", *BASE_ARGS, "--root", str(image), "--venv", sys.prefix)
    assert cli.returncode == 0, cli.stderr
    assert "nothing to change" in cli.stdout
    assert call(script_path, "--store", "x").returncode == 2


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_installed_daemon_unit_verifies(image: Path) -> None:
    """The unit provision installed (venv path rewritten) passes systemd-analyze verify."""
    assert run(image) == 0
    unit = image / "etc/systemd/system/kiosk-edge.service"
    proc = subprocess.run(
        ["systemd-analyze", "verify", "--recursive-errors=no", str(unit)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0
    assert proc.stdout + proc.stderr == ""


def test_store_salt_is_installed_as_a_credential(
    image: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """--salt-file: the store's salt (0600) reaches the daemon, so its hashes match central's."""
    from edge.daemon import build_services
    from edge.privacy import hash_identifier

    assert run(image) == 0
    assert "no --salt-file" in capsys.readouterr().out
    assert not (image / "etc/kiosk-edge/credentials/identity_salt").exists()
    salt_file = tmp_path / "store.salt"
    salt_file.write_text("demo-salt-not-secret\n")
    assert run(image, "--salt-file", str(salt_file)) == 0
    out = capsys.readouterr().out
    assert "demo-salt-not-secret" not in out  # a secret: never printed
    cred = image / "etc/kiosk-edge/credentials/identity_salt"
    assert cred.stat().st_mode & 0o777 == 0o600
    dropin = image / "etc/systemd/system/kiosk-edge.service.d/identity-salt.conf"
    assert (
        "LoadCredential=identity_salt:/etc/kiosk-edge/credentials/identity_salt"
        in dropin.read_text()
    )
    # What systemd hands the daemon: the credentials directory.
    monkeypatch.delenv("KIOSK_EDGE_IDENTITY_SALT", raising=False)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(cred.parent))
    config = load_config(image / "etc/kiosk-edge/edge.toml")
    config.device.data_dir = tmp_path / "data"
    services = build_services(config)
    assert hash_identifier(services.salt, "loyalty", "2900001234566") == (
        "49698d7f90c7344b7552e55142b73e35"
    )
    # A later run without --salt-file keeps it; nothing changes.
    before = snapshot(image)
    assert run(image) == 0
    assert snapshot(image) == before
    assert "no --salt-file" not in capsys.readouterr().out


@pytest.mark.parametrize("content", ["short\n", "two words here and more\n", ""])
def test_bad_salt_file_writes_nothing(
    image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str
) -> None:
    """A salt that is too short or not one word: exit 2, one sentence, nothing written."""
    salt_file = tmp_path / "store.salt"
    salt_file.write_text(content)
    before = snapshot(image)
    assert run(image, "--salt-file", str(salt_file)) == 2
    err = capsys.readouterr().err.strip()
    assert "--salt-file" in err
    assert "at least 16 characters" in err
    assert snapshot(image) == before


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_unit_with_the_salt_dropin_verifies(image: Path, tmp_path: Path) -> None:
    """The unit plus provision's identity-salt drop-in pass systemd-analyze verify silently
    (the drop-in is read: a misspelt key in it would be reported)."""
    salt_file = tmp_path / "store.salt"
    salt_file.write_text("demo-salt-not-secret\n")
    assert run(image, "--salt-file", str(salt_file)) == 0
    units = image / "etc/systemd/system"

    def verify() -> str:
        proc = subprocess.run(
            ["systemd-analyze", "verify", "--recursive-errors=no", "kiosk-edge.service"],
            capture_output=True, text=True, timeout=60, check=False, cwd=units,
            env={**os.environ, "SYSTEMD_UNIT_PATH": f"{units}:"},
        )  # fmt: skip
        return f"{proc.returncode}:{proc.stdout}{proc.stderr}"

    assert verify() == "0:"
    dropin = units / "kiosk-edge.service.d/identity-salt.conf"
    dropin.write_text(dropin.read_text().replace("LoadCredential=", "LoadCredentia="))
    assert "Unknown key 'LoadCredentia'" in verify()
