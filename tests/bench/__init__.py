"""Benchmarks run by scripts/bench: each bench_*.py module has ``run() -> Iterable[Figure]``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    """One measured figure, optionally beside a peer measured in the same run."""

    name: str
    value: float
    unit: str
    peer_name: str = ""
    peer_value: float | None = None
    target: str = ""  # e.g. ">= 200000" (informative)

    def line(self) -> str:
        """`name value unit [peer=NAME:VALUE ratio=R] [target=...]`."""
        out = f"{self.name} {self.value:.6g} {self.unit}"
        if self.peer_value is not None:
            ratio = self.value / self.peer_value if self.peer_value else float("inf")
            out += f" peer={self.peer_name}:{self.peer_value:.6g} ratio={ratio:.3g}"
        if self.target:
            out += f" target={self.target.replace(' ', '')}"
        return out
