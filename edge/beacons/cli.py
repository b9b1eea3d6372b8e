"""`kiosk-edge beacons replay|record`: proximity events from a recording, or a new recording.

``replay`` reads recorded advertisements and prints the proximity events as CloudEvents JSON,
one per line (with ``--frames``: every decoded frame instead). Event ids are derived from the
content, so the same recording and configuration always print the same lines. ``record``
writes live advertisements from the radio in the same JSON-lines shape.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from edge.beacons.allowlist import AllowlistError
from edge.beacons.frames import frame_to_dict, parse_advertisement
from edge.beacons.proximity import ProximityEvent
from edge.beacons.replay import Advertisement, RecordError, format_record, read_recording
from edge.config import Config
from edge.events import CONTENT_TYPE, SPEC_VERSION, rfc3339, source_uri

_LOGGER = logging.getLogger(__name__)

EXIT_OK: Final = 0
EXIT_FAILURE: Final = 1
EXIT_USAGE: Final = 2
# Namespace of the content-derived event ids printed by `replay` (uuid5).
REPLAY_ID_NAMESPACE: Final = uuid.UUID("6c1c7d1e-7a0b-4f51-9a55-0d2f3c1b8e21")


def register(subparsers: Any, add_config_option: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add `beacons replay` and `beacons record` to the kiosk-edge command line."""
    parser = subparsers.add_parser("beacons", help="replay or record BLE advertisements")
    sub = parser.add_subparsers(dest="beacons_command", metavar="ACTION", required=True)

    p = sub.add_parser("replay", help="print proximity events (or decoded frames) for a recording")
    p.add_argument("file", metavar="FILE.jsonl", help="recorded advertisements, one per line")
    p.add_argument(
        "--frames", action="store_true", help="print every decoded frame instead of events"
    )
    add_config_option(p)
    p.set_defaults(func=_cmd_replay)

    p = sub.add_parser(
        "record",
        help="record every live advertisement (raw addresses included: keep the file on site)",
    )
    p.add_argument("file", metavar="FILE.jsonl", help="file to write ('-' for stdout)")
    p.add_argument(
        "--duration", type=float, metavar="S", help="stop after S seconds (default: Ctrl-C)"
    )
    p.add_argument("--adapter", help="Bluetooth adapter (default: the configured one)")
    add_config_option(p)
    p.set_defaults(func=_cmd_record)


def _cloudevent(config: Config, event: ProximityEvent, index: int) -> dict[str, Any]:
    source = source_uri(config.device.store_id, config.device.device_id)
    digest = json.dumps([event.type, event.t, event.data, index], sort_keys=True)
    return {
        "specversion": SPEC_VERSION,
        "id": str(uuid.uuid5(REPLAY_ID_NAMESPACE, f"{source}|{digest}")),
        "source": source,
        "type": event.type,
        "time": rfc3339(datetime.fromtimestamp(event.t, UTC)),
        "datacontenttype": CONTENT_TYPE,
        "data": event.data,
    }


def _salt(config: Config) -> str:
    from edge.privacy import load_or_create_salt

    try:
        return load_or_create_salt(config.device.identity_salt, config.device.data_dir)
    except OSError as exc:
        raise SystemExit(
            _fail(
                f"no identity salt: set device.identity_salt or make {config.device.data_dir} "
                f"writable ({exc.strerror})"
            )
        ) from None


def _fail(message: str) -> int:
    from edge.cli import fail

    return fail(message)


def _print(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n")


def _each_advertisement(path: Path, handle: Callable[[Advertisement], None]) -> int:
    """Hand every valid line of a recording to ``handle``; bad lines go to stderr, skipped."""
    try:
        for lineno, item in read_recording(path):
            if isinstance(item, RecordError):
                print(f"{path}:{lineno}: skipped: {item}", file=sys.stderr)
            else:
                handle(item)
    except BrokenPipeError:
        raise  # stdout's reader went away: not a problem with the recording
    except OSError as exc:
        return _fail(f"cannot read {path}: {exc}")
    return EXIT_OK


def _print_frames(adv: Advertisement) -> None:
    """`replay --frames`: every decoded frame of one advertisement, with its time and address."""
    for frame in parse_advertisement(adv.manufacturer_data, adv.service_data):
        _print({"t": adv.t, "address": adv.address, **frame_to_dict(frame)})


def _cmd_replay(args: argparse.Namespace) -> int:
    from edge.beacons.component import build_engine
    from edge.cli import optional_config

    path = Path(args.file)
    if not path.is_file():
        return _fail(f"recording {path} not found; give the path of a .jsonl recording")
    config = optional_config(args)
    if args.frames:
        return _each_advertisement(path, _print_frames)
    try:
        engine = build_engine(config.beacons, _salt(config))
    except (AllowlistError, ValueError) as exc:
        return _fail(f"bad beacons configuration: {exc}")
    if engine.allowlist.empty:
        print(
            "kiosk-edge: the beacons allowlist is empty, so no event can come out; "
            "give --config with beacons.ibeacon_uuids, app_uuids or eddystone_namespaces",
            file=sys.stderr,
        )
    index = 0

    def emit(events: list[ProximityEvent]) -> None:
        nonlocal index
        for event in events:
            index += 1
            _print(_cloudevent(config, event, index))

    def feed(adv: Advertisement) -> None:
        engine.feed(adv.t, adv.address, adv.rssi, adv.manufacturer_data, adv.service_data)
        if engine.events:
            emit(engine.take_events())

    status = _each_advertisement(path, feed)
    if status != EXIT_OK:
        return status
    engine.flush()
    emit(sorted(engine.take_events(), key=lambda e: e.t))
    return EXIT_OK


def _cmd_record(args: argparse.Namespace) -> int:
    from edge.beacons.scanner import async_record
    from edge.cli import optional_config

    config = optional_config(args)
    adapter = args.adapter or config.beacons.adapter
    if not re.fullmatch(r"hci[0-9]{1,2}", adapter):
        return _fail(f"--adapter {adapter!r} is not an adapter name; use hci0, hci1, ...")
    if args.duration is not None and args.duration <= 0:
        return _fail("--duration must be a positive number of seconds")
    if args.file == "-":
        out = sys.stdout
    else:
        try:
            out = Path(args.file).open("a", encoding="utf-8")  # noqa: SIM115 - closed below
        except OSError as exc:
            return _fail(f"cannot write {args.file}: {exc.strerror}")
    count = 0

    def write(adv: Advertisement) -> None:
        nonlocal count
        count += 1
        out.write(format_record(adv) + "\n")
        out.flush()

    error = ""
    try:
        source = asyncio.run(
            async_record(adapter, config.beacons.scanning_mode, write, args.duration)
        )
        error = source.last_error
    except KeyboardInterrupt:
        pass
    finally:
        if out is not sys.stdout:
            out.close()
    if count == 0 and error:
        print(
            f"kiosk-edge: nothing recorded: scanning on {adapter} failed ({error}); "
            "check the adapter with `kiosk-edge doctor` or choose another with --adapter",
            file=sys.stderr,
        )
        return EXIT_FAILURE
    print(f"recorded {count} advertisements", file=sys.stderr)
    return EXIT_OK
