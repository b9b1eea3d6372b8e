"""One validated configuration tree for the whole appliance.

A kiosk is configured by one TOML file (``/etc/kiosk-edge/edge.toml`` by default). Every field
has a default, a description and bounds; unknown keys are errors so a typo never silently
falls back to a default. Secrets (MQTT, SMTP and admin passwords, the identity salt) may come
from environment variables or systemd credentials instead of the file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

DEFAULT_CONFIG_PATH: Final = Path("/etc/kiosk-edge/edge.toml")
# The environment variable that names the config file when --config is not given.
CONFIG_ENV: Final = "KIOSK_EDGE_CONFIG"

# Secrets that may be supplied outside the file: (section, key) -> (env variable, credential name).
# systemd's LoadCredential= puts files under $CREDENTIALS_DIRECTORY; the env var wins over it.
SECRET_SOURCES: Final[dict[tuple[str, str], tuple[str, str]]] = {
    ("mqtt", "password"): ("KIOSK_EDGE_MQTT_PASSWORD", "mqtt_password"),
    ("mail", "password"): ("KIOSK_EDGE_SMTP_PASSWORD", "smtp_password"),
    ("kiosk", "admin_password"): ("KIOSK_EDGE_ADMIN_PASSWORD", "admin_password"),
    ("device", "identity_salt"): ("KIOSK_EDGE_IDENTITY_SALT", "identity_salt"),
}

Port = Annotated[int, Field(ge=1, le=65535)]
Identifier = Annotated[
    str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
]


class _Section(BaseModel):
    """Base for every section: unknown keys are errors, values are checked on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


class DeviceConfig(_Section):
    """Who this kiosk is and where it keeps its data."""

    store_id: Identifier = Field(
        "demo-store", description="Store identifier used in MQTT topics and event sources."
    )
    device_id: Identifier = Field(
        "kiosk-1", description="This kiosk's identifier, unique within the store."
    )
    locale: str = Field(
        "fr_FR",
        pattern=r"^[a-z]{2}(_[A-Z]{2})?$",
        description="Default UI and receipt locale, e.g. fr_FR or en_GB.",
    )
    data_dir: Path = Field(
        Path("/var/lib/kiosk-edge"),
        description="Directory for the SQLite databases (outbox, catalog, queues).",
    )
    identity_salt: str = Field(
        "",
        max_length=256,
        description=(
            "Per-store secret salt for hashing MAC addresses, phone tokens and loyalty numbers. "
            "Empty: a random salt is generated and kept in data_dir (hashes then differ per kiosk)."
        ),
    )


