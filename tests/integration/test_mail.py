"""Mail against aiosmtpd on 127.0.0.1: STARTTLS with a self-signed certificate and AUTH."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from edge.bus import Bus
from edge.catalog.models import Product, Spec
from edge.config import Config
from edge.events import Event
from edge.health import Health
from edge.services import Services
from edge.takeaway.mail import DB_NAME, MailQueue, build_mail_queue
from tests.conftest import free_port

ADDRESS = "camille.durand@exemple-boutique.fr"
USER, PASSWORD = "kiosk", "s3cret-pass"
URL_TEMPLATE = "https://shop.example/compare?skus={skus}"


def products() -> list[Product]:
    return [
        Product(
            "TV-001",
            'Téléviseur QLED 55" Lumière',
            899.0,
            image="TV-001.png",
            specs=(
                Spec("diag", "Diagonale", 55, '"', "higher"),
                Spec("power", "Consommation", 98, "kWh", "lower"),
            ),
        ),
        Product(
            "TV-002",
            'Téléviseur OLED 65" Éclat',
            1299.0,
            image="TV-002.png",
            specs=(
                Spec("diag", "Diagonale", 65, '"', "higher"),
                Spec("power", "Consommation", 87, "kWh", "lower"),
            ),
        ),
    ]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (the client trusts it through mail.ca_file)."""
    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@dataclass
class Recorder:
    """The SMTP server's side: accepted messages and the logins it saw."""

    messages: list[tuple[list[str], bytes]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), bytes(envelope.content)))
        return "250 OK"

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        if (
            isinstance(data, LoginPassword)
            and data.login.decode() == USER
            and data.password.decode() == PASSWORD
        ):
            self.logins.append(data.login.decode())
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False)


class SmtpServer:
    """aiosmtpd Controller requiring STARTTLS and AUTH; can be stopped and started again."""

    def __init__(self, port: int, certificate: tuple[Path, Path]) -> None:
        self.port = port
        self.recorder = Recorder()
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(*map(str, certificate))
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(
            self.recorder,
            hostname="127.0.0.1",
            port=self.port,
            tls_context=self.context,
            require_starttls=True,
            auth_required=True,
            auth_require_tls=True,
            authenticator=self.recorder.authenticate,
        )
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp(certificate: tuple[Path, Path]) -> Iterator[SmtpServer]:
    server = SmtpServer(free_port(), certificate)
    yield server
    server.stop()


def make_services(
    tmp_path: Path, smtp: SmtpServer, certificate: tuple[Path, Path], **mail: Any
) -> Services:
    config = Config()
    config.device.data_dir = tmp_path / "data"
    config.device.store_id = "demo-store"
    config.printer.store_name = "Magasin Démo"
    config.kiosk.compare_url_template = URL_TEMPLATE
    m = config.mail
    m.host, m.port, m.security = "127.0.0.1", smtp.port, "starttls"
    m.username, m.password, m.ca_file = USER, PASSWORD, certificate[0]
    m.timeout_s, m.retry_interval_s, m.sender = 2.0, 0.2, "kiosk@shop.example"
    for key, value in mail.items():
        setattr(m, key, value)
    media = config.device.data_dir / "media"
    media.mkdir(parents=True)
    # Real PNG images in the kiosk's media folder (the catalog importer copies them there).
    from PIL import Image

    for sku, colour in (("TV-001", "red"), ("TV-002", "blue")):
        Image.new("RGB", (40, 30), colour).save(media / f"{sku}.png")
    return Services(config=config, bus=Bus(), health=Health(), salt="s")


