"""The `kiosk-edge` command line.

Exit codes: 0 ok, 1 a failure was found (or nothing was found, for look-ups), 2 bad usage or
bad input. Errors go to stderr as one clear sentence.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

from edge import __version__
from edge.config import Config, ConfigError, config_path_from, load_config, redacted

EXIT_OK: Final = 0
EXIT_FAILURE: Final = 1
EXIT_USAGE: Final = 2
# What a shell reports for a command killed by SIGPIPE (128 + 13): its reader closed the pipe.
EXIT_SIGPIPE: Final = 141

Command = Callable[[argparse.Namespace], int]


class UsageError(Exception):
    """Bad usage or bad input: printed as one sentence, exit status 2."""


def fail(message: str) -> int:
    """Print an error sentence to stderr and return the bad-input exit status."""
    print(f"kiosk-edge: {message}", file=sys.stderr)
    return EXIT_USAGE


def load_config_or_exit(args: argparse.Namespace) -> Config:
    """The configuration named by --config / $KIOSK_EDGE_CONFIG; exits 2 with the problems."""
    path = config_path_from(getattr(args, "config", None))
    try:
        return load_config(path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"{path}: {problem}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None


def optional_config(args: argparse.Namespace) -> Config:
    """The configuration if one was given or exists at the default place, else defaults."""
    explicit = getattr(args, "config", None)
    path = config_path_from(explicit)
    if explicit or path.exists():
        return load_config_or_exit(args)
    return Config()


def _cmd_run(args: argparse.Namespace) -> int:
    from edge.daemon import run

    return run(config_path_from(args.config))


def _cmd_config_check(args: argparse.Namespace) -> int:
    path = Path(args.path) if args.path else config_path_from(args.config)
    try:
        load_config(path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"{path}: {problem}", file=sys.stderr)
        return EXIT_USAGE
    print(f"{path}: ok")
    return EXIT_OK


def _cmd_config_show(args: argparse.Namespace) -> int:
    config = optional_config(args)
    print(json.dumps(redacted(config), indent=2, ensure_ascii=False))
    return EXIT_OK


def _add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="configuration file (default: $KIOSK_EDGE_CONFIG, else /etc/kiosk-edge/edge.toml)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser; every subcommand takes --config."""
    parser = argparse.ArgumentParser(
        prog="kiosk-edge", description="In-store proximity and kiosk appliance."
    )
    parser.add_argument("--version", action="version", version=f"kiosk-edge {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("run", help="run the appliance daemon")
    _add_config_option(p)
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("config", help="check or show the configuration")
    csub = p.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    c = csub.add_parser("check", help="validate a configuration file (exit 2 on problems)")
    c.add_argument("path", nargs="?", help="file to check (default: the --config file)")
    _add_config_option(c)
    c.set_defaults(func=_cmd_config_check)
    c = csub.add_parser("show", help="print the effective configuration, secrets redacted")
    _add_config_option(c)
    c.set_defaults(func=_cmd_config_show)

    for register in _feature_commands():
        register(sub, _add_config_option)
    return parser


# Feature modules that add subcommands: each has ``register(subparsers, add_config_option)``.
FEATURE_COMMAND_MODULES: Final[tuple[str, ...]] = (
    "edge.catalog.cli",
    "edge.takeaway.cli",
    "edge.relay.cli",
    "edge.storeit_cli",
    "edge.beacons.cli",
    "edge.barcodes.cli",
)


def _feature_commands() -> list[Callable[..., None]]:
    """Subcommand registrars of the feature packages (each adds its own subparsers)."""
    import importlib

    return [importlib.import_module(name).register for name in FEATURE_COMMAND_MODULES]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `kiosk-edge` console script."""
    from edge.logs import setup_logging

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on bad usage, 0 on --help
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    setup_logging("WARNING" if args.command != "run" else "INFO")
    func: Command = args.func
    try:
        return func(args)
    except UsageError as exc:
        return fail(str(exc))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader went away (`... | head`): stop quietly, like cat
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_SIGPIPE


if __name__ == "__main__":
    sys.exit(main())