class BeaconsConfig(_Section):
    """BLE beacon scanning and proximity."""

    enabled: bool = Field(True, description="Scan for BLE beacons.")
    adapter: str = Field(
        "hci0", pattern=r"^hci[0-9]{1,2}$", description="Bluetooth adapter to scan with."
    )
    scanning_mode: Literal["passive", "active"] = Field(
        "passive", description="Passive scanning when the adapter supports it; active otherwise."
    )
    replay_file: Path | None = Field(
        None,
        description="Replay recorded advertisements (JSON lines) instead of the radio.",
    )
    replay_loop: bool = Field(True, description="Start the replay again when it ends.")
    ibeacon_uuids: list[str] = Field(
        default_factory=list,
        description="Store beacons' iBeacon proximity UUIDs (lower-case, dashed) to allow.",
    )
    app_uuids: list[str] = Field(
        default_factory=list,
        description="The store app's iBeacon UUIDs: shoppers' phones (hashed token).",
    )
    eddystone_namespaces: list[str] = Field(
        default_factory=list, description="Eddystone namespaces (20 hex digits) to allow."
    )
    altbeacon_ids: list[str] = Field(
        default_factory=list,
        description="AltBeacon ids (first 16 bytes, as a dashed UUID) to allow.",
    )
    path_loss_exponent: float = Field(
        2.2,
        ge=1.5,
        le=5.0,
        description="Log-distance path-loss exponent (2 free space, 3+ cluttered).",
    )
    immediate_m: float = Field(0.6, gt=0, le=5, description="Upper distance of the immediate zone.")
    near_m: float = Field(2.5, gt=0, le=20, description="Upper distance of the near zone.")
    hysteresis_m: float = Field(
        0.3, ge=0, le=5, description="Distance margin a zone change must cross, against flapping."
    )
    min_dwell_s: float = Field(
        2.0, ge=0, le=60, description="Seconds a new zone must hold before it is reported."
    )
    exit_after_s: float = Field(
        10.0, ge=1, le=600, description="Silence after which a transmitter has left."
    )
    telemetry_interval_s: float = Field(
        300.0, ge=1, le=86400, description="At most one telemetry event per beacon per interval."
    )

    @field_validator("ibeacon_uuids", "app_uuids", "altbeacon_ids")
    @classmethod
    def _uuids(cls, values: list[str]) -> list[str]:
        import uuid

        out = []
        for value in values:
            try:
                out.append(str(uuid.UUID(value.strip())))
            except ValueError:
                raise ValueError(
                    f"{value!r} is not a UUID; write it like f7826da6-4fa2-4e98-8024-bc5b71e0893e"
                ) from None
        return out

    @field_validator("eddystone_namespaces")
    @classmethod
    def _namespaces(cls, values: list[str]) -> list[str]:
        for value in values:
            if not re.fullmatch(r"[0-9A-Fa-f]{20}", value):
                raise ValueError(
                    f"{value!r} must be exactly 20 hex digits, like edd1ebeac04e5defa017"
                )
        return [v.lower() for v in values]

    @model_validator(mode="after")
    def _zones_do_not_overlap(self) -> BeaconsConfig:
        if self.near_m <= self.immediate_m + self.hysteresis_m:
            raise ValueError(
                f"beacons.near_m ({self.near_m}) must exceed immediate_m + hysteresis_m "
                f"({self.immediate_m} + {self.hysteresis_m}) or the zones overlap"
            )
        return self


class LoyaltyPattern(_Section):
    """One accepted loyalty-card number format."""

    prefix: str = Field("", pattern=r"^[0-9A-Za-z]*$", description="Required leading characters.")
    length: int = Field(13, ge=4, le=64, description="Exact number of characters.")
    check: Literal["gs1", "luhn", "none"] = Field(
        "gs1", description="Check digit algorithm: GS1 mod 10, Luhn, or none."
    )

    @model_validator(mode="after")
    def _can_match(self) -> LoyaltyPattern:
        # A pattern no card can satisfy would turn every loyalty scan away without a word.
        if len(self.prefix) >= self.length:
            raise ValueError(
                f"prefix {self.prefix!r} leaves no room for a number of length {self.length}; "
                "make length longer than the prefix"
            )
        if self.check != "none" and not self.prefix.isdigit() and self.prefix:
            raise ValueError(
                f"prefix {self.prefix!r} has letters but a {self.check} check digit needs digits "
                'only; use digits or check = "none"'
            )
        return self


