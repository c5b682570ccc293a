"""Closed-loop HTTP load with wrk (C, one thread): cheap enough on 2 cores to leave the
server under test most of the CPU. Each request reads a random one of `keys` records."""

from __future__ import annotations

import json
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from infra.provision.system import ensure_command

MARK = "WRKJSON "
_SCRIPT = """
local keys = %(keys)d
local path = "%(path)s"
wrk.headers["Authorization"] = "Bearer %(token)s"
math.randomseed(%(seed)d)
request = function()
  return wrk.format("GET", string.format(path, math.random(0, keys - 1)))
end
done = function(s, latency, requests)
  local e = s.errors
  io.write(string.format(
    '%(mark)s{"requests":%%d,"duration_us":%%d,"bytes":%%d,"non_2xx":%%d,' ..
    '"socket_errors":%%d,"p50_us":%%d,"p90_us":%%d,"p99_us":%%d,"max_us":%%d,"mean_us":%%.1f}\\n',
    s.requests, s.duration, s.bytes, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean))
end
"""


@dataclass
class WrkResult:
    requests: int
    seconds: float
    rate: float
    bytes_per_response: float
    non_2xx: int
    socket_errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float


def wrk_binary() -> str:
    """wrk, installed from Debian's package if missing (infra.provision.system)."""
    return ensure_command("wrk", "wrk")


def start(
    base_url: str,
    path_format: str,
    keys: int,
    token: str,
    *,
    connections: int,
    seconds: float,
    seed: int = 1,
) -> tuple[subprocess.Popen[str], Path]:
    """Start wrk; `path_format` holds one %d (the record's number). Returns the process and
    its script (to delete after `finish`)."""
    script = _SCRIPT % {
        "keys": keys,
        "path": path_format,
        "token": token,
        "seed": seed,
        "mark": MARK,
    }
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    command = [
        wrk_binary(), "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s",
        "--timeout", "10s", "-s", handle.name, base_url,
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return process, Path(handle.name)


def finish(process: subprocess.Popen[str], script: Path) -> WrkResult:
    try:
        out, _ = process.communicate(timeout=600)
    finally:
        script.unlink(missing_ok=True)
    line = next((x for x in out.splitlines() if x.startswith(MARK)), None)
    if process.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({process.returncode}):\n{out[-2000:]}")
    raw = json.loads(line[len(MARK) :])
    seconds = raw["duration_us"] / 1e6
    count = max(1, raw["requests"])
    return WrkResult(
        requests=raw["requests"],
        seconds=round(seconds, 2),
        rate=round(raw["requests"] / seconds, 1),
        bytes_per_response=round(raw["bytes"] / count, 1),
        non_2xx=raw["non_2xx"],
        socket_errors=raw["socket_errors"],
        p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
        mean_ms=round(raw["mean_us"] / 1000, 3),
    )
