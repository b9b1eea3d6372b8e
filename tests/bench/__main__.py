"""Run every benchmark module (or those whose name starts with a given prefix)."""

from __future__ import annotations

import importlib
import pkgutil
import sys
import traceback

import tests.bench as bench_pkg


def main(argv: list[str]) -> int:
    """Import each bench_* module, run it and print its figures as they come."""
    prefixes = tuple(argv)
    failed = 0
    for info in sorted(pkgutil.iter_modules(bench_pkg.__path__), key=lambda m: m.name):
        if not info.name.startswith("bench_"):
            continue
        short = info.name.removeprefix("bench_")
        if prefixes and not short.startswith(prefixes):
            continue
        module = importlib.import_module(f"tests.bench.{info.name}")
        try:
            for figure in module.run():
                print(figure.line(), flush=True)
        except Exception:
            failed += 1
            print(f"# {short}: benchmark failed", file=sys.stderr)
            traceback.print_exc()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