class BarcodesConfig(_Section):
    """Camera and USB barcode scanners."""

    enabled: bool = Field(True, description="Read barcodes from the camera.")
    camera: str = Field(
        "0",
        description=(
            "Capture source: a V4L2 index or /dev/video path, a video file, an RTSP/HTTP URL "
            "or an image folder."
        ),
    )
    width: int = Field(640, ge=160, le=3840, description="Capture width in pixels.")
    height: int = Field(480, ge=120, le=2160, description="Capture height in pixels.")
    fps: float = Field(15.0, gt=0, le=120, description="Capture frame rate.")
    loop: bool = Field(False, description="Start a video file or image folder again when it ends.")
    symbologies: list[str] = Field(
        default_factory=lambda: ["ean13", "ean8", "upca", "code128", "qrcode"],
        description=(
            "Symbologies to decode: ean13, ean8, upca, upce, code128, qrcode, pdf417, datamatrix."
        ),
    )
    roi: list[float] = Field(
        default_factory=lambda: [0.0, 0.0, 1.0, 1.0],
        description="Region of the frame to search: x, y, width, height as fractions of it.",
    )
    use_zxing: bool = Field(
        True, description="Retry frames zbar cannot read with zxing-cpp (when installed)."
    )
    loyalty_patterns: list[LoyaltyPattern] = Field(
        default_factory=lambda: [LoyaltyPattern(prefix="29", length=13, check="gs1")],
        description="Accepted loyalty number formats; anything else valid as EAN/UPC is a product.",
    )
    duplicate_window_s: float = Field(
        3.0, ge=0, le=120, description="Repeated reads of one code within this window are one scan."
    )
    hid_enabled: bool = Field(False, description="Read USB keyboard-wedge scanners with evdev.")
    hid_device: str = Field(
        "",
        description="Scanner to grab: its input name, or vendor:product in hex (e.g. 05e0:1200).",
    )
    hid_layout: Literal["us", "fr"] = Field(
        "us", description="Keyboard layout the scanner emulates."
    )

    @field_validator("symbologies")
    @classmethod
    def _known_symbologies(cls, value: list[str]) -> list[str]:
        known = ("ean13", "ean8", "upca", "upce", "code128", "qrcode", "pdf417", "datamatrix")
        unknown = [v for v in value if v not in known]
        if unknown:
            raise ValueError(
                f"unknown symbology {', '.join(unknown)}; choose from {', '.join(known)}"
            )
        if not value:
            raise ValueError("give at least one symbology")
        return value

    @field_validator("roi")
    @classmethod
    def _valid_roi(cls, value: list[float]) -> list[float]:
        if len(value) != 4:
            raise ValueError("give four fractions: x, y, width, height, e.g. [0.0, 0.0, 1.0, 1.0]")
        x, y, w, h = value
        if not (0 <= x < 1 and 0 <= y < 1 and 0 < w <= 1 - x + 1e-9 and 0 < h <= 1 - y + 1e-9):
            raise ValueError("the region must lie inside the frame (fractions between 0 and 1)")
        return value


class TlsConfig(_Section):
    """TLS for the MQTT connection."""

    enabled: bool = Field(False, description="Connect with TLS.")
    ca_file: Path | None = Field(None, description="CA certificate(s) that signed the broker.")
    cert_file: Path | None = Field(None, description="Client certificate (mutual TLS).")
    key_file: Path | None = Field(None, description="Client private key (mutual TLS).")
    insecure_skip_verify: bool = Field(
        False, description="Do not check the broker's host name (testing only)."
    )

    @model_validator(mode="after")
    def _key_needs_certificate(self) -> TlsConfig:
        if self.key_file is not None and self.cert_file is None:
            raise ValueError("key_file is set without cert_file; give the client certificate too")
        return self


class MqttConfig(_Section):
    """The uplink to central."""

    enabled: bool = Field(True, description="Relay events to central over MQTT.")
    host: str = Field(
        "127.0.0.1",
        min_length=1,
        max_length=253,
        pattern=r"^[A-Za-z0-9._:-]+$",
        description="Broker host name, IPv4 or IPv6 address (no scheme, no port).",
    )
    port: Port = Field(1883, description="Broker port (8883 for TLS by convention).")
    protocol: Literal["5", "3.1.1"] = Field("5", description="MQTT protocol version.")
    client_id: str = Field(
        "", max_length=128, description="Client id; empty: kiosk-edge-{store}-{device}."
    )
    username: str = Field("", max_length=256, description="User name, if the broker wants one.")
    password: str = Field(
        "", max_length=1024, description="Password (better from the environment)."
    )
    keepalive_s: int = Field(30, ge=5, le=3600, description="MQTT keep-alive interval.")
    session_expiry_s: int = Field(
        3600, ge=0, le=604800, description="MQTT 5 session expiry interval."
    )
    max_inflight: int = Field(
        64, ge=1, le=65535, description="Messages handed to the client before acknowledgements."
    )
    reconnect_min_s: float = Field(1.0, gt=0, le=60, description="First reconnect delay.")
    reconnect_max_s: float = Field(60.0, gt=0, le=3600, description="Longest reconnect delay.")
    health_interval_s: float = Field(60.0, ge=5, le=3600, description="Health publish interval.")
    tls: TlsConfig = Field(default_factory=TlsConfig, description="TLS settings.")

    @model_validator(mode="after")
    def _backoff_order(self) -> MqttConfig:
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError(
                f"mqtt.reconnect_max_s ({self.reconnect_max_s}) must be at least "
                f"reconnect_min_s ({self.reconnect_min_s})"
            )
        return self


