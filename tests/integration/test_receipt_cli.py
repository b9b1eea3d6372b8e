"""`kiosk-edge receipt`: render to a file or stdout, print to a network printer, clear errors."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import KIOSK_EDGE, ConfigWriter, free_port
from tests.support.escpos_text import decode
from tests.support.printer_listener import PrinterListener

CATALOG = Path(__file__).resolve().parent.parent / "data" / "receipts" / "comparison.json"


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*KIOSK_EDGE, "receipt", *args], check=False, capture_output=True, env=env, timeout=60
    )


def test_render_to_file_and_stdout(
    write_config: ConfigWriter, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    """--out FILE writes the receipt bytes at the asked width; --test --out - to stdout."""
    config = write_config()
    out = tmp_path / "r.bin"
    done = run(
        [
            "--config",
            str(config),
            "--catalog",
            str(CATALOG),
            "--sku",
            "TV-001",
            "--sku",
            "TV-002",
            "--width",
            "32",
            "--out",
            str(out),
        ],
        cli_env,
    )
    assert done.returncode == 0, done.stderr
    lines = decode(out.read_bytes()).lines
    assert all(len(line) <= 32 for line in lines)
    assert any("Éclat" in line for line in lines)
    page = run(["--config", str(config), "--test", "--out", "-", "--lang", "en"], cli_env)
    assert page.returncode == 0, page.stderr
    assert "Test page" in decode(page.stdout).lines


def test_print_to_network_printer_and_refused(
    write_config: ConfigWriter, cli_env: dict[str, str]
) -> None:
    """--printer tcp://...: exit 0 once printed; a refused connection is exit 1 with the reason."""
    config = write_config()
    port = free_port()
    listener = PrinterListener(port).start()
    try:
        done = run(
            [
                "--config",
                str(config),
                "--catalog",
                str(CATALOG),
                "--sku",
                "TV-003",
                "--printer",
                f"tcp://127.0.0.1:{port}",
            ],
            cli_env,
        )
        assert done.returncode == 0, done.stderr
        assert any("Crème brûlée" in line for line in decode(listener.received).lines)
    finally:
        listener.stop()
    refused = run(
        ["--config", str(config), "--test", "--printer", f"tcp://127.0.0.1:{port}"], cli_env
    )
    assert refused.returncode == 1
    assert b"needs attention: unreachable" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1  # one sentence, one line


def test_bad_input_exit_2(write_config: ConfigWriter, cli_env: dict[str, str]) -> None:
    """Unknown SKU, no SKU, bad URL: exit 2 with one sentence naming the problem."""
    config = write_config()
    base = ["--config", str(config), "--catalog", str(CATALOG)]
    for args, message in (
        ([*base, "--sku", "NOPE"], b"unknown SKU(s) NOPE"),
        (base, b"give at least one --sku"),
        ([*base, "--sku", "TV-001", "--printer", "lpt://1"], b"unknown scheme"),
        ([*base, "--sku", "TV-001", "--out", "x", "--printer", "tcp://h"], b"not both"),
    ):
        done = run(args, cli_env)
        assert done.returncode == 2, args
        assert message in done.stderr
        assert done.stderr.count(b"\n") == 1


def test_print_test_command_prints_the_test_page(
    write_config: ConfigWriter, cli_env: dict[str, str]
) -> None:
    """`kiosk-edge print-test` is `receipt --test`: the test page reaches the printer."""
    config = write_config()
    port = free_port()
    listener = PrinterListener(port).start()
    try:
        done = subprocess.run(
            [*KIOSK_EDGE, "print-test", "--config", str(config), "--lang", "en",
             "--printer", f"tcp://127.0.0.1:{port}"],
            check=False, capture_output=True, env=cli_env, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "Test page" in decode(listener.received).lines
    finally:
        listener.stop()
