"""scripts/bench's runner: one line per figure in the agreed shape, unknown names refused."""

from __future__ import annotations

import subprocess
import sys

from tests.bench import Figure
from tests.conftest import REPO_ROOT


def test_figure_line_with_and_without_peer() -> None:
    """`name value unit`, plus `peer=NAME:VALUE ratio=R` when a peer ran in the same run."""
    assert Figure("relay.backlog_drain_s", 6.25, "s", target="< 20").line() == (
        "relay.backlog_drain_s 6.25 s target=<20"
    )
    line = Figure("relay.durable_events_per_s", 6000, "events/s", "paho_qos1", 8000).line()
    assert line == "relay.durable_events_per_s 6000 events/s peer=paho_qos1:8000 ratio=0.75"


def test_unknown_benchmark_name_is_a_usage_error() -> None:
    """A name no benchmark starts with exits 2 and lists the names (it used to print nothing
    and exit 0, which looked like a benchmark that measured nothing)."""
    result = subprocess.run(
        [sys.executable, "-m", "tests.bench", "no-such-area"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert "no benchmark matches no-such-area" in result.stderr
    assert "relay" in result.stderr