class OutboxConfig(_Section):
    """The durable queue between the event bus and MQTT."""

    max_rows: int = Field(1_000_000, ge=100, le=100_000_000, description="Most events kept.")
    max_bytes: int = Field(
        512 * 1024 * 1024, ge=1024 * 1024, description="Most payload bytes kept."
    )
    commit_interval_ms: float = Field(
        5.0, ge=0, le=1000, description="Events arriving within this window share one commit."
    )


class KioskConfig(_Section):
    """The kiosk web UI."""

    enabled: bool = Field(True, description="Serve the kiosk UI.")
    host: str = Field(
        "127.0.0.1", description="Address to serve on (keep 127.0.0.1: the browser is local)."
    )
    port: Port = Field(8080, description="Port to serve on.")
    threads: int = Field(8, ge=1, le=256, description="WSGI worker threads.")
    idle_timeout_s: float = Field(
        90.0, ge=10, le=3600, description="Idle time after which the kiosk forgets the shopper."
    )
    admin_password: str = Field(
        "", max_length=1024, description="Store IT password for /admin (or a pbkdf2 hash)."
    )
    catalog_file: Path | None = Field(
        None, description="Catalog (JSON or CSV) imported on first start when the store is empty."
    )
    compare_url_template: str = Field(
        "https://shop.example/compare?skus={skus}",
        description="Link to the comparison on the store's website; {skus} is replaced.",
    )

    @field_validator("compare_url_template")
    @classmethod
    def _has_skus(cls, value: str) -> str:
        if "{skus}" not in value:
            raise ValueError("must contain the placeholder {skus}")
        return value


class PrinterConfig(_Section):
    """The receipt printer."""

    enabled: bool = Field(True, description="Print take-away receipts.")
    url: str = Field(
        "file:///tmp/kiosk-edge-receipts.bin",
        description=(
            "usb://VID:PID, tcp://host:9100, serial:///dev/ttyUSB0?baudrate=19200 or file:///path."
        ),
    )
    columns: Literal[32, 42, 48] = Field(48, description="Characters per line (58 mm: 32).")
    profile: str = Field("default", description="python-escpos printer profile.")

    @field_validator("url")
    @classmethod
    def _printer_url(cls, value: str) -> str:
        # The printer's own parser (pure, cheap): config check refuses what it would refuse.
        from edge.takeaway.printer_url import parse_printer_url

        parse_printer_url(value)  # PrinterUrlError is a ValueError naming the expected form
        return value

    retry_interval_s: float = Field(5.0, ge=0.1, le=600, description="Retry delay on a fault.")
    store_name: str = Field(
        "", max_length=64, description="Name printed at the top of receipts; empty: store_id."
    )
    codepage: str = Field(
        "auto",
        pattern=r"^(auto|CP858|CP1252|ISO_8859-15|CP850|CP437)$",
        description="Character code page; auto: CP858, else CP1252, else ISO_8859-15 (French + €).",
    )
    qr: Literal["raster", "native"] = Field(
        "raster",
        description=(
            "QR code as a raster image (every model) or native GS ( k (most recent models)."
        ),
    )
    status_query: bool = Field(
        True,
        description=(
            "Ask the printer for its status (DLE EOT) before and after each job; turn off for "
            "models that never answer (network, USB and serial only)."
        ),
    )
    timeout_s: float = Field(3.0, ge=0.1, le=60, description="Connect, write and status timeout.")


