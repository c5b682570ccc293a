"""What every benchmark script shares: its console on stderr, its error, progress lines and
a free loopback port. Scripts run as `python bench/<name>.py`, so this directory is on
sys.path and `from _common import ...` finds this module."""

from __future__ import annotations

import socket

from rich.console import Console

err = Console(stderr=True, highlight=False)


class BenchError(RuntimeError):
    pass


def step(text: str) -> None:
    err.print(f"[bold cyan]>[/bold cyan] {text}")


def note(text: str) -> None:
    err.print(f"  {text}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
