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
    names = sorted(
        info.name.removeprefix("bench_")
        for info in pkgutil.iter_modules(bench_pkg.__path__)
        if info.name.startswith("bench_")
    )
    chosen = [name for name in names if not prefixes or name.startswith(prefixes)]
    if not chosen:
        print(
            f"scripts/bench: no benchmark matches {' '.join(argv)}; choose from {', '.join(names)}",
            file=sys.stderr,
        )
        return 2
    for short in chosen:
        module = importlib.import_module(f"tests.bench.bench_{short}")
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
