"""Downlink commands from central: parsed, dispatched through a table, always answered.

A command arrives on ``…/cmd/{name}`` (this device) or ``…/all/cmd/{name}`` (the store).
Its payload is empty or a JSON object ``{"id": "...", "args": {...}}``; the reply on
``…/cmd/{name}/reply`` carries the request's ``id`` (and, on MQTT 5, its Correlation Data).
Unknown commands and malformed payloads get an error reply and a log line, never a crash.
Add a command by adding a handler to :data:`COMMANDS`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from edge import __version__
from edge.events import new_event, rfc3339

_LOGGER = logging.getLogger(__name__)

# Larger command payloads are refused unread: a command is a name and a few arguments.
MAX_PAYLOAD_BYTES: Final = 64 * 1024
# Request ids are echoed back; longer ones are refused rather than reflected.
MAX_ID_CHARS: Final = 128
# How long ``identify`` flashes the kiosk screen unless told otherwise, and at most.
IDENTIFY_DEFAULT_S: Final = 10.0
IDENTIFY_MAX_S: Final = 300.0
# The component that answers commands: a reload rebuilds it only after its reply is sent.
RELAY_COMPONENT: Final = "relay"


class CommandError(Exception):
    """A command cannot run; the message goes back to central as the error."""


@dataclass(frozen=True)
class CommandRequest:
    """A parsed command: its name, the caller's id (if any) and arguments."""

    name: str
    id: str | None
    args: dict[str, Any]


@dataclass
class CommandContext:
    """What handlers may use: the services and a way to ask the relay to resubscribe."""

    services: Any  # edge.services.Services
    resync_catalog: Callable[[], None] = lambda: None
    started: float = field(default_factory=time.time)
    # Waits (bounded) until replies published so far have been written to the broker.
    flush_replies: Callable[[], object] = lambda: None
    # Run once the current command's reply is published (e.g. replace the relay itself).
    after_reply: list[Callable[[], None]] = field(default_factory=list)


CommandHandler = Callable[[CommandContext, dict[str, Any]], dict[str, Any]]


