"""The systemd units, sysusers and tmpfiles files: verified by systemd's own tools."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

SYSTEMD_DIR = REPO_ROOT / "systemd"
UNITS = ("kiosk-edge.service", "kiosk-browser.service")
# Where the units expect the venv on a kiosk; the test copies point at the venv running us.
INSTALLED_VENV = "/opt/kiosk-edge/.venv"
# Programs a kiosk has but this machine need not: the copy runs /usr/bin/env instead, so
# `verify` still checks that the command line parses and the binary exists.
ABSENT_ON_TEST_MACHINE = ("/usr/bin/cage",)
# `systemd-analyze security` exposure (×10): the daemon is sandboxed tightly, the browser
# keeps user namespaces for Chromium's own sandbox.
SECURITY_THRESHOLD = {"kiosk-edge.service": 30, "kiosk-browser.service": 50}

needs_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed"
)


def unit_copy(name: str, dest: Path) -> Path:
    """A copy of a unit whose paths point at this venv (and substitutes for absent programs)."""
    text = (SYSTEMD_DIR / name).read_text(encoding="utf-8")
    text = text.replace(INSTALLED_VENV, str(Path(sys.prefix)))
    for program in ABSENT_ON_TEST_MACHINE:
        if not Path(program).exists():
            text = text.replace(program, "/usr/bin/env")
    path = dest / name
    path.write_text(text, encoding="utf-8")
    return path


def directives(name: str) -> dict[str, list[str]]:
    """Every Key=value of a unit, values in order (keys repeat, e.g. DeviceAllow)."""
    out: dict[str, list[str]] = {}
    for line in (SYSTEMD_DIR / name).read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            out.setdefault(key.strip(), []).append(value.strip())
    return out


@needs_analyze
@pytest.mark.parametrize("name", UNITS)
def test_verify_is_silent(name: str, tmp_path: Path) -> None:
    """`systemd-analyze verify` exits 0 and prints nothing: unknown keys are only warnings."""
    unit = unit_copy(name, tmp_path)
    proc = subprocess.run(
        ["systemd-analyze", "verify", "--recursive-errors=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""
    assert proc.stderr.strip() == ""


@needs_analyze
def test_verify_would_catch_a_typo(tmp_path: Path) -> None:
    """The strict check fails on a misspelt key (so the test above can fail)."""
    unit = unit_copy("kiosk-edge.service", tmp_path)
    unit.write_text(unit.read_text().replace("ProtectHome=yes", "ProtectHomes=yes"))
    proc = subprocess.run(
        ["systemd-analyze", "verify", "--recursive-errors=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "ProtectHomes" in proc.stdout + proc.stderr


@needs_analyze
@pytest.mark.parametrize("name", UNITS)
def test_security_exposure_below_threshold(name: str, tmp_path: Path) -> None:
    """The sandbox keeps the exposure score at or under the agreed threshold."""
    unit = unit_copy(name, tmp_path)
    proc = subprocess.run(
        [
            "systemd-analyze",
            "security",
            "--offline=true",
            f"--threshold={SECURITY_THRESHOLD[name]}",
            "--no-pager",
            str(unit),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-600:] + proc.stderr
    score = re.search(r"Overall exposure level for \S+: ([0-9.]+)", proc.stdout)
    assert score is not None
    assert float(score.group(1)) * 10 <= SECURITY_THRESHOLD[name]


def test_daemon_unit_contract() -> None:
    """The daemon unit has the settings issue 8 asks for."""
    d = directives("kiosk-edge.service")
    assert d["Type"] == ["notify"]
    assert d["Restart"] == ["on-failure"]
    assert int(d["WatchdogSec"][0]) > 0
    assert d["User"] == ["kiosk-edge"]
    assert set(d["SupplementaryGroups"][0].split()) == {
        "bluetooth",
        "video",
        "lp",
        "dialout",
        "input",
    }
    assert d["ProtectSystem"] == ["strict"]
    assert d["StateDirectory"] == ["kiosk-edge"]
    assert d["ProtectHome"] == ["yes"]
    assert d["PrivateTmp"] == ["yes"]
    assert d["NoNewPrivileges"] == ["yes"]
    assert d["CapabilityBoundingSet"] == [""]
    assert d["RestrictAddressFamilies"][0].split() == [
        "AF_UNIX",
        "AF_INET",
        "AF_INET6",
        "AF_BLUETOOTH",
        "AF_NETLINK",
    ]
    assert d["SystemCallFilter"] == ["@system-service"]
    # systemctl reload: SIGHUP, which the daemon answers with a live configuration reload.
    assert d["ExecReload"] == ["/bin/kill -HUP $MAINPID"]


def test_browser_unit_contract() -> None:
    """The browser: kiosk mode, no pinch zoom or error dialogs, restarted, waits for healthz."""
    d = directives("kiosk-browser.service")
    command = d["ExecStart"][0]
    assert command.startswith("/usr/bin/cage ")
    for flag in (
        "--kiosk",
        "--noerrdialogs",
        "--disable-pinch",
        "--overscroll-history-navigation=0",
    ):
        assert flag in command
    assert d["Restart"] == ["always"]
    assert "wait-ui" in d["ExecStartPre"][0]
    assert "sleep" not in " ".join(d["ExecStartPre"])


@pytest.mark.parametrize("name", UNITS)
def test_every_setting_has_its_reason(name: str) -> None:
    """Each group of settings in [Service] follows a comment saying why."""
    lines = (SYSTEMD_DIR / name).read_text(encoding="utf-8").splitlines()
    start = lines.index("[Service]")
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("["))
    previous = "#"  # the line before the current one ("" for a blank line)
    for line in lines[start + 1 : end]:
        if line and not line.startswith("#"):
            assert previous.startswith("#") or "=" in previous, f"no reason before {line!r}"
        previous = line


@pytest.mark.skipif(shutil.which("systemd-sysusers") is None, reason="no systemd-sysusers")
def test_sysusers_and_tmpfiles_into_a_root(tmp_path: Path) -> None:
    """sysusers creates both users in their groups; tmpfiles makes the directories."""
    (tmp_path / "etc").mkdir()
    subprocess.run(
        ["systemd-sysusers", f"--root={tmp_path}", str(SYSTEMD_DIR / "sysusers.d/kiosk-edge.conf")],
        check=True,
        capture_output=True,
        timeout=60,
    )
    passwd = (tmp_path / "etc/passwd").read_text()
    assert re.search(r"^kiosk-edge:x:\d+:\d+:", passwd, re.M)
    assert re.search(r"^kiosk-browser:x:\d+:\d+:", passwd, re.M)
    groups = {
        line.split(":")[0]: line.split(":")[3].split(",")
        for line in (tmp_path / "etc/group").read_text().splitlines()
    }
    for group in ("bluetooth", "video", "lp", "dialout", "input"):
        assert "kiosk-edge" in groups[group]
    if shutil.which("systemd-tmpfiles") is None:
        return
    subprocess.run(
        [
            "systemd-tmpfiles",
            f"--root={tmp_path}",
            "--create",
            str(SYSTEMD_DIR / "tmpfiles.d/kiosk-edge.conf"),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    assert (tmp_path / "etc/kiosk-edge/credentials").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "var/lib/kiosk-edge").stat().st_mode & 0o777 == 0o750
