"""CPU accounting for bench/read.py: cores used per process group between two snapshots,
and "other" (the machine's user + system time outside every group: other people's work)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _cmdline(pid: int) -> str:
    return _read(f"/proc/{pid}/cmdline").replace("\0", " ")


def proc_cpu_s(pid: int) -> float:
    try:
        fields = _read(f"/proc/{pid}/stat").rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (IndexError, ValueError):
        return 0.0


def _machine_ticks() -> tuple[int, int, int]:
    """Jiffies over all CPUs: (user + nice + system, irq + softirq, steal)."""
    values = [int(v) for v in _read("/proc/stat").splitlines()[0].split()[1:]]
    return values[0] + values[1] + values[2], values[5] + values[6], values[7]


def server_groups() -> dict[str, list[int]]:
    """The shared servers' processes, by name."""
    groups: dict[str, list[int]] = {"PostgreSQL": [], "Redis": [], "Elasticsearch": []}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        comm = _read(f"/proc/{pid}/comm").strip()
        if comm == "postgres":
            groups["PostgreSQL"].append(pid)
        elif comm == "redis-server":
            groups["Redis"].append(pid)
        elif comm == "java" and "org.elasticsearch" in _cmdline(pid):
            groups["Elasticsearch"].append(pid)
    return groups


@dataclass
class CpuSnapshot:
    at: float
    by_pid: dict[str, dict[int, float]]
    ticks: tuple[int, int, int]

    @classmethod
    def take(cls, processes: dict[str, int]) -> CpuSnapshot:
        groups = {name: [pid] for name, pid in processes.items()}
        groups |= server_groups()
        groups["bench client"] = [os.getpid()]
        return cls(
            at=time.perf_counter(),
            by_pid={name: {pid: proc_cpu_s(pid) for pid in pids} for name, pids in groups.items()},
            ticks=_machine_ticks(),
        )

    def cores_until(
        self, later: CpuSnapshot, extra: dict[str, float] | None = None
    ) -> dict[str, float]:
        """Cores (CPU seconds per wall second) per group; `other`: what the machine spent
        outside them; interrupts (loopback networking) apart."""
        wall = max(later.at - self.at, 1e-9)
        out: dict[str, float] = {}
        for name, pids in later.by_pid.items():
            before = self.by_pid.get(name, {})
            out[name] = sum(cpu - before.get(pid, cpu) for pid, cpu in pids.items()) / wall
        for name, seconds in (extra or {}).items():  # e.g. a child that ended in between
            out[name] = seconds / wall
        busy, irq, _ = (
            (b - a) / CLK_TCK / wall for a, b in zip(self.ticks, later.ticks, strict=True)
        )
        out["other"] = max(0.0, busy - sum(out.values()))
        out["irq+softirq"] = irq
        out["machine busy"] = busy + irq
        return {name: round(value, 2) for name, value in out.items()}


def busy_cores(seconds: float) -> float:
    """Cores the machine spends (user + system) over `seconds`."""
    a = _machine_ticks()[0]
    time.sleep(seconds)
    return round((_machine_ticks()[0] - a) / CLK_TCK / seconds, 2)


def cores_text(cores: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:.2f}" for name, value in cores.items() if value >= 0.005)
