"""The data generators under tests/data (scripts, not a package) imported as modules."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Final

DATA_DIR: Final = Path(__file__).resolve().parents[1] / "data"


def load_script(relative: str) -> ModuleType:
    """tests/data/``relative`` (e.g. "barcodes/generate.py") as a module, loaded once."""
    path = DATA_DIR / relative
    name = "tests_data_" + relative.removesuffix(".py").replace("/", "_")
    loaded = sys.modules.get(name)
    if loaded is not None:
        return loaded
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # before running it: dataclasses look their module up
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module
