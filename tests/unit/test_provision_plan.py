"""Provisioning's pure helpers: broker and printer URLs, config.txt block, cmdline tokens."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from edge.provision import (
    BLOCK_BEGIN,
    BLOCK_END,
    ProvisionError,
    check_printer_url,
    merge_block,
    merge_cmdline,
    parse_broker_url,
    render_toml,
)

BLOCK = f"{BLOCK_BEGIN}\ndtparam=watchdog=on\n{BLOCK_END}\n"


@pytest.mark.parametrize(
    ("url", "host", "port", "tls"),
    [
        ("mqtts://broker.example", "broker.example", 8883, True),
        ("mqtt://broker.example", "broker.example", 1883, False),
        ("mqtts://10.0.0.5:9883", "10.0.0.5", 9883, True),
        ("mqtt://[2001:db8::1]:1884", "2001:db8::1", 1884, False),
    ],
)
def test_broker_urls(url: str, host: str, port: int, tls: bool) -> None:
    """Scheme picks TLS and the default port."""
    broker = parse_broker_url(url)
    assert (broker.host, broker.port, broker.tls) == (host, port, tls)


@pytest.mark.parametrize(
    "url", ["broker.example", "https://b", "mqtt://", "mqtt://b/path", "mqtt://b:0x1", "mqtt://b c"]
)
def test_bad_broker_urls(url: str) -> None:
    """Anything but scheme://host[:port] is refused with the expected form in the message."""
    with pytest.raises(ProvisionError, match="--broker"):
        parse_broker_url(url)


def test_printer_urls() -> None:
    """The four printer schemes, each with its required parts."""
    for good in (
        "usb://04b8:0202",
        "tcp://192.0.2.1:9100",
        "serial:///dev/ttyUSB0",
        "file:///tmp/r",
    ):
        check_printer_url(good)
    for bad in ("usb://04b8", "tcp://:9100", "serial://ttyUSB0", "lp://x"):
        with pytest.raises(ProvisionError, match="--printer"):
            check_printer_url(bad)


def test_block_appended_then_replaced() -> None:
    """Our block is appended once, then replaced in place; other lines stay."""
    once = merge_block("dtparam=audio=on\n", BLOCK)
    assert once == "dtparam=audio=on\n\n" + BLOCK
    assert merge_block(once, BLOCK) == once
    newer = BLOCK.replace("watchdog=on", "watchdog=on\ndisable_splash=1")
    updated = merge_block(once + "[pi5]\nfoo=1\n", newer)
    assert updated.count(BLOCK_BEGIN) == 1
    assert "disable_splash=1" in updated
    assert updated.endswith("[pi5]\nfoo=1\n")


def test_cmdline_tokens_replaced_by_key() -> None:
    """A token with the same key is replaced; one video= per connector; one line out."""
    line = "console=tty1 root=PARTUUID=1-02 consoleblank=600 video=HDMI-A-1:800x600 quiet\n"
    merged = merge_cmdline(line, "consoleblank=0 quiet video=HDMI-A-1:1920x1080@60D,rotate=90")
    assert merged == (
        "console=tty1 root=PARTUUID=1-02 consoleblank=0 video=HDMI-A-1:1920x1080@60D,rotate=90 "
        "quiet\n"
    )
    assert merge_cmdline(merged, "consoleblank=0 quiet video=HDMI-A-1:1920x1080@60D,rotate=90") == (
        merged
    )


def test_render_toml_round_trips() -> None:
    """Nested tables render as TOML that parses back to the same data."""
    data = {
        "device": {"store_id": "s1", "locale": "fr_FR"},
        "mqtt": {"port": 8883, "enabled": True, "tls": {"enabled": True, "cert_file": "/x"}},
    }
    assert tomllib.loads(render_toml(data)) == data


def test_post_install_on_the_live_system() -> None:
    """On / it creates users and directories and reloads systemd and udev; into an image it
    leaves that to the first boot."""
    from pathlib import Path

    from edge.provision import post_install

    ran: list[list[str]] = []
    lines = post_install(Path("/"), run=ran.append)
    commands = [argv[0] for argv in ran]
    for tool in ("systemd-sysusers", "systemd-tmpfiles", "systemctl", "udevadm"):
        assert tool in commands
    assert any("reboot" in line for line in lines)
    ran.clear()
    image_lines = post_install(Path("/tmp"), run=ran.append)
    assert ran == []
    assert "first boot" in image_lines[0]


def test_install_under_home_is_refused_on_the_live_system(tmp_path: Path) -> None:
    """ProtectHome=yes hides /home and /root from the daemon: refused before any write."""
    from edge.provision import Request, hidden_install_paths, make_plan

    assert hidden_install_paths(Path("/home/pi/kiosk-edge/.venv"), Path("/opt/k")) == [
        Path("/home/pi/kiosk-edge/.venv")
    ]
    assert hidden_install_paths(Path("/opt/kiosk-edge/.venv"), Path("/root/src")) == [
        Path("/root/src")
    ]
    assert hidden_install_paths(Path("/opt/kiosk-edge/.venv"), Path("/opt/kiosk-edge")) == []
    live = Request(
        "paris-01", "kiosk-3", "mqtts://broker.example", root=Path("/"), dry_run=True,
        venv=Path("/home/pi/kiosk-edge/.venv"),
    )  # fmt: skip
    with pytest.raises(ProvisionError, match=r"ProtectHome=yes.*/opt/kiosk-edge"):
        make_plan(live)
    image = Request(
        "paris-01", "kiosk-3", "mqtts://broker.example", root=tmp_path,
        venv=Path("/home/pi/kiosk-edge/.venv"),
    )  # fmt: skip
    assert any("ProtectHome=yes" in note for note in make_plan(image).notes)
