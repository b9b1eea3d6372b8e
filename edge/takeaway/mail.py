"""E-mailing the comparison: the message (text + HTML + inline images), SMTP, a durable queue.

The shopper's address is checked before the kiosk accepts it, kept in SQLite only until the
SMTP server accepted the message (or the mail is given up), then overwritten: the queue runs
with ``secure_delete`` so the freed bytes are zeroed and the WAL is truncated after each
erase, so the address does not linger in the database files. Logs and events name the job,
never the address. With the network down mails wait; each failed try doubles the delay, and
after ``mail.max_attempts`` the mail is dropped with a ``kiosk.mail.failed`` event.
"""

from __future__ import annotations

import functools
import html
import json
import logging
import mimetypes
import re
import smtplib
import ssl
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Final, Literal

from edge.catalog.codec import product_to_dict
from edge.catalog.media import local_image
from edge.catalog.models import CatalogDataError, Product, product_from_dict
from edge.config import MailConfig
from edge.events import new_event
from edge.services import Services
from edge.takeaway import images, qr
from edge.takeaway.compare import build_comparison, clean_text, language_of, text
from edge.takeaway.queuedb import DurableQueue, JobView

_LOGGER = logging.getLogger(__name__)

DB_NAME: Final = "mail-queue.sqlite3"
COMPONENT: Final = "mail"
# Retry delays double from mail.retry_interval_s up to this: a kiosk offline for a weekend
# still tries every half hour, not every few seconds.
MAX_RETRY_DELAY_S: Final = 1800.0
# RFC 5321 limits: 64 characters before the @, 254 for the whole path, 63 per domain label.
MAX_LOCAL: Final = 64
MAX_ADDRESS: Final = 254
MAX_LABEL: Final = 63
# Inline product images larger than this are left out: a mail must stay small on mobile data.
MAX_IMAGE_BYTES: Final = 512 * 1024
# Converted images kept in memory (a few kB each): the same products are mailed again and again,
# and drawing an SVG takes tens of milliseconds on a Pi.
IMAGE_CACHE_SIZE: Final = 128
# Characters allowed unquoted before the @ (RFC 5322 atext); quoted local parts are refused:
# nobody types them at a kiosk and they are a favourite of injection attempts.
_LOCAL_RE: Final = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$"
)
_LABEL_RE: Final = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
_TLD_RE: Final = re.compile(r"^([a-z]{2,63}|xn--[a-z0-9-]{1,59})$")

