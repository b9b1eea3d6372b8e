"""A real Mosquitto broker for tests: its own config, free ports, optional mutual TLS.

Usage::

    broker = Mosquitto(tmp_path, tls=True).start()
    broker.port            # plain listener on 127.0.0.1
    broker.tls_port        # TLS listener, require_certificate true
    broker.ca_file, broker.client_cert, broker.client_key
    broker.stop(); broker.start(); broker.restart(); broker.kill()
    Mosquitto(tmp_path, users={"kiosk": "secret"})  # passwords required, anonymous refused

Each instance is independent (other helpers' tests reuse it, e.g. ``doctor``). The broker's
queue limit is lifted (``max_queued_messages 0``): Mosquitto's default silently drops QoS 1
messages to a slow subscriber, which would look exactly like relay loss. Stop it by PID
(``stop()``/``kill()``) in teardown; the context manager does that.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Final

from tests.conftest import free_port

MOSQUITTO: Final = "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD: Final = "/usr/bin/mosquitto_passwd"
START_TIMEOUT_S: Final = 10.0


def make_pki(folder: Path, client_cn: str = "kiosk-test") -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1/localhost and a client certificate (PEM)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(name("kiosk-edge test CA"))
        .issuer_name(name("kiosk-edge test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )

    def leaf(cn: str, server: bool) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(cn))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
        return builder.sign(ca_key, hashes.SHA256()), key

    def write_cert(path: Path, cert: x509.Certificate) -> Path:
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return path

    def write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> Path:
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        path.chmod(0o600)
        return path

    server_cert, server_key = leaf("127.0.0.1", server=True)
    client_cert, client_key = leaf(client_cn, server=False)
    return {
        "ca_file": write_cert(folder / "ca.pem", ca_cert),
        "server_cert": write_cert(folder / "server.pem", server_cert),
        "server_key": write_key(folder / "server.key", server_key),
        "client_cert": write_cert(folder / "client.pem", client_cert),
        "client_key": write_key(folder / "client.key", client_key),
    }


class Mosquitto:
    """One Mosquitto process with a plain listener and, with ``tls=True``, a mutual-TLS one."""

    def __init__(
        self,
        tmp_path: Path,
        *,
        tls: bool = False,
        persistence: bool = False,
        extra_config: str = "",
        name: str = "mosquitto",
        users: dict[str, str] | None = None,
    ) -> None:
        self.folder = tmp_path / name
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.tls = tls
        self.tls_port: int | None = free_port() if tls else None
        self.persistence = persistence
        self.extra_config = extra_config
        self.config_file = self.folder / "mosquitto.conf"
        self.log_file = self.folder / "mosquitto.log"
        self.pki: dict[str, Path] = make_pki(self.folder / "pki") if tls else {}
        self.users = dict(users or {})
        self.password_file = self.folder / "passwords"
        if self.users:
            self.password_file.write_text("", encoding="utf-8")
            for user, password in self.users.items():
                subprocess.run(
                    [MOSQUITTO_PASSWD, "-b", str(self.password_file), user, password],
                    check=True,
                    capture_output=True,
                    timeout=30,
                )
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._write_config()

    # Paths of the test PKI (TLS only).
    @property
    def ca_file(self) -> Path:
        """The CA that signed the broker and the client certificate."""
        return self.pki["ca_file"]

    @property
    def client_cert(self) -> Path:
        """A client certificate the TLS listener accepts."""
        return self.pki["client_cert"]

    @property
    def client_key(self) -> Path:
        """The client certificate's private key."""
        return self.pki["client_key"]

    @property
    def pid(self) -> int | None:
        """The broker's process id while it runs."""
        return self.process.pid if self.process is not None else None

    def _write_config(self) -> None:
        lines = [
            # As root Mosquitto drops to the `mosquitto` user, which cannot read files under
            # a 0700 pytest folder; staying root is harmless for a test broker.
            "user root" if os.geteuid() == 0 else "",
            "allow_anonymous false" if self.users else "allow_anonymous true",
            f"password_file {self.password_file}" if self.users else "",
            "max_queued_messages 0",
            "max_inflight_messages 0",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_timestamp true",
        ]
        if self.persistence:
            lines += ["persistence true", f"persistence_location {self.folder}/"]
        lines += [f"listener {self.port} 127.0.0.1"]
        if self.tls:
            lines += [
                f"listener {self.tls_port} 127.0.0.1",
                f"cafile {self.pki['ca_file']}",
                f"certfile {self.pki['server_cert']}",
                f"keyfile {self.pki['server_key']}",
                "require_certificate true",
            ]
        if self.extra_config:
            lines.append(self.extra_config)
        self.config_file.write_text("\n".join(x for x in lines if x) + "\n", encoding="utf-8")

    def start(self) -> Mosquitto:
        """Start the broker and wait until every listener accepts connections."""
        if self.process is not None and self.process.poll() is None:
            return self
        self._log = self.log_file.open("ab")
        self.process = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.config_file)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        ports = [self.port] + ([self.tls_port] if self.tls_port else [])
        for port in ports:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"mosquitto exited: {self.log_file.read_text()[-2000:]}")
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        self.kill()
                        raise TimeoutError(f"mosquitto did not listen on {port}") from None
                    time.sleep(0.02)
        return self

    def _end(self, sig: signal.Signals) -> None:
        proc = self.process
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def stop(self) -> None:
        """Stop the broker (SIGTERM), waiting for it to exit."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """Kill the broker (SIGKILL), like a crash."""
        self._end(signal.SIGKILL)

    def restart(self) -> Mosquitto:
        """Stop and start again on the same ports."""
        self.stop()
        return self.start()

    def log(self) -> str:
        """The broker's log so far (for assertion messages)."""
        try:
            return self.log_file.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.kill()
