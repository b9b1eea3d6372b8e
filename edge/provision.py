"""`kiosk-edge provision` / `scripts/provision`: turn a fresh Pi (or a mounted image) into a kiosk.

Everything is planned first: arguments and existing files are validated and every file's
desired content and mode computed in memory, so bad input is reported before anything is
written. Applying the plan writes only files whose content or mode differs (a second run
changes nothing), atomically, secrets 0600 in a root-only directory; ``--dry-run`` prints
the plan with a diff of each text file instead.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import ipaddress
import os
import re
import secrets
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from edge.config import ConfigError, parse_config
from edge.config_doc import toml_literal

# Where the repository's installable files are (firmware_config/, systemd/).
REPO_ROOT: Final = Path(__file__).resolve().parent.parent
FIRMWARE_DIR: Final = REPO_ROOT / "firmware_config"
SYSTEMD_SRC: Final = REPO_ROOT / "systemd"
# The venv path written in the shipped units; replaced by the real one at install time.
UNIT_VENV: Final = "/opt/kiosk-edge/.venv"
UNIT_KIOSK_URL: Final = "http://127.0.0.1:8080/"

CONFIG_DIR: Final = Path("etc/kiosk-edge")
CREDENTIALS_DIR: Final = CONFIG_DIR / "credentials"
CONFIG_FILE: Final = CONFIG_DIR / "edge.toml"
CSR_FILE: Final = CONFIG_DIR / "mqtt-client.csr"
CERT_FILE: Final = CONFIG_DIR / "mqtt-client.crt"
CA_FILE: Final = CONFIG_DIR / "ca.crt"
KEY_CREDENTIAL: Final = "mqtt_client_key"
ADMIN_CREDENTIAL: Final = "admin_password"
# The store-wide identity salt (edge.config.SECRET_SOURCES names the credential); loaded by a
# drop-in written only with it, since LoadCredential= of a missing file stops the unit.
SALT_CREDENTIAL: Final = "identity_salt"
SALT_DROPIN: Final = Path("etc/systemd/system/kiosk-edge.service.d/identity-salt.conf")
# A salt shorter than this is guessable: every loyalty number could be hashed and matched.
MIN_SALT_CHARS: Final = 16
# The daemon reads its key where systemd's LoadCredential= puts it.
SERVICE_KEY_PATH: Final = f"/run/credentials/kiosk-edge.service/{KEY_CREDENTIAL}"
BOOT_DIR: Final = Path("boot/firmware")
BLOCK_BEGIN: Final = "# BEGIN kiosk-edge"
BLOCK_END: Final = "# END kiosk-edge"
UNITS: Final = ("kiosk-edge.service", "kiosk-browser.service")
# Both units start with the machine (Raspberry Pi OS Lite boots to multi-user.target).
WANTS_DIR: Final = Path("etc/systemd/system/multi-user.target.wants")
ROTATIONS: Final = (0, 90, 180, 270)
# What kiosk-browser.service runs (Debian packages cage and chromium).
KIOSK_PROGRAMS: Final = ("/usr/bin/cage", "/usr/bin/chromium")
DEFAULT_DISPLAY_MODE: Final = "1920x1080@60D"
MQTT_PORTS: Final = {"mqtt": 1883, "mqtts": 8883}
# kiosk-edge.service sets ProtectHome=yes: code under these is invisible to the daemon, which
# then fails to start (status 203/EXEC or ModuleNotFoundError).
HIDDEN_FROM_SERVICE: Final = (Path("/home"), Path("/root"), Path("/run/user"))
# 12 random bytes (16 URL-safe characters): a password store IT types once, strong against guessing.
ADMIN_PASSWORD_BYTES: Final = 12


class ProvisionError(ValueError):
    """Bad arguments or an unusable existing file: one sentence naming the problem and the fix."""


@dataclass(frozen=True)
class Request:
    """What store IT asked for."""

    store: str
    device: str
    broker: str
    locale: str = "fr_FR"
    printer: str | None = None
    root: Path = Path("/")
    dry_run: bool = False
    cert: Path | None = None
    ca: Path | None = None
    rotate: int = 0
    display_mode: str = DEFAULT_DISPLAY_MODE
    venv: Path = Path(sys.prefix)
    salt_file: Path | None = None
    base_config: Path | None = None  # a store-wide template merged under the kiosk's own file


@dataclass(frozen=True)
class Broker:
    """A parsed broker URL."""

    host: str
    port: int
    tls: bool


@dataclass
class Action:
    """One file (or link) as it should be."""

    path: Path  # relative to the root
    content: bytes | None = None  # None: a symlink
    mode: int = 0o644
    link: str = ""
    secret: bool = False  # never printed or diffed
    note: str = ""  # said once when the file is created (e.g. the generated password)


@dataclass
class Plan:
    """Every action, plus messages for store IT."""

    actions: list[Action] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def parse_broker_url(url: str) -> Broker:
    """mqtt://host[:port] or mqtts://host[:port] (TLS)."""
    parts = urlsplit(url)
    if parts.scheme not in MQTT_PORTS:
        raise ProvisionError(
            f"--broker {url!r} must start with mqtt:// or mqtts:// (e.g. mqtts://broker.example:8883)"
        )
    try:
        port = parts.port or MQTT_PORTS[parts.scheme]
    except ValueError:
        raise ProvisionError(f"--broker {url!r} has an invalid port; use 1-65535") from None
    host = parts.hostname or ""
    if not host or parts.path not in ("", "/") or parts.query:
        raise ProvisionError(f"--broker {url!r} must be just a scheme, a host and an optional port")
    if not re.fullmatch(r"[A-Za-z0-9.-]+", host):
        with contextlib.suppress(ValueError):
            ipaddress.ip_address(host)
            return Broker(host, port, parts.scheme == "mqtts")
        raise ProvisionError(f"--broker host {host!r} is not a valid host name or address")
    return Broker(host, port, parts.scheme == "mqtts")