class MailConfig(_Section):
    """E-mailing the comparison."""

    enabled: bool = Field(True, description="Offer e-mailing the comparison.")
    host: str = Field("127.0.0.1", description="SMTP server.")
    port: Port = Field(587, description="SMTP port.")
    security: Literal["starttls", "tls", "none"] = Field(
        "starttls", description="STARTTLS, implicit TLS, or none."
    )
    username: str = Field("", description="SMTP user, if the server wants one.")
    password: str = Field("", description="SMTP password (better from the environment).")
    sender: str = Field("kiosk@shop.example", description="From address.")
    timeout_s: float = Field(15.0, ge=1, le=300, description="SMTP timeout.")
    max_attempts: int = Field(20, ge=1, le=1000, description="Tries before a mail is dropped.")
    retry_interval_s: float = Field(
        30.0, ge=0.1, le=3600, description="First retry delay; doubles per try up to 30 minutes."
    )
    ca_file: Path | None = Field(None, description="CA for the SMTP server's certificate.")
    outbox_dir: Path | None = Field(
        None, description="Demo: write .eml files to this folder instead of sending."
    )

    @field_validator("username", "password")
    @classmethod
    def _ascii_login(cls, value: str) -> str:
        # smtplib sends AUTH PLAIN / LOGIN as ASCII: anything else could never log in.
        if not value.isascii():
            raise ValueError("must be ASCII (SMTP login cannot send accented letters)")
        return value

    @field_validator("sender")
    @classmethod
    def _sender_address(cls, value: str) -> str:
        if not re.fullmatch(r"[^@\s<>,;\"()\[\]\\]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+", value):
            raise ValueError("must be one plain e-mail address, like kiosk@shop.example")
        return value


class LoggingConfig(_Section):
    """Logging."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level.")
    format: Literal["auto", "json", "text"] = Field(
        "auto", description="auto: JSON under systemd's journal, text on a terminal."
    )


class Config(_Section):
    """The whole appliance configuration."""

    device: DeviceConfig = Field(default_factory=DeviceConfig, description="This kiosk.")
    beacons: BeaconsConfig = Field(default_factory=BeaconsConfig, description="BLE beacons.")
    barcodes: BarcodesConfig = Field(default_factory=BarcodesConfig, description="Barcodes.")
    mqtt: MqttConfig = Field(default_factory=MqttConfig, description="MQTT uplink.")
    outbox: OutboxConfig = Field(default_factory=OutboxConfig, description="Durable outbox.")
    kiosk: KioskConfig = Field(default_factory=KioskConfig, description="Kiosk UI.")
    printer: PrinterConfig = Field(default_factory=PrinterConfig, description="Receipt printer.")
    mail: MailConfig = Field(default_factory=MailConfig, description="E-mail.")
    logging: LoggingConfig = Field(default_factory=LoggingConfig, description="Logging.")

    def fingerprint(self) -> str:
        """A short hash of the effective configuration without secrets (for the birth message)."""
        data = redacted(self)
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ConfigProblem:
    """One problem in a configuration file, phrased for store IT."""

    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.key}: {self.message}" if self.key else self.message


class ConfigError(Exception):
    """The configuration file is unusable; ``problems`` lists every reason."""

    def __init__(self, path: Path | None, problems: list[ConfigProblem]) -> None:
        self.path = path
        self.problems = problems
        where = f"{path}: " if path else ""
        super().__init__(where + "; ".join(str(p) for p in problems))


def _describe_error(err: Any) -> ConfigProblem:
    """Turn one pydantic error into a line naming the key, the bad value and what is allowed."""
    key = ".".join(str(p) for p in err["loc"])
    kind = err["type"]
    value = err.get("input")
    if err["loc"] and str(err["loc"][-1]) in SECRET_KEYS:
        value = "<secret>"  # a problem is logged and shown on /admin: never the secret itself
    if kind == "extra_forbidden":
        return ConfigProblem(key, f"unknown key (value {value!r}); remove it or check the spelling")
    if kind in ("model_type", "dict_type"):
        return ConfigProblem(
            key, f"{value!r} is not a table; write [{key}] with its keys on the lines below it"
        )
    ctx = err.get("ctx") or {}
    if kind in ("less_than_equal", "greater_than_equal", "less_than", "greater_than"):
        bound = next(iter(ctx.values()), "?")
        words = {
            "less_than_equal": "at most",
            "greater_than_equal": "at least",
            "less_than": "less than",
            "greater_than": "greater than",
        }[kind]
        return ConfigProblem(key, f"{value!r} is out of range; allowed: {words} {bound}")
    if kind == "literal_error":
        return ConfigProblem(key, f"{value!r} is not allowed; allowed: {ctx.get('expected')}")
    if kind == "string_pattern_mismatch":
        return ConfigProblem(
            key, f"{value!r} has the wrong form; allowed: text matching {ctx.get('pattern')}"
        )
    msg = str(err["msg"]).removeprefix("Value error, ")
    return ConfigProblem(key, f"{value!r} is not allowed: {msg}")


def _secret_from_outside(section: str, key: str) -> str | None:
    env_name, cred_name = SECRET_SOURCES[(section, key)]
    if os.environ.get(env_name):
        return os.environ[env_name]
    cred_dir = os.environ.get("CREDENTIALS_DIRECTORY")
    if cred_dir:
        cred = Path(cred_dir) / cred_name
        if cred.is_file():
            try:
                return cred.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(
                    None,
                    [
                        ConfigProblem(
                            f"{section}.{key}",
                            f"cannot read the systemd credential {cred}: {exc}; check "
                            "LoadCredential= in the unit",
                        )
                    ],
                ) from None
    return None


def parse_config(data: dict[str, Any], path: Path | None = None) -> Config:
    """Validate a parsed TOML document (plus secrets from outside) into a Config."""
    merged: dict[str, Any] = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
    for section, key in SECRET_SOURCES:
        try:
            secret = _secret_from_outside(section, key)
        except ConfigError as exc:
            raise ConfigError(path, exc.problems) from None
        if secret is not None:
            target = merged.setdefault(section, {})
            if isinstance(target, dict):
                target[key] = secret
    try:
        return Config.model_validate(merged)
    except ValidationError as exc:
        problems = [_describe_error(e) for e in exc.errors()]
        raise ConfigError(path, problems) from None


def load_config(path: Path) -> Config:
    """Read and validate a TOML configuration file, raising ConfigError with every problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            path, [ConfigProblem("", "file not found; give --config PATH or create it")]
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, [ConfigProblem("", f"cannot read the file: {exc}")]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, [ConfigProblem("", f"TOML syntax error: {exc}")]) from None
    config = parse_config(data, path)
    base = path.parent
    # Relative paths in the file are relative to the file, so a config and its data travel together.
    _resolve_relative(config, base)
    return config