async def wait_for(check: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


class Running:
    def __init__(self, services: Services) -> None:
        self.services = services
        queue = build_mail_queue(services)
        assert queue is not None
        self.queue: MailQueue = queue
        self.failed: list[Event] = []

    async def __aenter__(self) -> Running:
        loop = asyncio.get_running_loop()
        self.services.loop = loop
        self.services.bus.bind(loop)
        self.services.bus.subscribe(self.failed.append, "kiosk.mail.failed")
        self.task = asyncio.create_task(self.queue.run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self.task
        self.queue.close()


def db_bytes(data_dir: Path) -> bytes:
    """Every byte of the queue's database files (main, WAL, shared memory)."""
    out = b""
    for suffix in ("", "-wal", "-shm", "-journal"):
        path = data_dir / (DB_NAME + suffix)
        if path.exists():
            out += path.read_bytes()
    return out


def html_and_images(raw: bytes) -> tuple[EmailMessage, str, str, dict[str, bytes]]:
    msg = message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    plain = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert plain is not None
    assert html is not None
    images = {
        str(part["Content-ID"]).strip("<>"): part.get_payload(decode=True)
        for part in msg.walk()
        if part.get_content_maintype() == "image"
    }
    return msg, plain.get_content(), html.get_content(), images


def test_mail_arrives_with_text_html_and_inline_images(
    tmp_path: Path, smtp: SmtpServer, certificate: tuple[Path, Path]
) -> None:
    """STARTTLS + AUTH; both parts; product images and the QR code inline by CID."""
    smtp.start()
    services = make_services(tmp_path, smtp, certificate)

    async def body() -> str:
        async with Running(services) as run:
            job = run.queue.submit(ADDRESS, products(), "fr")
            await wait_for(lambda: run.queue.job(job).state == "sent")  # type: ignore[union-attr]
            return job

    job = asyncio.run(body())
    assert smtp.recorder.logins == [USER]
    [(rcpt, raw)] = smtp.recorder.messages
    assert rcpt == [ADDRESS]
    msg, plain, html, images = html_and_images(raw)
    assert (
        msg["Subject"]
        == 'Votre comparatif : Téléviseur QLED 55" Lumière, Téléviseur OLED 65" Éclat'
    )
    assert msg["To"] == ADDRESS
    assert 'Diagonale : 65" *' in plain
    assert "Consommation : 87 kWh *" in plain
    assert "https://shop.example/compare?skus=TV-001,TV-002" in plain
    assert '<a href="https://shop.example/compare?skus=TV-001,TV-002">' in html
    assert len(images) == 3  # two products and the QR code
    for cid in images:
        assert f"cid:{cid}" in html
    import io

    import zxingcpp
    from PIL import Image

    decoded = set()
    for data in images.values():
        img = Image.open(io.BytesIO(data))
        decoded.update(r.text for r in zxingcpp.read_barcodes(img))
        if img.size == (40, 30):
            decoded.add("product image")
    assert decoded == {"https://shop.example/compare?skus=TV-001,TV-002", "product image"}
    assert ADDRESS.encode() not in db_bytes(tmp_path / "data")
    assert job.startswith("m-")


def test_server_down_then_up_and_address_erased(
    tmp_path: Path, smtp: SmtpServer, certificate: tuple[Path, Path]
) -> None:
    """The mail waits while the server is down, arrives once it is up; then the address is gone."""
    services = make_services(tmp_path, smtp, certificate)
    data_dir = tmp_path / "data"

    async def body() -> None:
        async with Running(services) as run:
            job = run.queue.submit(ADDRESS, products(), "en")
            await wait_for(lambda: run.queue.job(job).attempts >= 2)  # type: ignore[union-attr]
            state = run.queue.job(job)
            assert state is not None
            assert state.state == "queued"
            assert "cannot reach the mail server" in state.problem
            assert ADDRESS not in state.problem
            # While waiting, the address is on the device (that is what a queue is)...
            assert ADDRESS.encode() in db_bytes(data_dir)
            health = services.health.get("mail")
            assert health is not None
            assert health.state == "degraded"
            smtp.start()
            await wait_for(lambda: run.queue.job(job).state == "sent")  # type: ignore[union-attr]
            await wait_for(lambda: services.health.get("mail").state == "ok")  # type: ignore[union-attr]

    asyncio.run(body())
    [(rcpt, raw)] = smtp.recorder.messages
    assert rcpt == [ADDRESS]
    msg, plain, _, _ = html_and_images(raw)
    assert msg["Subject"].startswith("Your comparison: ")
    assert "Here is the comparison" in plain
    # ...and once the server accepted it, not a byte of it is left in the database files.
    assert ADDRESS.encode() not in db_bytes(data_dir)
    assert ADDRESS.split("@", maxsplit=1)[0].encode() not in db_bytes(data_dir)


def test_dropped_after_max_attempts_with_event(
    tmp_path: Path, smtp: SmtpServer, certificate: tuple[Path, Path]
) -> None:
    """After mail.max_attempts failures: kiosk.mail.failed (no address), address erased."""
    services = make_services(tmp_path, smtp, certificate, max_attempts=2, retry_interval_s=0.1)

    async def body() -> None:
        async with Running(services) as run:
            job = run.queue.submit(ADDRESS, products()[:1], "fr")
            await wait_for(lambda: bool(run.failed))
            event = run.failed[0]
            assert event.data["job_id"] == job
            assert event.data["attempts"] == 2
            assert ADDRESS not in repr(event.data)
            assert run.queue.job(job).state == "failed"  # type: ignore[union-attr]

    asyncio.run(body())
    assert ADDRESS.encode() not in db_bytes(tmp_path / "data")


def test_wrong_password_is_retried_not_dropped(
    tmp_path: Path, smtp: SmtpServer, certificate: tuple[Path, Path]
) -> None:
    """A refused login is a configuration problem: the mail waits and says what to check."""
    smtp.start()
    services = make_services(tmp_path, smtp, certificate, password="wrong")

    async def body() -> None:
        async with Running(services) as run:
            job = run.queue.submit(ADDRESS, products(), "fr")
            await wait_for(lambda: run.queue.job(job).attempts >= 1)  # type: ignore[union-attr]
            state = run.queue.job(job)
            assert state is not None
            assert state.state == "queued"
            assert "check mail.username/password" in state.problem

    asyncio.run(body())
    assert smtp.recorder.messages == []


def test_demo_outbox_dir_writes_eml(
    tmp_path: Path, smtp: SmtpServer, certificate: tuple[Path, Path]
) -> None:
    """mail.outbox_dir: the message is written as an .eml file instead of sent."""
    outbox = tmp_path / "mail"
    services = make_services(tmp_path, smtp, certificate, outbox_dir=outbox)

    async def body() -> str:
        async with Running(services) as run:
            job = run.queue.submit(ADDRESS, products(), "fr")
            await wait_for(lambda: run.queue.job(job).state == "sent")  # type: ignore[union-attr]
            return job

    job = asyncio.run(body())
    _, plain, _html, images = html_and_images((outbox / f"{job}.eml").read_bytes())
    assert "Votre comparatif" not in plain  # the intro, not the receipt title
    assert "Voici le comparatif" in plain
    assert len(images) == 3


def test_product_name_cannot_inject_headers() -> None:
    """A catalog name with CR/LF stays inside the Subject line."""
    from datetime import datetime

    from edge.takeaway.mail import MailContext, build_message

    evil = Product("X-1", "TV\r\nBcc: victim@example.com", 10.0)
    ctx = MailContext(
        "kiosk@shop.example", "Shop", "https://s.example/c", "en", datetime.now().astimezone()
    )
    raw = build_message(ADDRESS, [evil], ctx).as_bytes()
    headers = raw.split(b"\n\n", 1)[0]
    assert b"\nBcc:" not in headers
    assert b"Subject: Your product: TV Bcc: victim@example.com" in headers


# aiosmtpd warns about AUTH without STARTTLS; here the whole connection is implicit TLS.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
def test_implicit_tls_and_untrusted_certificate(
    tmp_path: Path, certificate: tuple[Path, Path]
) -> None:
    """security = "tls" sends over implicit TLS; without the CA the mail waits with the fix."""
    recorder = Recorder()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*map(str, certificate))
    port = free_port()
    controller = Controller(
        recorder,
        hostname="127.0.0.1",
        port=port,
        ssl_context=context,
        auth_required=True,
        # aiosmtpd counts only STARTTLS as TLS for AUTH; this connection is TLS from the start.
        auth_require_tls=False,
        authenticator=recorder.authenticate,
    )
    controller.start()
    try:
        server = SmtpServer(port, certificate)  # only for make_services' host and port
        trusted = make_services(tmp_path / "a", server, certificate, security="tls")
        untrusted = make_services(tmp_path / "b", server, certificate, security="tls", ca_file=None)

        async def body(services: Services, final: str) -> str:
            async with Running(services) as run:
                job = run.queue.submit(ADDRESS, products(), "fr")
                if final == "sent":
                    await wait_for(lambda: run.queue.job(job).state == "sent")  # type: ignore[union-attr]
                else:
                    await wait_for(lambda: run.queue.job(job).attempts >= 1)  # type: ignore[union-attr]
                return run.queue.job(job).problem  # type: ignore[union-attr]

        assert asyncio.run(body(trusted, "sent")) == ""
        problem = asyncio.run(body(untrusted, "queued"))
    finally:
        controller.stop()
    assert len(recorder.messages) == 1
    assert recorder.logins == [USER]
    assert problem.startswith("TLS failed")
    assert "mail.ca_file" in problem


def test_svg_catalog_images_arrive_as_png(
    tmp_path: Path, smtp: SmtpServer, certificate: tuple[Path, Path]
) -> None:
    """The demo catalog's SVG images are drawn as PNG: mail clients do not show SVG inline."""
    import io
    import shutil

    from PIL import Image

    smtp.start()
    services = make_services(tmp_path, smtp, certificate)
    media = services.config.device.data_dir / "media"
    demo_images = Path(__file__).resolve().parents[2] / "firmware_config" / "demo" / "images"
    for sku in ("TV-001", "TV-002"):
        shutil.copy(demo_images / f"{sku}.svg", media / f"{sku}.svg")
    svg_products = [
        Product(p.sku, p.name, p.price, image=f"{p.sku}.svg", specs=p.specs) for p in products()
    ]

    async def body() -> None:
        async with Running(services) as run:
            job = run.queue.submit(ADDRESS, svg_products, "fr")
            await wait_for(lambda: run.queue.job(job).state == "sent")  # type: ignore[union-attr]

    asyncio.run(body())
    [(_, raw)] = smtp.recorder.messages
    msg, _, html, images = html_and_images(raw)
    types = sorted(
        part.get_content_type() for part in msg.walk() if part.get_content_maintype() == "image"
    )
    assert types == ["image/png"] * 3  # two products and the QR code; no image/svg+xml
    assert len(images) == 3
    for cid in images:
        assert f"cid:{cid}" in html
    sizes = sorted(Image.open(io.BytesIO(data)).size for data in images.values())
    # The demo drawings are 240x200: drawn at the mail's 2x width (240 px), to scale.
    assert sizes.count((240, 200)) == 2
    product = next(
        Image.open(io.BytesIO(data)).convert("RGB")
        for data in images.values()
        if Image.open(io.BytesIO(data)).size == (240, 200)
    )
    # Really drawn, not blank: the TV's dark frame (#444444) is where the SVG puts it.
    assert product.getpixel((24, 34)) == (0x44, 0x44, 0x44)
    assert product.getpixel((2, 2)) == (0xF4, 0xF6, 0xF8)


def test_non_ascii_password_is_explained_not_a_crash(
    tmp_path: Path, smtp: SmtpServer, certificate: tuple[Path, Path]
) -> None:
    """smtplib cannot send a password with é: the mail waits, the problem names the setting.

    The config check refuses such a password; this is the guard behind it (a value set
    without validation must still not crash the mail component)."""
    smtp.start()
    services = make_services(tmp_path, smtp, certificate, max_attempts=2)
    services.config.mail.__dict__["password"] = "mot-de-passe-été"  # bypasses validation

    async def body() -> None:
        async with Running(services) as run:
            job = run.queue.submit(ADDRESS, products(), "fr")
            await wait_for(lambda: run.queue.job(job).attempts >= 1)  # type: ignore[union-attr]
            state = run.queue.job(job)
            assert state is not None
            assert "characters other than ASCII" in state.problem
            assert "mail.password" in state.problem
            await wait_for(lambda: bool(run.failed))  # dropped after max_attempts
            assert not run.task.done()  # the component kept running

    asyncio.run(body())
    assert smtp.recorder.messages == []


def test_unexpected_error_counts_as_a_try(
    tmp_path: Path, smtp: SmtpServer, certificate: tuple[Path, Path]
) -> None:
    """A failure nobody foresaw (here: a broken image loader) never crashes the mail task."""
    smtp.start()
    services = make_services(tmp_path, smtp, certificate, max_attempts=2, retry_interval_s=0.1)

    def broken_loader(name: str) -> tuple[bytes, str] | None:
        raise RuntimeError(f"boom {ADDRESS}")

    async def body() -> None:
        async with Running(services) as run:
            run.queue._load_image = broken_loader
            job = run.queue.submit(ADDRESS, products(), "fr")
            await wait_for(lambda: bool(run.failed))
            state = run.queue.job(job)
            assert state is not None
            assert (state.state, state.attempts) == ("failed", 2)
            assert state.problem == "unexpected error while sending: RuntimeError"
            assert ADDRESS not in repr(run.failed[0].data)
            assert not run.task.done()

    asyncio.run(body())
    assert ADDRESS.encode() not in db_bytes(tmp_path / "data")


def test_missing_ca_file_names_the_setting(
    tmp_path: Path, smtp: SmtpServer, certificate: tuple[Path, Path]
) -> None:
    """mail.ca_file that does not exist: the mail waits with a problem naming the setting."""
    smtp.start()
    services = make_services(tmp_path, smtp, certificate, ca_file=tmp_path / "nope.pem")

    async def body() -> None:
        async with Running(services) as run:
            job = run.queue.submit(ADDRESS, products(), "fr")
            await wait_for(lambda: run.queue.job(job).attempts >= 1)  # type: ignore[union-attr]
            state = run.queue.job(job)
            assert state is not None
            assert state.state == "queued"
            assert state.problem.startswith("cannot use mail.ca_file")
            assert "No such file" in state.problem

    asyncio.run(body())
    assert smtp.recorder.messages == []


def test_unwritable_demo_folder_counts_tries_then_drops(
    tmp_path: Path, smtp: SmtpServer, certificate: tuple[Path, Path]
) -> None:
    """mail.outbox_dir that cannot be written: retried, then dropped after max_attempts like
    any failure (it was retried forever, keeping the address)."""
    blocked = tmp_path / "mail"
    blocked.write_text("a file where the folder should be")
    services = make_services(
        tmp_path, smtp, certificate, outbox_dir=blocked, max_attempts=2, retry_interval_s=0.1
    )

    async def body() -> None:
        async with Running(services) as run:
            job = run.queue.submit(ADDRESS, products(), "fr")
            await wait_for(lambda: bool(run.failed))
            state = run.queue.job(job)
            assert state is not None
            assert (state.state, state.attempts) == ("failed", 2)
            assert state.problem.startswith("cannot write the mail file")

    asyncio.run(body())
    assert ADDRESS.encode() not in db_bytes(tmp_path / "data")