def parse_request(name: str, payload: bytes) -> CommandRequest:
    """Parse a command payload, raising CommandError that says what a valid one looks like."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise CommandError(f"payload is {len(payload)} bytes; at most {MAX_PAYLOAD_BYTES} allowed")
    if not payload.strip():
        return CommandRequest(name, None, {})
    try:
        body = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CommandError(
            f'payload is not JSON ({exc}); send {{"id": "...", "args": {{...}}}} or nothing'
        ) from None
    except RecursionError:
        # 64 KiB of "[" is valid-looking JSON that overflows the parser's stack.
        raise CommandError(
            'payload is nested too deeply; send {"id": "...", "args": {...}}'
        ) from None
    if not isinstance(body, dict):
        raise CommandError('payload must be a JSON object like {"id": "...", "args": {...}}')
    req_id = body.get("id")
    if req_id is not None:
        if isinstance(req_id, bool) or not isinstance(req_id, str | int):
            raise CommandError("id must be a string or an integer")
        req_id = str(req_id)
        if len(req_id) > MAX_ID_CHARS:
            raise CommandError(f"id is longer than {MAX_ID_CHARS} characters")
    args = body.get("args", {})
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise CommandError('args must be a JSON object, e.g. {"seconds": 10}')
    return CommandRequest(name, req_id, args)


def request_id_of(payload: bytes) -> str | None:
    """The id of a request even when the rest of it is malformed (for the error reply)."""
    try:
        body = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None
    if isinstance(body, dict) and isinstance(body.get("id"), str | int):
        value = str(body["id"])
        return value if len(value) <= MAX_ID_CHARS else None
    return None


def reply(
    name: str, req_id: str | None, *, result: dict[str, Any] | None = None, error: str = ""
) -> dict[str, Any]:
    """The reply object for a command."""
    out: dict[str, Any] = {"command": name, "id": req_id, "ok": not error, "time": _now()}
    if error:
        out["error"] = error
    else:
        out["result"] = result or {}
    return out


def _now() -> str:
    return rfc3339(datetime.now(UTC))


def execute(
    name: str,
    payload: bytes,
    ctx: CommandContext,
    handlers: dict[str, CommandHandler] | None = None,
) -> dict[str, Any]:
    """Run one command and return its reply; never raises."""
    table = COMMANDS if handlers is None else handlers
    try:
        request = parse_request(name, payload)
    except CommandError as exc:
        _LOGGER.warning("malformed %s command: %s", name, exc)
        return reply(name, request_id_of(payload), error=f"malformed command: {exc}")
    handler = table.get(name)
    if handler is None:
        _LOGGER.warning("unknown command %r", name)
        return reply(
            name, request.id, error=f"unknown command {name!r}; known: {', '.join(sorted(table))}"
        )
    try:
        result = handler(ctx, request.args)
    except CommandError as exc:
        _LOGGER.warning("command %s failed: %s", name, exc)
        return reply(name, request.id, error=str(exc))
    except Exception as exc:
        _LOGGER.exception("command %s crashed", name)
        return reply(name, request.id, error=f"internal error: {type(exc).__name__}: {exc}")
    _LOGGER.info("command %s done", name)
    return reply(name, request.id, result=result)


# ------------------------------------------------------------------- handlers
def cmd_ping(ctx: CommandContext, _args: dict[str, Any]) -> dict[str, Any]:
    """Answer with the version and uptime: is the device there and which build runs."""
    return {"pong": True, "version": __version__, "uptime_s": round(time.time() - ctx.started, 1)}


def cmd_reload_config(ctx: CommandContext, _args: dict[str, Any]) -> dict[str, Any]:
    """Re-read the configuration file and apply it live (edge.reload); report what changed.

    A broken file is reported with every problem and nothing changes. Keys that cannot
    change while running are listed under ``needs_restart``. A changed ``mqtt`` section
    replaces this relay only after the reply is on its way (the relay is the one answering).
    """
    from edge.reload import ReloadError, reload_from_thread, replace_later

    services = ctx.services
    try:
        result = reload_from_thread(services, defer=(RELAY_COMPONENT,))
    except ReloadError as exc:
        raise CommandError(str(exc)) from None
    if RELAY_COMPONENT in result["rebuilt_components"]:

        def replace_relay() -> None:
            ctx.flush_replies()
            replace_later(services, RELAY_COMPONENT)

        ctx.after_reply.append(replace_relay)
    return result


def cmd_print_test(ctx: CommandContext, _args: dict[str, Any]) -> dict[str, Any]:
    """Print a test page on the receipt printer (store IT checks paper and connection)."""
    printer = ctx.services.printer
    if printer is None:
        raise CommandError("printer disabled")
    job = printer.submit_test_page()
    return {"job": job}


def cmd_identify(ctx: CommandContext, args: dict[str, Any]) -> dict[str, Any]:
    """Flash the kiosk screen so staff can tell which kiosk this is."""
    seconds = args.get("seconds", IDENTIFY_DEFAULT_S)
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise CommandError("args.seconds must be a number")
    if not 0 < seconds <= IDENTIFY_MAX_S:
        raise CommandError(f"args.seconds must be between 0 and {IDENTIFY_MAX_S:g}")
    ctx.services.publish(new_event("local.kiosk.identify", {"seconds": float(seconds)}))
    return {"seconds": float(seconds)}


def cmd_sync_catalog(ctx: CommandContext, _args: dict[str, Any]) -> dict[str, Any]:
    """Subscribe to the retained catalog again so the broker resends every record."""
    ctx.resync_catalog()
    return {"resubscribed": True}


# The command table: name -> handler. Other features may add entries at import time.
COMMANDS: Final[dict[str, CommandHandler]] = {
    "ping": cmd_ping,
    "reload-config": cmd_reload_config,
    "print-test": cmd_print_test,
    "identify": cmd_identify,
    "sync-catalog": cmd_sync_catalog,
}