def _resolve_relative(config: Config, base: Path) -> None:
    d = config.device
    if not d.data_dir.is_absolute():
        d.data_dir = (base / d.data_dir).resolve()
    b = config.beacons
    if b.replay_file is not None and not b.replay_file.is_absolute():
        b.replay_file = (base / b.replay_file).resolve()
    k = config.kiosk
    if k.catalog_file is not None and not k.catalog_file.is_absolute():
        k.catalog_file = (base / k.catalog_file).resolve()
    cam = config.barcodes.camera
    if not cam.isdigit() and "://" not in cam and not cam.startswith("/"):
        config.barcodes.camera = str((base / cam).resolve())
    m = config.mail
    if m.outbox_dir is not None and not m.outbox_dir.is_absolute():
        m.outbox_dir = (base / m.outbox_dir).resolve()
    if m.ca_file is not None and not m.ca_file.is_absolute():
        m.ca_file = (base / m.ca_file).resolve()
    t = config.mqtt.tls
    for name in ("ca_file", "cert_file", "key_file"):
        value = getattr(t, name)
        if value is not None and not value.is_absolute():
            setattr(t, name, (base / value).resolve())
    if config.printer.url.startswith("file://"):
        raw = config.printer.url.removeprefix("file://")
        if raw and not raw.startswith("/"):
            config.printer.url = "file://" + str((base / raw).resolve())


def config_path_from(arg: str | None) -> Path:
    """The config path: the --config argument, else $KIOSK_EDGE_CONFIG, else the default."""
    if arg:
        return Path(arg)
    env = os.environ.get(CONFIG_ENV)
    return Path(env) if env else DEFAULT_CONFIG_PATH


SECRET_KEYS: Final = frozenset({"password", "admin_password", "identity_salt", "key_file"})


def redacted(config: Config) -> dict[str, Any]:
    """The configuration as plain JSON-able data with every secret replaced by a marker."""

    def scrub(value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: ("<redacted>" if k in SECRET_KEYS and v else scrub(v)) for k, v in value.items()
            }
        if isinstance(value, list):
            return [scrub(v) for v in value]
        return value

    result: dict[str, Any] = scrub(config.model_dump(mode="json"))
    return result