MailState = Literal["queued", "sent", "failed"]

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS mails (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    state TEXT NOT NULL,
    address TEXT,
    lang TEXT NOT NULL,
    skus TEXT NOT NULL,
    content TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL,
    problem TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS mails_state_next ON mails(state, next_attempt);
"""


class AddressError(ValueError):
    """The e-mail address cannot be used; the message says what is wrong (without echoing it)."""


def validate_address(address: str) -> str:
    """The address, trimmed and with its domain in lower-case ASCII; AddressError otherwise."""
    value = address.strip()
    if not value:
        raise AddressError("the e-mail address is empty")
    if len(value) > MAX_ADDRESS:
        raise AddressError(f"the e-mail address is longer than {MAX_ADDRESS} characters")
    if any(ch.isspace() or ord(ch) < 32 or ch in '<>,;"()[]\\' for ch in value):
        raise AddressError("the e-mail address contains spaces or characters that are not allowed")
    if value.count("@") != 1:
        raise AddressError("the e-mail address needs exactly one @, like name@example.com")
    local, domain = value.split("@")
    if not local or len(local) > MAX_LOCAL or not _LOCAL_RE.match(local):
        raise AddressError("the part before the @ is not valid")
    try:
        ascii_domain = domain.rstrip(".").encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise AddressError("the domain after the @ is not valid") from None
    labels = ascii_domain.split(".")
    if len(labels) < 2:
        raise AddressError("the domain after the @ needs a dot, like example.com")
    for label in labels:
        if not label or len(label) > MAX_LABEL or not _LABEL_RE.match(label):
            raise AddressError("the domain after the @ is not valid")
    if not _TLD_RE.match(labels[-1]):
        raise AddressError("the domain after the @ does not end like .com or .fr")
    return f"{local}@{ascii_domain}"


@dataclass(frozen=True)
class MailContext:
    """Everything around the comparison in the message."""

    sender: str
    store_name: str
    url: str
    lang: str
    when: datetime


ImageLoader = Callable[[str], tuple[bytes, str] | None]


@functools.lru_cache(maxsize=IMAGE_CACHE_SIZE)
def _mail_image(path: Path, _mtime_ns: int, _size: int) -> tuple[bytes, str] | None:
    """The file as an image mail clients show (cached per file version), or None."""
    mime = mimetypes.guess_type(path.name)[0] or ""
    if not mime.startswith("image/"):
        return None
    try:
        return images.for_mail(path.read_bytes(), mime)
    except OSError:
        return None
    except images.ImageConversionError as exc:
        _LOGGER.warning("product image %s left out of the mail: %s", path.name, exc)
        return None


def media_loader(folder: Path | None) -> ImageLoader:
    """Load product images by file name, or a URL's downloaded copy, from the media folder.

    SVG and other formats mail clients do not show are converted to PNG.
    """

    def load(name: str) -> tuple[bytes, str] | None:
        if folder is None:
            return None
        name = local_image(name, folder)  # a URL: its downloaded copy, or "" (no network)
        if not name or "/" in name or "\\" in name or name.startswith("."):
            return None
        path = folder / name
        try:
            if not path.is_file():
                return None
            stat = path.stat()
        except OSError:
            return None
        if stat.st_size > MAX_IMAGE_BYTES:
            return None
        return _mail_image(path, stat.st_mtime_ns, stat.st_size)

    return load


def _plain(products: Sequence[Product], ctx: MailContext) -> str:
    comp = build_comparison(products, ctx.lang)
    lang = language_of(ctx.lang)
    many = len(products) > 1
    out = [text(lang, "intro" if many else "intro_product"), ""]
    for i, name in enumerate(comp.names):
        out.append(f"{i + 1}. {name}" if many else name)
        for row in comp.rows:
            mark = " *" if i in row.best else ""
            out.append(
                f"   {row.label} : {row.cells[i]}{mark}"
                if lang == "fr"
                else f"   {row.label}: {row.cells[i]}{mark}"
            )
        out.append("")
    if comp.any_best:
        out.append(text(lang, "best"))
    out += [f"{text(lang, 'scan')} {ctx.url}", "", ctx.store_name, text(lang, "footer"), ""]
    return "\n".join(out)


def _html(
    products: Sequence[Product], ctx: MailContext, image_cids: dict[int, str], qr_cid: str
) -> str:
    comp = build_comparison(products, ctx.lang)
    lang = language_of(ctx.lang)
    esc = html.escape
    head = "".join(
        "<th>"
        + (
            f'<img src="cid:{image_cids[i][1:-1]}" alt="" width="120"><br>'
            if i in image_cids
            else ""
        )
        + f"{esc(name)}</th>"
        for i, name in enumerate(comp.names)
    )
    body_rows = []
    for row in comp.rows:
        cells = "".join(
            f'<td class="best"><strong>{esc(cell)} ★</strong></td>'
            if i in row.best
            else f"<td>{esc(cell)}</td>"
            for i, cell in enumerate(row.cells)
        )
        body_rows.append(f'<tr><th scope="row">{esc(row.label)}</th>{cells}</tr>')
    legend = f"<p>{esc(text(lang, 'best').replace('*', '★'))}</p>" if comp.any_best else ""
    intro = text(lang, "intro" if len(products) > 1 else "intro_product")
    return (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        f"<title>{esc(text(lang, 'title'))}</title></head><body>"
        f"<h1>{esc(ctx.store_name)}</h1><p>{esc(intro)}</p>"
        f'<table border="1" cellpadding="6" cellspacing="0"><thead><tr><th></th>{head}</tr></thead>'
        f"<tbody>{''.join(body_rows)}</tbody></table>{legend}"
        f'<p>{esc(text(lang, "scan"))} <a href="{esc(ctx.url)}">{esc(ctx.url)}</a></p>'
        f'<p><img src="cid:{qr_cid[1:-1]}" alt="QR" width="180" height="180"></p>'
        f"<p><small>{esc(text(lang, 'footer'))}</small></p></body></html>"
    )


def build_message(
    to: str, products: Sequence[Product], ctx: MailContext, load_image: ImageLoader | None = None
) -> EmailMessage:
    """The multipart message: text, HTML with the table, product images and the QR inline."""
    if not products:
        raise ValueError("nothing to send: no products")
    lang = language_of(ctx.lang)
    names = ", ".join(clean_text(p.name) for p in products)  # one line: no header injection
    key = "subject_compare" if len(products) > 1 else "subject_product"
    msg = EmailMessage()
    msg["Subject"] = text(lang, key).format(names=names)[:200]
    msg["From"] = ctx.sender
    msg["To"] = to
    msg["Date"] = format_datetime(ctx.when)
    domain = ctx.sender.rsplit("@", 1)[-1] or "kiosk.invalid"
    msg["Message-ID"] = make_msgid(domain=domain)
    msg["Content-Language"] = lang
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(_plain(products, ctx))
    images: list[tuple[str, bytes, str]] = []
    image_cids: dict[int, str] = {}
    for i, product in enumerate(products):
        loaded = load_image(product.image) if load_image is not None else None
        if loaded is not None:
            cid = make_msgid(domain=domain)
            image_cids[i] = cid
            images.append((cid, *loaded))
    qr_cid = make_msgid(domain=domain)
    msg.add_alternative(_html(products, ctx, image_cids, qr_cid), subtype="html")
    html_part = next(part for part in msg.iter_parts() if part.get_content_type() == "text/html")
    assert isinstance(html_part, EmailMessage)
    for cid, data, mime in images:
        maintype, subtype = mime.split("/", 1)
        html_part.add_related(data, maintype=maintype, subtype=subtype, cid=cid)
    html_part.add_related(qr.png(ctx.url), maintype="image", subtype="png", cid=qr_cid)
    return msg


class MailFailure(Exception):
    """Sending failed; ``permanent`` when retrying cannot help (the address was refused)."""

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        self.reason = reason
        self.permanent = permanent
        super().__init__(reason)


def _redact(value: str, address: str) -> str:
    return value.replace(address, "<address>") if address else value


def send_smtp(config: MailConfig, msg: EmailMessage, to: str) -> None:
    """Hand the message to the SMTP server (blocking); MailFailure says why it did not."""
    try:
        context = ssl.create_default_context(cafile=str(config.ca_file) if config.ca_file else None)
    except (OSError, ssl.SSLError) as exc:
        raise MailFailure(
            f"cannot use mail.ca_file {config.ca_file}: {getattr(exc, 'strerror', None) or exc}"
        ) from None
    try:
        smtp: smtplib.SMTP
        if config.security == "tls":
            smtp = smtplib.SMTP_SSL(
                config.host, config.port, timeout=config.timeout_s, context=context
            )
        else:
            smtp = smtplib.SMTP(config.host, config.port, timeout=config.timeout_s)
        with smtp:
            smtp.ehlo()
            if config.security == "starttls":
                smtp.starttls(context=context)
                smtp.ehlo()
            if config.username:
                try:
                    smtp.login(config.username, config.password)
                except UnicodeEncodeError:
                    # smtplib sends AUTH PLAIN/LOGIN as ASCII only.
                    raise MailFailure(
                        "mail.username or mail.password has characters other than ASCII, "
                        "which SMTP login cannot send; use an ASCII password"
                    ) from None
            smtp.send_message(msg, from_addr=config.sender, to_addrs=[to])
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        permanent = all(code >= 500 for code in codes)
        raise MailFailure(
            f"recipient refused ({', '.join(map(str, codes))})", permanent=permanent
        ) from None
    except smtplib.SMTPAuthenticationError as exc:
        raise MailFailure(
            f"SMTP login refused ({exc.smtp_code}); check mail.username/password"
        ) from None
    except smtplib.SMTPResponseException as exc:
        detail = (
            exc.smtp_error.decode("utf-8", "replace")
            if isinstance(exc.smtp_error, bytes)
            else str(exc.smtp_error)
        )
        raise MailFailure(_redact(f"SMTP error {exc.smtp_code}: {detail}"[:200], to)) from None
    except smtplib.SMTPNotSupportedError as exc:
        raise MailFailure(
            f"the mail server does not offer it: {exc}; check mail.security and mail.username"
        ) from None
    except ssl.SSLError as exc:
        raise MailFailure(
            f"TLS failed: {exc.reason or exc}; check mail.security and mail.ca_file"
        ) from None
    except (TimeoutError, smtplib.SMTPException, OSError) as exc:
        raise MailFailure(
            _redact(f"cannot reach the mail server: {type(exc).__name__}: {exc}"[:200], to)
        ) from None


def write_eml(folder: Path, job_id: str, msg: EmailMessage) -> None:
    """Demo mode: write the message as an .eml file instead of sending it."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{job_id}.tmp"
    tmp.write_bytes(msg.as_bytes())
    tmp.replace(folder / f"{job_id}.eml")


@dataclass(frozen=True)
class MailJob(JobView):
    """A queued mail as the kiosk sees it (never with the address)."""

    job_type = "email"

    state: MailState


class MailQueue(DurableQueue):
    """Durable queue of comparison mails, sent by a supervised task."""

    name = COMPONENT
    table = "mails"

    def __init__(
        self,
        config: MailConfig,
        data_dir: Path,
        *,
        services: Services | None = None,
        store_name: str = "",
        url_for: Callable[[Sequence[str]], str] | None = None,
        load_image: ImageLoader | None = None,
    ) -> None:
        self.config = config
        self.services = services
        self.store_name = store_name
        self._url_for = url_for or (lambda skus: "")
        self._load_image = load_image
        super().__init__(data_dir / DB_NAME, _SCHEMA, secure_delete=True)
        self.sent = 0

    # -- submitting (any thread) ------------------------------------------------------

    def submit(self, address: str, products: Sequence[Product], lang: str) -> str:
        """Validate the address and queue the mail; returns the job id once durable."""
        to = validate_address(address)
        if not products:
            raise ValueError("nothing to send: no products")
        job_id = "m-" + uuid.uuid4().hex
        content = json.dumps([product_to_dict(p) for p in products], ensure_ascii=False)
        now = time.time()
        self._insert(
            (
                "id",
                "state",
                "address",
                "lang",
                "skus",
                "content",
                "next_attempt",
                "created",
                "updated",
            ),
            (
                job_id,
                "queued",
                to,
                language_of(lang),
                ",".join(p.sku for p in products),
                content,
                now,
                now,
                now,
            ),
        )
        return job_id

    def job(self, job_id: str) -> MailJob | None:
        """A mail's state (no address), or None when unknown."""
        with self._lock:
            row = self._db.execute(
                "SELECT id, state, attempts, problem, created, updated FROM mails WHERE id = ?",
                (job_id,),
            ).fetchone()
        return None if row is None else MailJob(*row)

    # -- sending ----------------------------------------------------------------------

    def _due(self, now: float) -> tuple[str, str, str, str, str, int] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT id, address, lang, skus, content, attempts FROM mails"
                " WHERE state = 'queued' AND next_attempt <= ? ORDER BY seq LIMIT 1",
                (now,),
            ).fetchone()
        return None if row is None else tuple(row)

    def next_due_in(self, now: float) -> float | None:
        """Seconds until the next queued mail is due (0 when one is due), None when none."""
        with self._lock:
            row = self._db.execute(
                "SELECT MIN(next_attempt) FROM mails WHERE state = 'queued'"
            ).fetchone()
        return None if row[0] is None else max(0.0, row[0] - now)

    def _finish(self, job_id: str, state: MailState, attempts: int, problem: str = "") -> None:
        """Sent or dropped: erase the address (zeroed on disk) and truncate the WAL."""
        with self._lock:
            self._db.execute(
                "UPDATE mails SET state = ?, address = NULL, content = NULL, attempts = ?,"
                " problem = ?, updated = ? WHERE id = ?",
                (state, attempts, problem, time.time(), job_id),
            )
            self._purge_done_locked()
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def _retry_later(self, job_id: str, attempts: int, problem: str) -> None:
        delay = min(MAX_RETRY_DELAY_S, self.config.retry_interval_s * 2 ** (attempts - 1))
        with self._lock:
            self._db.execute(
                "UPDATE mails SET attempts = ?, problem = ?, next_attempt = ?, updated = ?"
                " WHERE id = ?",
                (attempts, problem, time.time() + delay, time.time(), job_id),
            )

    def _message(self, job_id: str, to: str, lang: str, skus: str, content: str) -> EmailMessage:
        products = [product_from_dict(d) for d in json.loads(content)]
        ctx = MailContext(
            sender=self.config.sender,
            store_name=self.store_name,
            url=self._url_for(skus.split(",")),
            lang=lang,
            when=datetime.now().astimezone(),
        )
        return build_message(to, products, ctx, self._load_image)

    def send_one(self, now: float | None = None) -> tuple[str, MailState | None, str] | None:
        """Try the oldest due mail (blocking): (job id, final state or None if retried, reason)."""
        due = self._due(time.time() if now is None else now)
        if due is None:
            return None
        job_id, to, lang, skus, content, attempts = due
        attempts += 1
        try:
            msg = self._message(job_id, to, lang, skus, content)
        except (CatalogDataError, ValueError, KeyError) as exc:
            reason = f"cannot build the message: {type(exc).__name__}"
            self._finish(job_id, "failed", attempts, reason)
            return job_id, "failed", reason
        except Exception as exc:
            return self._unexpected(job_id, attempts, exc)
        try:
            if self.config.outbox_dir is not None:
                write_eml(self.config.outbox_dir, job_id, msg)
            else:
                send_smtp(self.config, msg, to)
        except MailFailure as failure:
            return self._failed_try(
                job_id, attempts, _redact(failure.reason, to), permanent=failure.permanent
            )
        except OSError as exc:  # the demo folder is not writable
            return self._failed_try(job_id, attempts, f"cannot write the mail file: {exc.strerror}")
        except Exception as exc:
            return self._unexpected(job_id, attempts, exc)
        self._finish(job_id, "sent", attempts)
        self.sent += 1
        return job_id, "sent", ""

    def _unexpected(
        self, job_id: str, attempts: int, exc: Exception
    ) -> tuple[str, MailState | None, str]:
        """A failure nobody foresaw counts as a try: after mail.max_attempts the mail is
        dropped, instead of the component crashing on the same mail again and again."""
        _LOGGER.error("mail %s: unexpected error while sending", job_id, exc_info=exc)
        return self._failed_try(
            job_id, attempts, f"unexpected error while sending: {type(exc).__name__}"
        )

    def _failed_try(
        self, job_id: str, attempts: int, reason: str, *, permanent: bool = False
    ) -> tuple[str, MailState | None, str]:
        """Retry later, or drop the mail when ``permanent`` or out of mail.max_attempts."""
        if permanent or attempts >= self.config.max_attempts:
            self._finish(job_id, "failed", attempts, reason)
            return job_id, "failed", reason
        self._retry_later(job_id, attempts, reason)
        return job_id, None, reason

    def _after(self, result: tuple[str, MailState | None, str]) -> None:
        services = self.services
        job_id, state, reason = result
        if services is None:
            return
        if state == "sent":
            _LOGGER.info("mail %s accepted by the server", job_id)
            services.health.set(COMPONENT, "ok")
        elif state == "failed":
            _LOGGER.warning("mail %s dropped: %s", job_id, reason)
            job = self.job(job_id)
            services.publish(
                new_event(
                    "kiosk.mail.failed",
                    {"job_id": job_id, "attempts": job.attempts if job else 0, "reason": reason},
                )
            )
        else:
            _LOGGER.warning("mail %s not sent yet: %s", job_id, reason)
            services.health.set(COMPONENT, "degraded", f"mail waiting: {reason}")
        services.health.metric(COMPONENT, "queued", self.depth())
        services.health.metric(COMPONENT, "sent", self.sent)

    async def run(self) -> None:
        """Send due mails until cancelled; sleep until the next is due or a new one comes."""
        loop = self._attach()
        if self.services is not None:
            self.services.health.set(COMPONENT, "ok")
        try:
            while True:
                assert self._wake is not None
                self._wake.clear()
                result = await loop.run_in_executor(None, self.send_one)
                if result is not None:
                    self._after(result)
                    continue
                await self._sleep(await loop.run_in_executor(None, self.next_due_in, time.time()))
        finally:
            self._wake = None


def build_mail_queue(services: Services) -> MailQueue | None:
    """The daemon's mail component (None when mail is off); sets services.mail."""
    config = services.config
    if not config.mail.enabled:
        return None
    from edge.catalog.store import media_dir

    template = config.kiosk.compare_url_template
    queue = MailQueue(
        config.mail,
        config.device.data_dir,
        services=services,
        store_name=config.printer.store_name or config.device.store_id,
        url_for=lambda skus: qr.takeaway_url(template, skus),
        load_image=media_loader(media_dir(config.device.data_dir)),
    )
    services.mail = queue
    services.extras.setdefault("on_shutdown", []).append(queue.close)
    return queue