def check_printer_url(url: str) -> None:
    """usb://VID:PID, tcp://host[:port], serial:///dev/..., file:///path (the printer's parser)."""
    from edge.takeaway.printer_url import PrinterUrlError, parse_printer_url

    try:
        parse_printer_url(url)
    except PrinterUrlError as exc:
        raise ProvisionError(f"--printer {exc}") from None


def render_toml(data: dict[str, Any]) -> str:
    """A TOML document from nested dicts: scalars first, then sub-tables."""
    lines: list[str] = []

    def table(prefix: str, values: dict[str, Any]) -> None:
        scalars = {k: v for k, v in values.items() if not isinstance(v, dict)}
        tables = {k: v for k, v in values.items() if isinstance(v, dict)}
        if prefix and scalars:
            lines.append(f"[{prefix}]")
        lines.extend(f"{k} = {toml_literal(v)}" for k, v in scalars.items())
        if prefix and scalars:
            lines.append("")
        for key, sub in tables.items():
            table(f"{prefix}.{key}" if prefix else key, sub)

    table("", data)
    return "\n".join(lines).rstrip("\n") + "\n"


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


CONFIG_HEADER: Final = """\
# kiosk-edge configuration, written by `kiosk-edge provision` (rerun it to change the
# provisioned keys; other keys you add are kept). Every key is documented in
# firmware_config/edge.toml; secrets live in /etc/kiosk-edge/credentials (root only).
"""


def _config_action(req: Request, broker: Broker, root: Path) -> Action:
    path = root / CONFIG_FILE
    existing: dict[str, Any] = {}
    if req.base_config is not None:
        try:
            existing = tomllib.loads(req.base_config.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ProvisionError(
                f"--config {req.base_config} cannot be read ({exc}); give a valid edge.toml"
            ) from None
    if path.exists():
        try:
            existing = _merge(existing, tomllib.loads(path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ProvisionError(
                f"the existing {path} cannot be read ({exc}); fix or remove it and run again"
            ) from None
    wanted: dict[str, Any] = {
        "device": {"store_id": req.store, "device_id": req.device, "locale": req.locale},
        "mqtt": {"enabled": True, "host": broker.host, "port": broker.port},
    }
    if broker.tls:
        tls: dict[str, Any] = {
            "enabled": True,
            "cert_file": f"/{CERT_FILE}",
            "key_file": SERVICE_KEY_PATH,
        }
        if req.ca is not None:
            tls["ca_file"] = f"/{CA_FILE}"
        wanted["mqtt"]["tls"] = tls
    elif isinstance(existing.get("mqtt", {}).get("tls"), dict):
        wanted["mqtt"]["tls"] = {"enabled": False}  # the broker URL no longer asks for TLS
    if req.printer:
        wanted["printer"] = {"enabled": True, "url": req.printer}
    merged = _merge(existing, wanted)
    try:
        parse_config(merged)
    except ConfigError as exc:
        first = exc.problems[0]
        arg = {
            "device.store_id": "--store",
            "device.device_id": "--device",
            "device.locale": "--locale",
        }.get(first.key)
        if arg:
            raise ProvisionError(f"{arg}: {first.message}") from None
        raise ProvisionError(
            f"{path} would be invalid ({first}); fix that key and run again"
        ) from None
    return Action(CONFIG_FILE, (CONFIG_HEADER + "\n" + render_toml(merged)).encode(), 0o644)


def _key_and_csr(req: Request, root: Path, plan: Plan) -> Any:
    """The device key (kept if present) and a CSR for it (kept if it still fits)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key_path = root / CREDENTIALS_DIR / KEY_CREDENTIAL
    key: Any
    if key_path.exists():
        try:
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as exc:
            raise ProvisionError(
                f"the existing device key {key_path} is unreadable ({exc}); move it away to "
                "generate a new one"
            ) from None
        key_pem = key_path.read_bytes()
    else:
        # P-256: small, fast on a Pi, accepted by every MQTT broker's TLS stack.
        key = ec.generate_private_key(ec.SECP256R1())
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    plan.actions.append(Action(CREDENTIALS_DIR / KEY_CREDENTIAL, key_pem, 0o600, secret=True))
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, req.store),
            x509.NameAttribute(NameOID.COMMON_NAME, f"kiosk-edge-{req.store}-{req.device}"),
        ]
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    csr_path = root / CSR_FILE
    csr_pem: bytes | None = None
    if csr_path.exists():
        with contextlib.suppress(OSError, ValueError):
            old = x509.load_pem_x509_csr(csr_path.read_bytes())
            same_key = (
                old.public_key().public_bytes(
                    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
                )
                == public
            )
            if same_key and old.subject == subject:
                csr_pem = csr_path.read_bytes()
    if csr_pem is None:
        csr = (
            x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
        )
        csr_pem = csr.public_bytes(serialization.Encoding.PEM)
    plan.actions.append(
        Action(
            CSR_FILE,
            csr_pem,
            0o644,
            note=f"send /{CSR_FILE} to central to get the MQTT client certificate signed",
        )
    )
    return key


def _certificates(req: Request, key: Any, plan: Plan) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    if req.cert is not None:
        try:
            data = req.cert.read_bytes()
            cert = x509.load_pem_x509_certificate(data)
        except (OSError, ValueError) as exc:
            raise ProvisionError(
                f"--cert {req.cert} is not a readable PEM certificate ({exc})"
            ) from None
        fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        if cert.public_key().public_bytes(*fmt) != key.public_key().public_bytes(*fmt):
            raise ProvisionError(
                f"--cert {req.cert} was not issued for this device's key; have central sign "
                f"/{CSR_FILE} and pass that certificate"
            )
        plan.actions.append(Action(CERT_FILE, data, 0o644))
    if req.ca is not None:
        try:
            data = req.ca.read_bytes()
            x509.load_pem_x509_certificates(data)
        except (OSError, ValueError) as exc:
            raise ProvisionError(
                f"--ca {req.ca} is not a readable PEM certificate ({exc})"
            ) from None
        plan.actions.append(Action(CA_FILE, data, 0o644))


def _admin_password(root: Path, plan: Plan) -> None:
    from werkzeug.security import generate_password_hash

    path = root / CREDENTIALS_DIR / ADMIN_CREDENTIAL
    if path.exists():
        plan.actions.append(
            Action(CREDENTIALS_DIR / ADMIN_CREDENTIAL, path.read_bytes(), 0o600, secret=True)
        )
        return
    password = secrets.token_urlsafe(ADMIN_PASSWORD_BYTES)
    plan.actions.append(
        Action(
            CREDENTIALS_DIR / ADMIN_CREDENTIAL,
            (generate_password_hash(password) + "\n").encode(),
            0o600,
            secret=True,
            note=f"/admin password (shown only now; stored hashed): {password}",
        )
    )


def read_salt(path: Path) -> str:
    """The store's identity salt from a file (one line); ProvisionError naming the fix."""
    try:
        salt = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ProvisionError(f"--salt-file {path} cannot be read ({exc})") from None
    if len(salt) < MIN_SALT_CHARS or any(ch.isspace() for ch in salt):
        raise ProvisionError(
            f"--salt-file {path} must hold one line of at least {MIN_SALT_CHARS} characters "
            "without spaces: the store's identity salt as central issued it"
        )
    return salt


def _identity_salt(req: Request, plan: Plan) -> None:
    """Install the store's salt so this kiosk's hashes match central's shopper profiles."""
    path = req.root / CREDENTIALS_DIR / SALT_CREDENTIAL
    if req.salt_file is not None:
        content = (read_salt(req.salt_file) + "\n").encode()
    elif path.exists():
        content = path.read_bytes()  # installed earlier: kept
    else:
        plan.notes.append(
            "no --salt-file: this kiosk hashes identifiers with its own random salt, so its "
            "loyalty and phone hashes match neither central's shopper profiles nor the store's "
            "other kiosks; install the store's salt with --salt-file FILE"
        )
        return
    plan.actions.append(Action(CREDENTIALS_DIR / SALT_CREDENTIAL, content, 0o600, secret=True))
    dropin = (
        "# Written by kiosk-edge provision: the store's identity salt as a systemd credential.\n"
        "[Service]\n"
        f"LoadCredential={SALT_CREDENTIAL}:/{CREDENTIALS_DIR / SALT_CREDENTIAL}\n"
    )
    plan.actions.append(Action(SALT_DROPIN, dropin.encode()))


def merge_block(existing: str, block: str) -> str:
    """config.txt with our BEGIN/END block replaced (or appended)."""
    pattern = re.compile(re.escape(BLOCK_BEGIN) + r".*?" + re.escape(BLOCK_END) + r"\n?", re.S)
    if pattern.search(existing):
        return pattern.sub(lambda _m: block, existing, count=1)
    sep = "" if not existing or existing.endswith("\n") else "\n"
    return existing + sep + ("\n" if existing else "") + block


def merge_cmdline(existing: str, additions: str) -> str:
    """cmdline.txt (one line) with each addition replacing a token with the same key."""
    tokens = existing.split()
    for add in additions.split():
        key = add.split("=", 1)[0]
        if key == "video":  # one video= per connector
            key = add.split(":", 1)[0]
        matches = [
            i
            for i, t in enumerate(tokens)
            if t.split("=", 1)[0] == key or t.split(":", 1)[0] == key
        ]
        if matches:
            tokens[matches[0]] = add
            for extra in reversed(matches[1:]):
                del tokens[extra]
        else:
            tokens.append(add)
    return " ".join(tokens) + "\n"


def _boot_actions(req: Request, root: Path, plan: Plan) -> None:
    template = (FIRMWARE_DIR / "config.txt").read_text(encoding="utf-8")
    block_match = re.search(
        re.escape(BLOCK_BEGIN) + r".*?" + re.escape(BLOCK_END) + r"\n", template, re.S
    )
    assert block_match is not None, "firmware_config/config.txt lost its BEGIN/END markers"
    config_txt = root / BOOT_DIR / "config.txt"
    current = config_txt.read_text(encoding="utf-8") if config_txt.exists() else ""
    plan.actions.append(
        Action(BOOT_DIR / "config.txt", merge_block(current, block_match.group(0)).encode())
    )
    cmdline = root / BOOT_DIR / "cmdline.txt"
    additions = (
        (FIRMWARE_DIR / "cmdline.txt")
        .read_text(encoding="utf-8")
        .replace("@MODE@", req.display_mode)
        .replace("@ROTATE@", str(req.rotate))
    )
    if cmdline.exists():
        plan.actions.append(
            Action(
                BOOT_DIR / "cmdline.txt",
                merge_cmdline(cmdline.read_text(encoding="utf-8"), additions).encode(),
            )
        )
    else:
        plan.notes.append(f"no /{BOOT_DIR}/cmdline.txt here: screen blanking and rotation not set")


def _static_actions(req: Request, root: Path, config_text: str, plan: Plan) -> None:
    kiosk = tomllib.loads(config_text).get("kiosk", {})
    url = f"http://{kiosk.get('host', '127.0.0.1')}:{kiosk.get('port', 8080)}/"
    for unit in UNITS:
        text = (SYSTEMD_SRC / unit).read_text(encoding="utf-8").replace(UNIT_VENV, str(req.venv))
        text = text.replace(f"KIOSK_URL={UNIT_KIOSK_URL}", f"KIOSK_URL={url}")
        plan.actions.append(Action(Path("etc/systemd/system") / unit, text.encode()))
        plan.actions.append(Action(WANTS_DIR / unit, link=f"/etc/systemd/system/{unit}"))
    copies = [
        (SYSTEMD_SRC / "sysusers.d/kiosk-edge.conf", "etc/sysusers.d/kiosk-edge.conf"),
        (SYSTEMD_SRC / "tmpfiles.d/kiosk-edge.conf", "etc/tmpfiles.d/kiosk-edge.conf"),
        (FIRMWARE_DIR / "udev/70-kiosk-edge.rules", "etc/udev/rules.d/70-kiosk-edge.rules"),
        (
            FIRMWARE_DIR / "systemd/watchdog.conf",
            "etc/systemd/system.conf.d/kiosk-edge-watchdog.conf",
        ),
        (FIRMWARE_DIR / "systemd/journald.conf", "etc/systemd/journald.conf.d/kiosk-edge.conf"),
    ]
    for src, dest in copies:
        plan.actions.append(Action(Path(dest), src.read_bytes()))
    main_conf = root / "etc/bluetooth/main.conf"
    ours = (FIRMWARE_DIR / "bluetooth/main.conf").read_bytes()
    backup = Path("etc/bluetooth/main.conf.kiosk-edge-orig")
    if main_conf.exists() and main_conf.read_bytes() != ours and not (root / backup).exists():
        plan.actions.append(Action(backup, main_conf.read_bytes()))
    plan.actions.append(Action(Path("etc/bluetooth/main.conf"), ours))


def hidden_install_paths(venv: Path, code: Path = REPO_ROOT) -> list[Path]:
    """The venv or the code (an editable install's checkout) where the service cannot see."""
    return [
        path
        for path in (venv, code)
        if any(path.resolve().is_relative_to(hidden) for hidden in HIDDEN_FROM_SERVICE)
    ]


def make_plan(req: Request) -> Plan:
    """Validate everything and compute every file; raises ProvisionError before any write."""
    if not req.root.is_dir():
        raise ProvisionError(f"--root {req.root} is not a directory; mount the image there first")
    hidden = hidden_install_paths(req.venv)
    hidden_msg = (
        f"the service cannot see {hidden[0]} (kiosk-edge.service has ProtectHome=yes, which "
        "hides /home and /root); install kiosk-edge under /opt/kiosk-edge and provision from there"
        if hidden
        else ""
    )
    if hidden and req.root.resolve() == Path("/"):
        raise ProvisionError(hidden_msg)
    if not req.dry_run and not os.access(req.root, os.W_OK):
        raise ProvisionError(f"cannot write to {req.root}; run provision as root (sudo)")
    if req.rotate not in ROTATIONS:
        raise ProvisionError(f"--rotate {req.rotate} is not allowed; use 0, 90, 180 or 270")
    if not re.fullmatch(r"\d{3,4}x\d{3,4}(@\d{2,3})?D?", req.display_mode):
        raise ProvisionError(f"--display-mode {req.display_mode!r} must look like 1920x1080@60D")
    broker = parse_broker_url(req.broker)
    if req.printer is not None:
        check_printer_url(req.printer)
    for name, path in (("--cert", req.cert), ("--ca", req.ca), ("--salt-file", req.salt_file)):
        if path is not None and not path.is_file():
            raise ProvisionError(f"{name} {path} does not exist")
    plan = Plan()
    config = _config_action(req, broker, req.root)
    plan.actions.append(config)
    key = _key_and_csr(req, req.root, plan)
    _certificates(req, key, plan)
    _admin_password(req.root, plan)
    _identity_salt(req, plan)
    _static_actions(req, req.root, config.content.decode() if config.content else "", plan)
    _boot_actions(req, req.root, plan)
    if hidden:  # an image: the same paths inside it are hidden from the service too
        plan.notes.append(hidden_msg)
    missing = [p for p in KIOSK_PROGRAMS if not (req.root / p.lstrip("/")).exists()]
    if missing:
        names = " ".join(Path(p).name for p in missing)
        plan.notes.append(f"the kiosk screen needs {names}: apt-get install {names}")
    if broker.tls and req.cert is None and not (req.root / CERT_FILE).exists():
        plan.notes.append(
            f"no client certificate yet: install central's signed certificate with --cert FILE "
            f"(or copy it to /{CERT_FILE})"
        )
    return plan


@dataclass
class Outcome:
    """What applying (or dry-running) a plan did, line by line."""

    lines: list[str] = field(default_factory=list)
    changed: int = 0


def _current_state(path: Path) -> tuple[bytes | None, int | None, str | None]:
    if path.is_symlink():
        return None, None, os.readlink(path)
    if path.is_file():
        return path.read_bytes(), path.stat().st_mode & 0o7777, None
    return None, None, None


def _ensure_dir(path: Path, mode: int | None, dry_run: bool) -> None:
    if dry_run:
        return
    path.mkdir(parents=True, exist_ok=True)
    if mode is not None and path.stat().st_mode & 0o777 != mode:
        path.chmod(mode)


def _write_atomic(path: Path, content: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.kiosk-edge-tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, content)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, mode)  # the umask may have narrowed it
    os.replace(tmp, path)


def apply_plan(plan: Plan, root: Path, dry_run: bool = False) -> Outcome:
    """Write what differs; report each file as created, updated or unchanged."""
    out = Outcome()
    verb = "would " if dry_run else ""
    _ensure_dir(root / CONFIG_DIR, 0o755, dry_run)
    cred_dir = root / CREDENTIALS_DIR
    if not cred_dir.is_dir() or cred_dir.stat().st_mode & 0o777 != 0o700:
        out.lines.append(
            f"{verb}{'create' if not cred_dir.exists() else 'secure'} /{CREDENTIALS_DIR}/ (0700)"
        )
        out.changed += 1
        _ensure_dir(cred_dir, 0o700, dry_run)
    for action in plan.actions:
        target = root / action.path
        shown = f"/{action.path}"
        content, mode, link = _current_state(target)
        if action.content is None:  # symlink
            if link == action.link:
                out.lines.append(f"unchanged {shown}")
                continue
            out.lines.append(f"{verb}enable {shown} -> {action.link}")
            out.changed += 1
            if not dry_run:
                _ensure_dir(target.parent, None, dry_run)
                if target.is_symlink() or target.exists():
                    target.unlink()
                target.symlink_to(action.link)
            continue
        if content == action.content and mode == action.mode:
            out.lines.append(f"unchanged {shown}")
            continue
        if content is None:
            what = f"{verb}create {shown} ({action.mode:04o})"
        elif content == action.content:
            what = f"{verb}chmod {shown} {mode:04o} -> {action.mode:04o}"
        else:
            what = f"{verb}update {shown} ({action.mode:04o})"
        out.lines.append(what)
        out.changed += 1
        if dry_run and content is not None and content != action.content and not action.secret:
            diff = difflib.unified_diff(
                content.decode("utf-8", "replace").splitlines(),
                action.content.decode("utf-8", "replace").splitlines(),
                f"{shown} (now)",
                f"{shown} (provisioned)",
                lineterm="",
            )
            out.lines.extend("    " + line for line in diff)
        if content is None and action.note:
            secret_note = action.secret and dry_run
            out.lines.append(
                "    a new secret would be generated" if secret_note else f"    {action.note}"
            )
        if not dry_run:
            _ensure_dir(target.parent, None, dry_run)
            _write_atomic(target, action.content, action.mode)
    return out


def post_install(root: Path, run: Callable[[list[str]], None] | None = None) -> list[str]:
    """On the live system: create users and directories, reload systemd and udev."""
    if root.resolve() != Path("/"):
        return [
            "users, directories and udev rules take effect at the image's first boot "
            "(systemd-sysusers, systemd-tmpfiles)"
        ]
    runner = run or (lambda argv: subprocess.run(argv, check=False, timeout=120))
    lines = []
    steps = [
        ["systemd-sysusers"],
        ["systemd-tmpfiles", "--create", "/etc/tmpfiles.d/kiosk-edge.conf"],
        ["systemctl", "daemon-reload"],
        ["udevadm", "control", "--reload-rules"],
        ["udevadm", "trigger"],
    ]
    for argv in steps:
        if shutil.which(argv[0]):
            runner(argv)
            lines.append("ran " + " ".join(argv))
    lines.append("reboot to apply the boot configuration and start the kiosk")
    return lines


def provision(req: Request) -> Outcome:
    """Plan, then apply (or show) the plan; raises ProvisionError before writing on bad input."""
    plan = make_plan(req)
    outcome = apply_plan(plan, req.root, req.dry_run)
    outcome.lines.extend(f"note: {n}" for n in plan.notes)
    if outcome.changed and not req.dry_run:
        outcome.lines.extend(post_install(req.root))
    if not outcome.changed:
        outcome.lines.append("nothing to change: this kiosk is provisioned as asked")
    elif req.dry_run:
        outcome.lines.append(f"dry run: {outcome.changed} change(s) not made")
    return outcome


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The provision options, shared by `kiosk-edge provision` and scripts/provision."""
    parser.add_argument("--store", required=True, help="store id (letters, digits, . _ -)")
    parser.add_argument("--device", required=True, help="this kiosk's id within the store")
    parser.add_argument(
        "--broker", required=True, metavar="URL", help="mqtts://host[:port] or mqtt://host[:port]"
    )
    parser.add_argument(
        "--locale", default="fr_FR", metavar="LL_CC", help="UI and receipt locale (default fr_FR)"
    )
    parser.add_argument(
        "--printer", metavar="URL", help="usb://VID:PID, tcp://host:9100, serial:///dev/ttyUSB0"
    )
    parser.add_argument(
        "--cert", type=Path, metavar="FILE", help="install central's signed client certificate"
    )
    parser.add_argument(
        "--ca", type=Path, metavar="FILE", help="install the CA that signed the broker"
    )
    parser.add_argument(
        "--salt-file",
        type=Path,
        metavar="FILE",
        help="install the store's identity salt (from central) so hashes match its profiles",
    )
    parser.add_argument("--rotate", type=int, default=0, help="screen rotation: 0, 90, 180 or 270")
    parser.add_argument(
        "--display-mode", default=DEFAULT_DISPLAY_MODE, help="HDMI mode (default 1920x1080@60D)"
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=Path("/"),
        metavar="DIR",
        help="install into DIR (a mounted image)",
    )
    parser.add_argument(
        "--venv",
        type=Path,
        default=Path(sys.prefix),
        metavar="DIR",
        help="the installed virtual environment",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="show the changes without making them"
    )
    parser.add_argument(
        "--config",
        type=Path,
        metavar="PATH",
        help=(
            "a store-wide edge.toml to start from; the kiosk's existing file and the options "
            "above take precedence (the result is written to /etc/kiosk-edge/edge.toml)"
        ),
    )


def run_from_args(args: argparse.Namespace) -> int:
    """Run provisioning from parsed arguments: 0 done, 2 bad input (nothing written)."""
    req = Request(
        store=args.store,
        device=args.device,
        broker=args.broker,
        locale=args.locale,
        printer=args.printer,
        root=args.root,
        dry_run=args.dry_run,
        cert=args.cert,
        ca=args.ca,
        rotate=args.rotate,
        display_mode=args.display_mode,
        venv=args.venv,
        salt_file=args.salt_file,
        base_config=args.config,
    )
    try:
        outcome = provision(req)
    except ProvisionError as exc:
        print(f"kiosk-edge provision: {exc}", file=sys.stderr)
        return 2
    except PermissionError as exc:
        print(
            f"kiosk-edge provision: permission denied ({exc.filename}); run it as root",
            file=sys.stderr,
        )
        return 2
    print("\n".join(outcome.lines))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of scripts/provision."""
    parser = argparse.ArgumentParser(
        prog="provision",
        description="Provision this Raspberry Pi (or an image) as a kiosk-edge kiosk.",
    )
    add_arguments(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code) if isinstance(exc.code, int) else 2
    return run_from_args(args)


if __name__ == "__main__":
    sys.exit(main())
