"""Freshness of the distributed pipeline at a sustained ingest rate, and each stage's
throughput beside a raw aiokafka produce/consume baseline measured in the same run.

    .venv/bin/python bench/pipeline.py [--rate 2000] [--seconds 30] [--batch 20]
                                       [--partitions 6] [--burst 50000] [--json] [--keep]
                                       [--profile PREFIX]

The pipeline: POST /v1/ingest/batch commits events to PostgreSQL -> `strata relay` publishes
them to Kafka (and per-partition watermarks) -> `strata worker --projection lookups` (a Faust
agent, or with `--engine batch` a plain batch consumer loop) applies them to Redis -> the read
API answers `GET /v1/data/{source}/{id}?min_position=N` once the projection has applied
position N.

What it does, in one run:
1. starts PostgreSQL, Redis and Kafka if needed (`infra.provision.up`); a fresh schema, Redis
   prefix and Kafka topic prefix; the real processes `strata serve command-api`, `strata
   serve read-api`, `strata relay` and `strata worker` as subprocesses; an account and an
   ingest:write + data:read key through the API; waits until the key is projected;
2. load: an open-loop generator POSTs batches of `--batch` records (~200 B of JSON each) on a
   fixed clock, `--rate` records/s for `--warmup` (not measured) + `--seconds`; it never
   slows down when the system lags (the achieved rate is reported, and requests the client
   could not even start are counted). Freshness of every `--probe-every`-th write, from the
   moment its response (with the commit's position) reached the client:
     - read API (the headline): GET /v1/data/orders/<its last record>?min_position=<position>
       sent right after the write returned; visible when that answers 200 (the read API
       waits internally, read_api/consistency.py);
     - applied: when the projection's watermark (min over its feed slots of the Redis
       checkpoints, as the read API computes it) first reached the position, polled by this
       client every 5 ms;
     - relayed: when the relay's acknowledged position (strata_relay_positions) first
       reached it, polled every 20 ms;
   plus each stage's rate over the measured window and the CPU every process used;
3. live burst: `--burst` records ingested as fast as possible (batches of 1000) with
   everything running; how fast the relay and the worker drain the lag;
4. isolated drain: the relay is paused (SIGSTOP) and the worker stopped, `--burst` records
   are ingested, then the relay alone drains them (SIGCONT), then a new worker alone; each
   rate is taken from its first move to the head, so start-up is not counted;
5. raw baseline: a plain aiokafka producer (acks=all, idempotent, the relay's batching
   settings) sends `--burst` copies of the relay's own messages (same keys, values and
   headers) to a fresh topic with the same partition count, and a plain aiokafka consumer
   reads them back; ratios relay/raw-produce and worker/raw-consume;
6. a summary (or `--json`), then stops the processes and deletes the schema, topics,
   consumer group and Redis keys (unless `--keep`).

Everything shares the machine's cores (PostgreSQL, Kafka, Redis, four Strata processes and
this client); the CPU each used is printed, and CPU used by processes outside the run
("other"), and the CPU each component spends per event (robust to other load). On a
shared machine, `--wait-quiet SECONDS` waits for it to be idle and repeats a phase that
other processes disturbed (more than `--max-other` cores), keeping the least disturbed.
`--profile PREFIX` runs the four Strata processes under bench/_pipeline_sampler.py and
writes PREFIX-<process>-<n>.txt for the load window (and the isolated drains).
`--set NAME=VALUE` (repeatable) gives the Strata processes a setting of infra/config.py,
e.g. `--set analytics_pace=60` to keep the analytics feed out of the load window.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from bisect import bisect_left, bisect_right
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import msgspec
import orjson
import psycopg
import redis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from psycopg import sql
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from _common import BenchError, err, free_port, note, step  # noqa: E402

from infra import provision  # noqa: E402 - after the path fix, so it runs from a checkout
from infra.bootstrap import Platform, bootstrap  # noqa: E402
from infra.config import Settings, from_env  # noqa: E402
from projections import lookups  # noqa: E402
from streams.worker import Incoming, ProjectionWorker  # noqa: E402

SOURCE = "orders"
CLK_TCK = os.sysconf("SC_CLK_TCK")
WATERMARK_POLL_S = 0.005
RELAY_POLL_S = 0.02
PROBE_TARGET_PER_S = 100  # default probe sampling aims at about this many reads per second
PROBE_RETRY_S = 0.05  # first pause before asking again after a 500/503 (doubles, to 1 s)
BURST_BATCH = 1000
BURST_CONCURRENCY = 2
PROFILE_RESET = signal.SIGRTMIN + 1  # bench/_pipeline_sampler.py
PROFILE_REPORT = signal.SIGRTMIN + 2

# --------------------------------------------------------------------------------------------
# The machine, versions and CPU accounting
# --------------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    return {
        "nproc": os.cpu_count() or 0,
        "cpu": model,
        "ram_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "loadavg_at_start": Path("/proc/loadavg").read_text().split()[:3],
    }


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _all_pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def kafka_pids() -> list[int]:
    return [p for p in _all_pids() if _comm(p) == "java" and "kafka.Kafka" in _cmdline(p)]


def kafka_version() -> str:
    """The running broker's version, from its classpath (kafka-X.Y.Z/libs or kafka_2.13-X.jar)."""
    for pid in kafka_pids():
        for arg in _cmdline(pid):
            for part in arg.replace(":", "/").split("/"):
                if part.startswith("kafka-") and part[6:7].isdigit():
                    return part[6:]
    return "unknown"


def busy_cores(seconds: float) -> float:
    """Cores the machine spends (user + system) over `seconds`."""
    a = _machine_ticks()[0]
    time.sleep(seconds)
    return (_machine_ticks()[0] - a) / CLK_TCK / seconds


def wait_quiet(limit: float, timeout: float) -> float:
    """Wait (up to `timeout` s) until other work on the machine uses under `limit` cores."""
    deadline = time.monotonic() + timeout
    busy = busy_cores(2.0)
    while busy >= limit and time.monotonic() < deadline:
        note(f"the machine is busy ({busy:.2f} cores used by others); waiting for it to quieten")
        time.sleep(8.0)
        busy = busy_cores(2.0)
    return round(busy, 2)


def _proc_cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def _machine_ticks() -> tuple[int, int, int]:
    """Jiffies over all CPUs: (user + nice + system, irq + softirq, steal)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return values[0] + values[1] + values[2], values[5] + values[6], values[7]


@dataclass
class CpuSnapshot:
    at: float
    by_pid: dict[str, dict[int, float]]
    ticks: tuple[int, int, int]

    @classmethod
    def take(cls, fixed: dict[str, int]) -> CpuSnapshot:
        groups: dict[str, list[int]] = {name: [pid] for name, pid in fixed.items()}
        groups["PostgreSQL"] = []
        groups["Kafka"] = []
        groups["Redis"] = []
        for pid in _all_pids():
            comm = _comm(pid)
            if comm == "postgres":
                groups["PostgreSQL"].append(pid)
            elif comm == "redis-server":
                groups["Redis"].append(pid)
            elif comm == "java" and "kafka.Kafka" in _cmdline(pid):
                groups["Kafka"].append(pid)
        groups["bench client"] = [os.getpid()]
        return cls(
            at=time.perf_counter(),
            by_pid={name: {pid: _proc_cpu_s(pid) for pid in pids} for name, pids in groups.items()},
            ticks=_machine_ticks(),
        )


def cpu_between(a: CpuSnapshot, b: CpuSnapshot) -> dict[str, float]:
    """Cores used per process group between two snapshots (CPU seconds per wall second);
    `other`: user + system time of the machine outside every group (other users of the
    machine); interrupts (loopback networking) and steal (the hypervisor) apart."""
    wall = max(b.at - a.at, 1e-9)
    out: dict[str, float] = {}
    for name, pids in b.by_pid.items():
        before = a.by_pid.get(name, {})
        out[name] = sum(cpu - before.get(pid, 0.0) for pid, cpu in pids.items()) / wall
    busy, irq, steal = ((y - x) / CLK_TCK / wall for x, y in zip(a.ticks, b.ticks, strict=True))
    out["other"] = max(0.0, busy - sum(out.values()))
    out["irq+softirq"] = irq
    out["steal"] = steal
    out["machine busy"] = busy + irq + steal
    return {name: round(value, 2) for name, value in out.items()}


# --------------------------------------------------------------------------------------------
# Data: ~200-byte order-like records, request bodies encoded before the clock starts
# --------------------------------------------------------------------------------------------

STATUSES = ("pending", "paid", "packed", "shipped", "delivered", "refunded", "cancelled")
COUNTRIES = ("DE", "FR", "US", "GB", "NL", "ES", "IT", "SE", "PL", "JP", "BR", "CA")
CURRENCIES = ("EUR", "USD", "GBP", "SEK", "PLN", "JPY")
TAGS = ("gift", "promo", "b2b", "express", "first-order", "vip", "backorder", "fragile")


def make_record(rng: random.Random, key: str) -> dict[str, Any]:
    customer = rng.randrange(1, 2_000_000)
    created = 1_735_689_600 + rng.randrange(0, 31_536_000)
    return {
        "id": key,
        "data": {
            "customer": f"cus_{customer:07d}",
            "amount_cents": rng.randrange(100, 250_000),
            "currency": rng.choice(CURRENCIES),
            "status": rng.choice(STATUSES),
            "items": rng.randrange(1, 9),
            "country": rng.choice(COUNTRIES),
            "created_at": datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "tags": rng.sample(TAGS, rng.randrange(0, 3)),
        },
    }


@dataclass
class Body:
    data: bytes
    records: int
    last_id: str


def build_bodies(rng: random.Random, prefix: str, requests: int, batch: int) -> list[Body]:
    bodies = []
    for r in range(requests):
        records = [make_record(rng, f"{prefix}-{r:07d}-{i:04d}") for i in range(batch)]
        data = orjson.dumps({"source": SOURCE, "records": records})
        bodies.append(Body(data, batch, records[-1]["id"]))
    return bodies


# --------------------------------------------------------------------------------------------
# The processes under test
# --------------------------------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    profiled: bool
    paused: bool = False
    retired: bool = False  # stopped on purpose

    @property
    def pid(self) -> int:
        return self.process.pid

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise BenchError(
                f"`{self.name}` exited with {self.process.returncode}:\n{self.log_tail()}"
            )

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def send(self, sig: int) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)

    def pause(self) -> None:
        self.send(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        self.send(signal.SIGCONT)
        self.paused = False

    def profile(self, sig: int) -> None:
        if self.profiled:
            self.send(sig)

    def stop(self, timeout: float = 30.0) -> None:
        self.retired = True
        if self.process.poll() is not None:
            return
        if self.paused:
            self.resume()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            err.print(f"[yellow]`{self.name}` did not stop in {timeout:.0f} s; killing it[/yellow]")
            self.process.kill()
            self.process.wait(timeout=10)


class Processes:
    def __init__(self, env: dict[str, str], workdir: Path, profile: str | None) -> None:
        self.env = env
        self.workdir = workdir  # cwd of every process: the Faust worker keeps its data dir there
        self.profile = profile
        self.running: dict[str, Proc] = {}
        self.started: dict[str, int] = {}
        strata = Path(sys.executable).with_name("strata")
        if not strata.exists():
            raise BenchError(f"{strata} not found: run from the project's venv (.venv/bin/python)")
        self.strata = str(strata)

    def start(self, name: str, *args: str) -> Proc:
        """Start (or restart: a new process in the same role) `strata ARGS`."""
        self.started[name] = self.started.get(name, 0) + 1
        label = name if self.started[name] == 1 else f"{name}{self.started[name]}"
        command = [self.strata, *args]
        if self.profile:
            sampler = str(Path(__file__).with_name("_pipeline_sampler.py"))
            command = [sys.executable, sampler, "--out", f"{self.profile}-{label}", "--", *command]
        log_path = self.workdir / f"{label}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                command,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                start_new_session=True,
            )
        proc = Proc(name, process, log_path, profiled=bool(self.profile))
        self.running[name] = proc
        return proc

    def __getitem__(self, name: str) -> Proc:
        return self.running[name]

    def check_alive(self) -> None:
        for proc in self.running.values():
            if not (proc.paused or proc.retired):
                proc.check_alive()

    def pids(self) -> dict[str, int]:
        return {name: proc.pid for name, proc in self.running.items()}

    def profile_all(self, sig: int) -> None:
        for proc in self.running.values():
            proc.profile(sig)

    def stop_all(self) -> dict[str, int | None]:
        codes: dict[str, int | None] = {}
        for proc in self.running.values():
            if proc.paused:
                proc.resume()
        for name, proc in self.running.items():
            if proc.process.poll() is None:
                proc.process.send_signal(signal.SIGTERM)
            codes[name] = None
        for name, proc in self.running.items():
            proc.stop()
            codes[name] = proc.process.returncode
        return codes


# --------------------------------------------------------------------------------------------
# Monitoring: the relay's position and the projection's watermark, over time
# --------------------------------------------------------------------------------------------


class Timeline:
    """A non-decreasing value sampled over time; only changes are kept."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.values: list[int] = []
        self.polls = 0

    def add(self, at: float, value: int) -> None:
        self.polls += 1
        if self.values and value <= self.values[-1]:
            return
        self.times.append(at)
        self.values.append(value)

    @property
    def last(self) -> int:
        return self.values[-1] if self.values else 0

    def at(self, moment: float) -> int:
        i = bisect_right(self.times, moment) - 1
        return self.values[i] if i >= 0 else 0

    def reach(self, value: int) -> float | None:
        """When the value was first seen at or above `value`."""
        i = bisect_left(self.values, value)
        return self.times[i] if i < len(self.values) else None

    def first_move_after(self, moment: float) -> tuple[float, int] | None:
        i = bisect_right(self.times, moment)
        return (self.times[i], self.values[i]) if i < len(self.times) else None


class Monitor:
    def __init__(self, platform: Platform, dsn: str, schema: str) -> None:
        self.platform = platform
        self.dsn = dsn
        self.table = sql.Identifier(schema, "strata_relay_positions")
        self.watermark = Timeline()
        self.relay = Timeline()
        self.checkpoints: dict[int, int] = {}
        self.stop = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []
        self.offsets: AIOKafkaConsumer | None = None

    async def relay_batches(self) -> int:
        """The credentials topic's end offset: the relay writes one watermark there after
        every batch (and when idle for the watermark interval), so its growth counts batches."""
        if self.offsets is None:
            self.offsets = AIOKafkaConsumer(
                bootstrap_servers=self.platform.settings.kafka_bootstrap, enable_auto_commit=False
            )
            await self.offsets.start()
        tp = TopicPartition(self.platform.topics.credentials, 0)
        return int((await self.offsets.end_offsets([tp]))[tp])

    def start(self) -> None:
        self.tasks = [
            asyncio.create_task(self._watermark_loop(), name="watermark poll"),
            asyncio.create_task(self._relay_loop(), name="relay poll"),
        ]

    async def close(self) -> None:
        if self.offsets is not None:
            await self.offsets.stop()
        self.stop.set()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _watermark_loop(self) -> None:
        slots = list(self.platform.feed_slots)
        documents = self.platform.documents
        while not self.stop.is_set():
            checkpoints = await documents.checkpoints()
            self.watermark.add(time.perf_counter(), min(checkpoints.get(s, 0) for s in slots))
            self.checkpoints = checkpoints
            await asyncio.sleep(WATERMARK_POLL_S)

    async def _relay_loop(self) -> None:
        query = sql.SQL("SELECT position FROM {} WHERE name = 'kafka'").format(self.table)
        async with await psycopg.AsyncConnection.connect(self.dsn, autocommit=True) as conn:
            while not self.stop.is_set():
                try:
                    row = await (await conn.execute(query)).fetchone()
                except psycopg.errors.UndefinedTable:  # the relay creates it when it starts
                    row = None
                if row is not None:
                    self.relay.add(time.perf_counter(), int(row[0]))
                await asyncio.sleep(RELAY_POLL_S)

    async def wait_watermark(
        self,
        position: int,
        timeout: float,
        processes: Processes,
        label: str,
        head: Callable[[], int] | None = None,
    ) -> float:
        """Wait until the projection's watermark reaches `position`; progress every 5 s."""
        started = time.monotonic()
        last_line = started
        while True:
            reached = self.watermark.reach(position)
            if reached is not None:
                return reached
            now = time.monotonic()
            if now - started > timeout:
                raise BenchError(
                    f"{label}: the projection reached {self.watermark.last}, not {position}, "
                    f"in {timeout:.0f} s (relay at {self.relay.last}; checkpoints "
                    f"{self.checkpoints})"
                )
            if now - last_line >= 5.0:
                last_line = now
                target = head() if head else position
                note(
                    f"{label}: relay at {self.relay.last:,}, projection at "
                    f"{self.watermark.last:,}, head {target:,} ({now - started:.0f} s)"
                )
            processes.check_alive()
            await asyncio.sleep(0.02)


# --------------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, math.ceil(q / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


@dataclass
class Latency:
    count: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Latency:
        ordered = sorted(seconds)
        if not ordered:
            nan = float("nan")
            return cls(0, nan, nan, nan, nan, nan)
        return cls(
            count=len(ordered),
            p50_ms=round(percentile(ordered, 50) * 1000, 1),
            p95_ms=round(percentile(ordered, 95) * 1000, 1),
            p99_ms=round(percentile(ordered, 99) * 1000, 1),
            max_ms=round(ordered[-1] * 1000, 1),
            mean_ms=round(sum(ordered) / len(ordered) * 1000, 1),
        )


# --------------------------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------------------------


def session(base_url: str, token: str | None, connections: int) -> aiohttp.ClientSession:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return aiohttp.ClientSession(
        base_url=base_url,
        headers=headers,
        # uvicorn drops idle keep-alive connections after 5 s: never reuse one that old
        connector=aiohttp.TCPConnector(limit=connections, keepalive_timeout=2.0),
        timeout=aiohttp.ClientTimeout(total=300),
    )


async def wait_healthy(base_url: str, procs: Processes, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    async with session(base_url, None, 1) as client:
        while True:
            procs.check_alive()
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with client.get("/health") as response:
                    if response.status == 200:
                        return
            if time.monotonic() > deadline:
                raise BenchError(f"{base_url} was not healthy in {timeout:.0f} s")
            await asyncio.sleep(0.1)


async def wait_relay_table(settings: Settings, procs: Processes, timeout: float = 60.0) -> None:
    """The relay has bootstrapped once its positions table exists."""
    name = f"{settings.postgres_schema}.strata_relay_positions"
    deadline = time.monotonic() + timeout
    async with await psycopg.AsyncConnection.connect(settings.postgres_dsn, autocommit=True) as c:
        while True:
            procs.check_alive()
            row = await (await c.execute("SELECT to_regclass(%s)", (name,))).fetchone()
            if row and row[0] is not None:
                return
            if time.monotonic() > deadline:
                raise BenchError(f"the relay did not create {name} in {timeout:.0f} s")
            await asyncio.sleep(0.1)


async def create_key(base_url: str, admin_token: str) -> tuple[str, int]:
    """An account and a key that may ingest and read; the secret and the key's position."""
    async with session(base_url, admin_token, 1) as admin:
        body = {"name": "Bench", "email": "bench@strata.example", "plan": "enterprise"}
        async with admin.post("/v1/account/create", data=orjson.dumps(body)) as response:
            payload = await response.read()
            if response.status != 201:
                raise BenchError(f"account/create answered {response.status}: {payload[:300]!r}")
        account_id = orjson.loads(payload)["data"]["id"]
        body = {
            "account_id": account_id,
            "name": "bench",
            "scopes": ["ingest:write", "data:read"],
        }
        async with admin.post("/v1/apikey/generate", data=orjson.dumps(body)) as response:
            payload = await response.read()
            if response.status != 201:
                raise BenchError(f"apikey/generate answered {response.status}: {payload[:300]!r}")
        data = orjson.loads(payload)["data"]
        return str(data["secret"]), int(data["position"])


# --------------------------------------------------------------------------------------------
# Phase 1: sustained open-loop load, freshness per write
# --------------------------------------------------------------------------------------------


def probe_interval(args: argparse.Namespace, rate: float) -> int:
    """Probe every N-th write: --probe-every, else about PROBE_TARGET_PER_S reads per second."""
    return int(args.probe_every or max(1, round(rate / args.batch / PROBE_TARGET_PER_S)))


@dataclass
class Write:
    scheduled: float
    records: int
    measured: bool
    probe: bool
    sent: float = 0.0
    acked: float | None = None
    position: int | None = None
    visible: float | None = None
    probe_retries: dict[int, int] = field(default_factory=dict)
    error: str | None = None


@dataclass
class LoadPhase:
    target_rate: float
    probe_every: int
    requests_per_s: float
    window_s: float
    requests: int
    records_acked: int
    achieved_rate: float
    not_started: int
    errors: int
    error_kinds: dict[str, int]
    first_error: str | None
    probes: int
    probes_skipped: int
    probe_retries: dict[int, int]
    probe_errors: dict[int, str]
    send_lag: Latency
    ingest_latency: Latency
    freshness_read_api: Latency
    freshness_applied: Latency
    freshness_relayed: Latency
    read_api_overhead: Latency
    relay_rate: float
    relay_batches: int
    events_per_relay_batch: float
    worker_rate: float
    lag_at_end: dict[str, int]
    windows: list[dict[str, Any]]
    cpu_cores: dict[str, float]


class Load:
    def __init__(
        self,
        args: argparse.Namespace,
        command: aiohttp.ClientSession,
        read: aiohttp.ClientSession,
        monitor: Monitor,
        processes: Processes,
        rate: float,
    ) -> None:
        self.args = args
        self.rate = rate
        self.command = command
        self.read = read
        self.monitor = monitor
        self.processes = processes
        self.writes: list[Write] = []
        self.in_flight = 0
        self.max_position = 0
        self.first_probe_error: dict[int, str] = {}
        self.probes_in_flight = 0
        self.probes_skipped = 0

    async def _one(self, write: Write, body: Body) -> None:
        self.in_flight += 1
        try:
            write.sent = time.perf_counter()
            async with self.command.post("/v1/ingest/batch", data=body.data) as response:
                payload = await response.read()
                status = response.status
            write.acked = time.perf_counter()
            if status != 200:
                write.error = f"ingest answered {status}: {payload[:200]!r}"
                return
            data = orjson.loads(payload)["data"]
            if data["count"] != body.records:
                write.error = f"a batch of {body.records} answered count={data['count']}"
                return
            write.position = int(data["position"])
            self.max_position = max(self.max_position, write.position)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            write.error = f"ingest failed: {exc!r}"
            return
        finally:
            self.in_flight -= 1
        if write.probe:
            if self.probes_in_flight >= self.args.max_probes:
                write.probe = False  # see --max-probes
                self.probes_skipped += 1
                return
            self.probes_in_flight += 1
            try:
                await self._probe(write, body.last_id)
            finally:
                self.probes_in_flight -= 1

    async def _probe(self, write: Write, record_id: str) -> None:
        url = f"/v1/data/{SOURCE}/{record_id}?min_position={write.position}"
        backoff = PROBE_RETRY_S
        try:
            while True:
                async with self.read.get(url) as response:
                    payload = await response.read()
                    status = response.status
                if status == 200:
                    write.visible = time.perf_counter()
                    if orjson.loads(payload)["data"]["id"] != record_id:
                        write.error = f"read {record_id} answered another record"
                    return
                if status >= 500:
                    # 504: the read API's own wait timed out; 500/503: it failed (e.g. a
                    # Redis pool out of connections). Counted, and asked again, as a client
                    # would; the write is visible when a 200 comes.
                    write.probe_retries[status] = write.probe_retries.get(status, 0) + 1
                    self.first_probe_error.setdefault(
                        status, payload[:300].decode(errors="replace")
                    )
                    if status != 504:
                        await asyncio.sleep(backoff)
                        backoff = min(backoff * 2, 1.0)
                    continue
                write.error = f"read answered {status}: {payload[:200]!r}"
                return
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            write.error = f"read failed: {exc!r}"

    async def run(self, cpu_pids: Callable[[], dict[str, int]]) -> LoadPhase:
        args = self.args
        interval = args.batch / self.rate
        warm = round(args.warmup / interval)
        total = warm + round(args.seconds / interval)
        probe_every = probe_interval(args, self.rate)
        rng = random.Random(20_251_124)
        bodies = build_bodies(rng, f"load-{secrets.token_hex(2)}", total, args.batch)
        note(
            f"{total} requests of {args.batch} records ({self.rate:,.0f} records/s = "
            f"{1 / interval:.0f} requests/s; {args.warmup:.0f} s warm-up + {args.seconds:.0f} s "
            f"measured); read-API probe on every {probe_every}. write"
        )
        tasks: set[asyncio.Task[None]] = set()
        start = time.perf_counter() + 0.2
        window_start = start + warm * interval
        window_end = start + total * interval
        cpu0: CpuSnapshot | None = None
        not_started = 0
        reporter = asyncio.create_task(self._report(start, window_start))
        try:
            for i, body in enumerate(bodies):
                scheduled = start + i * interval
                delay = scheduled - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                if i == warm:
                    cpu0 = CpuSnapshot.take(cpu_pids())
                    self.processes.profile_all(PROFILE_RESET)
                    marks0 = asyncio.create_task(self.monitor.relay_batches())
                write = Write(
                    scheduled, body.records, measured=i >= warm, probe=i % probe_every == 0
                )
                self.writes.append(write)
                if self.in_flight >= args.max_in_flight:
                    not_started += 1
                    write.error = "not started: too many requests in flight"
                    continue
                task = asyncio.create_task(self._one(write, body))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            await asyncio.sleep(max(0.0, window_end - time.perf_counter()))
            cpu1 = CpuSnapshot.take(cpu_pids())
            self.processes.profile_all(PROFILE_REPORT)
            ended = time.perf_counter()
            relay_batches = await self.monitor.relay_batches() - await marks0
            head_at_end = self.max_position
            note(f"load sent; waiting for {len(tasks)} requests and reads still in flight")
            deadline = time.monotonic() + args.drain_timeout
            while tasks:
                if time.monotonic() > deadline:
                    raise BenchError(f"{len(tasks)} writes/reads still pending after the load")
                self.processes.check_alive()
                await asyncio.sleep(0.05)
        finally:
            reporter.cancel()
            for task in list(tasks):
                task.cancel()
        assert cpu0 is not None
        return self._phase(
            warm, total, interval, window_start, window_end, ended, head_at_end, not_started,
            cpu_between(cpu0, cpu1), relay_batches,
        )  # fmt: skip

    async def _report(self, start: float, window_start: float) -> None:
        """A progress line every 5 s: rates, in flight, lags, freshness of the last 5 s."""
        await asyncio.sleep(max(0.0, start - time.perf_counter()))
        last = time.perf_counter()
        while True:
            await asyncio.sleep(5.0)
            now = time.perf_counter()
            fresh = sorted(
                w.visible - w.acked
                for w in self.writes
                if w.visible and w.acked and w.visible > last
            )
            acked = sum(w.records for w in self.writes if w.acked and w.acked > last and w.position)
            phase = "warm-up" if now < window_start else "measured"
            f50 = percentile(fresh, 50) * 1000
            f99 = percentile(fresh, 99) * 1000
            note(
                f"{now - start:5.1f} s ({phase}): {acked / (now - last):,.0f} records/s acked, "
                f"{self.in_flight} requests in flight; relay lag "
                f"{self.max_position - self.monitor.relay.last:,}, projection lag "
                f"{self.max_position - self.monitor.watermark.last:,} events; freshness "
                f"p50 {f50:.0f} ms, p99 {f99:.0f} ms"
            )
            last = now

    def _phase(
        self,
        warm: int,
        total: int,
        interval: float,
        window_start: float,
        window_end: float,
        ended: float,
        head_at_end: int,
        not_started: int,
        cpu: dict[str, float],
        relay_batches: int,
    ) -> LoadPhase:
        args = self.args
        monitor = self.monitor
        measured = [w for w in self.writes if w.measured]
        ok = [w for w in measured if w.position is not None and w.acked is not None]
        errors = [w for w in measured if w.error and not w.error.startswith("not started")]
        probed = [w for w in ok if w.visible is not None]
        last_ack = max((w.acked for w in ok if w.acked), default=window_end)
        records = sum(w.records for w in ok)

        def since_ack(moment: float | None, write: Write) -> float | None:
            if moment is None or write.acked is None:
                return None
            return max(0.0, moment - write.acked)

        # applied and relayed: every measured write (the timelines cover them all)
        applied = [since_ack(monitor.watermark.reach(w.position or 0), w) for w in ok]
        relayed = [since_ack(monitor.relay.reach(w.position or 0), w) for w in ok]
        read_api = [w.visible - w.acked for w in probed if w.visible and w.acked]
        overhead = []
        for w in probed:
            seen = monitor.watermark.reach(w.position or 0)
            if seen is not None and w.visible is not None:
                overhead.append(max(0.0, w.visible - max(seen, w.acked or seen)))
        windows = []
        step_s = 5.0
        t = window_start
        while t < window_end - 1e-6:
            inside = [w for w in probed if t <= w.scheduled < t + step_s]
            lat = Latency.of([w.visible - w.acked for w in inside if w.visible and w.acked])
            windows.append(
                {
                    "from_s": round(t - window_start, 1),
                    "probes": lat.count,
                    "p50_ms": lat.p50_ms,
                    "p99_ms": lat.p99_ms,
                    "max_ms": lat.max_ms,
                }
            )
            t += step_s
        window = window_end - window_start
        return LoadPhase(
            target_rate=self.rate,
            probe_every=probe_interval(args, self.rate),
            requests_per_s=round(1 / interval, 1),
            window_s=round(window, 2),
            requests=len(measured),
            records_acked=records,
            achieved_rate=round(records / max(last_ack - window_start, window), 1),
            not_started=not_started,
            errors=len(errors),
            error_kinds=_tally(w.error or "" for w in errors),
            first_error=errors[0].error if errors else None,
            probes=len(probed),
            probes_skipped=self.probes_skipped,
            probe_retries=_sum_retries(measured),
            probe_errors=dict(self.first_probe_error),
            send_lag=Latency.of([w.sent - w.scheduled for w in measured if w.sent]),
            ingest_latency=Latency.of([w.acked - w.sent for w in ok if w.acked]),
            freshness_read_api=Latency.of(read_api),
            freshness_applied=Latency.of([a for a in applied if a is not None]),
            freshness_relayed=Latency.of([r for r in relayed if r is not None]),
            read_api_overhead=Latency.of(overhead),
            relay_batches=relay_batches,
            events_per_relay_batch=round(
                (monitor.relay.at(window_end) - monitor.relay.at(window_start))
                / max(relay_batches, 1),
                1,
            ),
            relay_rate=round(
                (monitor.relay.at(window_end) - monitor.relay.at(window_start)) / window, 1
            ),
            worker_rate=round(
                (monitor.watermark.at(window_end) - monitor.watermark.at(window_start)) / window,
                1,
            ),
            lag_at_end={
                "relay": head_at_end - monitor.relay.at(ended),
                "projection": head_at_end - monitor.watermark.at(ended),
            },
            windows=windows,
            cpu_cores=cpu,
        )


def _sum_retries(writes: Iterable[Write]) -> dict[int, int]:
    total: dict[int, int] = {}
    for write in writes:
        for status, count in write.probe_retries.items():
            total[status] = total.get(status, 0) + count
    return total


def _tally(messages: Iterable[str]) -> dict[str, int]:
    """Errors by kind: the message up to its first colon (e.g. 'read answered 500')."""
    kinds: dict[str, int] = {}
    for message in messages:
        kind = message.split(":", 1)[0]
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


# --------------------------------------------------------------------------------------------
# Phases 2 and 3: bursts, and how fast each stage drains them
# --------------------------------------------------------------------------------------------


@dataclass
class Burst:
    records: int
    seconds: float
    rate: float
    first_position: int
    last_position: int


async def ingest_burst(command: aiohttp.ClientSession, bodies: Sequence[Body], label: str) -> Burst:
    """POST every body as fast as BURST_CONCURRENCY connections allow."""
    work = iter(bodies)
    positions: list[int] = []
    total = sum(b.records for b in bodies)
    done = 0
    started = time.perf_counter()
    last_line = started

    async def worker() -> None:
        nonlocal done, last_line
        for body in work:
            async with command.post("/v1/ingest/batch", data=body.data) as response:
                payload = await response.read()
                if response.status != 200:
                    raise BenchError(f"{label}: ingest answered {response.status}: {payload!r}")
            positions.append(int(orjson.loads(payload)["data"]["position"]))
            done += body.records
            now = time.perf_counter()
            if now - last_line >= 5.0:
                last_line = now
                note(f"{label}: {done:,}/{total:,} records ({done / (now - started):,.0f}/s)")

    await asyncio.gather(*(worker() for _ in range(BURST_CONCURRENCY)))
    seconds = time.perf_counter() - started
    return Burst(
        records=total,
        seconds=round(seconds, 3),
        rate=round(total / seconds, 1),
        first_position=min(positions) - bodies[0].records + 1,
        last_position=max(positions),
    )


@dataclass
class Drain:
    events: int
    seconds: float
    rate: float


def shown(value: float, spec: str = ",.0f") -> str:
    """A figure for the console; `n/a` when it could not be measured (NaN): e.g. a rate."""
    return "n/a" if math.isnan(value) else format(value, spec)


def finite(value: Any) -> Any:
    """The results with NaN (a rate that could not be timed) as null: strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def drain_rate(timeline: Timeline, after: float, target: int) -> Drain:
    """Events per second from the timeline's first move after `after` until it reached
    `target` (the events of that first move, already done before it was seen, excluded).
    NaN when it cannot be timed: e.g. the projection's watermark (a minimum over partitions)
    went from start to target in one observed move, as a fast worker does on a small burst."""
    first = timeline.first_move_after(after)
    reached = timeline.reach(target)
    if first is None or reached is None or reached <= first[0]:
        return Drain(0, 0.0, float("nan"))
    events = target - first[1]
    seconds = reached - first[0]
    return Drain(events, round(seconds, 3), round(events / seconds, 1))


@dataclass
class LiveBurstPhase:
    ingest: Burst
    relay: Drain
    worker: Drain
    relay_lag_peak: int
    projection_lag_peak: int
    caught_up_after_ingest_s: float
    cpu_cores: dict[str, float]


async def live_burst(
    command: aiohttp.ClientSession,
    monitor: Monitor,
    processes: Processes,
    bodies: Sequence[Body],
    timeout: float,
) -> LiveBurstPhase:
    cpu0 = CpuSnapshot.take(processes.pids())
    started = time.perf_counter()
    burst = await ingest_burst(command, bodies, "live burst")
    ingested = time.perf_counter()
    done = await monitor.wait_watermark(burst.last_position, timeout, processes, "live burst")
    cpu1 = CpuSnapshot.take(processes.pids())
    first = burst.first_position
    relay_done = monitor.relay.reach(burst.last_position) or done

    def rate(end: float) -> Drain:
        events = burst.last_position - first + 1
        seconds = end - started
        return Drain(events, round(seconds, 3), round(events / seconds, 1))

    return LiveBurstPhase(
        ingest=burst,
        relay=rate(relay_done),
        worker=rate(done),
        relay_lag_peak=burst.last_position - monitor.relay.at(ingested),
        projection_lag_peak=burst.last_position - monitor.watermark.at(ingested),
        caught_up_after_ingest_s=round(done - ingested, 3),
        cpu_cores=cpu_between(cpu0, cpu1),
    )


@dataclass
class IsolatedPhase:
    ingest: Burst
    relay: Drain
    worker: Drain
    relay_cpu_cores: dict[str, float]
    worker_cpu_cores: dict[str, float]
    worker_start_s: float
    offsets: list[tuple[str, int, int, int]]  # (topic, partition, first, end): the relay's part


async def end_offsets(bootstrap_servers: str, partitions: list[TopicPartition]) -> dict[Any, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False)
    await consumer.start()
    try:
        return dict(await consumer.end_offsets(partitions))
    finally:
        await consumer.stop()


async def isolated_drain(
    command: aiohttp.ClientSession,
    monitor: Monitor,
    processes: Processes,
    bodies: Sequence[Body],
    timeout: float,
) -> IsolatedPhase:
    relay = processes["relay"]
    relay.pause()
    processes["worker"].stop()
    note("relay paused (SIGSTOP), worker stopped")
    burst = await ingest_burst(command, bodies, "isolated burst")
    target = burst.last_position

    # the relay alone; the topics' end offsets before and after delimit what it published
    topics = monitor.platform.topics
    partitions = [TopicPartition(topics.events, p) for p in range(topics.partitions)]
    partitions.append(TopicPartition(topics.credentials, 0))
    bootstrap_servers = monitor.platform.settings.kafka_bootstrap
    before = await end_offsets(bootstrap_servers, partitions)
    cpu0 = CpuSnapshot.take(processes.pids())
    resumed = time.perf_counter()
    relay.resume()
    relay.profile(PROFILE_RESET)
    started = time.monotonic()
    while monitor.relay.reach(target) is None:
        if time.monotonic() - started > timeout:
            raise BenchError(f"the relay reached {monitor.relay.last}, not {target}")
        processes.check_alive()
        await asyncio.sleep(0.02)
    cpu1 = CpuSnapshot.take(processes.pids())
    relay.profile(PROFILE_REPORT)
    relay_drain = drain_rate(monitor.relay, resumed, target)
    after = await end_offsets(bootstrap_servers, partitions)
    note(f"relay alone: {shown(relay_drain.rate)} events/s")

    # then a new worker alone
    launched = time.perf_counter()
    worker = processes.start("worker", "worker", "--projection", "lookups")
    cpu_worker0: CpuSnapshot | None = None
    started = time.monotonic()
    while monitor.watermark.reach(target) is None:
        if cpu_worker0 is None and monitor.watermark.first_move_after(launched):
            cpu_worker0 = CpuSnapshot.take(processes.pids())
            worker.profile(PROFILE_RESET)
        if time.monotonic() - started > timeout:
            raise BenchError(f"the projection reached {monitor.watermark.last}, not {target}")
        processes.check_alive()
        await asyncio.sleep(0.01)
    cpu_worker1 = CpuSnapshot.take(processes.pids())
    worker.profile(PROFILE_REPORT)
    worker_drain = drain_rate(monitor.watermark, launched, target)
    first = monitor.watermark.first_move_after(launched)
    note(f"worker alone: {shown(worker_drain.rate)} events/s")
    return IsolatedPhase(
        ingest=burst,
        relay=relay_drain,
        worker=worker_drain,
        relay_cpu_cores=cpu_between(cpu0, cpu1),
        worker_cpu_cores=cpu_between(cpu_worker0 or cpu0, cpu_worker1),
        worker_start_s=round((first[0] if first else launched) - launched, 2),
        offsets=[(tp.topic, tp.partition, before[tp], after[tp]) for tp in partitions],
    )


# --------------------------------------------------------------------------------------------
# Phase 4: the raw aiokafka baseline
# --------------------------------------------------------------------------------------------


@dataclass
class RawPhase:
    messages: int
    message_bytes_mean: float
    produce_seconds: float
    produce_rate: float
    consume_seconds: float
    consume_rate: float
    cpu_cores: dict[str, float]


Message = tuple[bytes | None, bytes, list[tuple[str, bytes]]]


async def copy_messages(
    bootstrap_servers: str, topic: str, partition_count: int, count: int
) -> list[Message]:
    """The first `count` keyed (event) messages of `topic`: what the relay published."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(partition_count)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        found: list[Message] = []
        while len(found) < count:
            batch = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for records in batch.values():
                found.extend(
                    (m.key, m.value, list(m.headers)) for m in records if m.key is not None
                )
            positions = [await consumer.position(tp) for tp in partitions]
            if all(pos >= ends[tp] for pos, tp in zip(positions, partitions, strict=True)):
                break
        return found[:count]
    finally:
        await consumer.stop()


async def raw_baseline(
    bootstrap_servers: str,
    events_topic: str,
    raw_topic: str,
    partitions: int,
    count: int,
    pids: dict[str, int],
) -> RawPhase:
    messages = await copy_messages(bootstrap_servers, events_topic, partitions, count)
    if len(messages) < count:
        raise BenchError(f"found only {len(messages)} event messages in {events_topic}")
    size = sum(
        len(k or b"") + len(v) + sum(len(h) + len(x) for h, x in hs) for k, v, hs in messages
    ) / len(messages)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(raw_topic, partitions, 1)])
    finally:
        await admin.close()

    # the relay's producer settings (infra/bootstrap.py), started and warmed before the clock
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        enable_idempotence=True,
        acks="all",
        linger_ms=2,
        max_batch_size=1024 * 1024,
        max_request_size=4 * 1024 * 1024,
    )
    await producer.start()
    try:
        for _ in range(20):
            with contextlib.suppress(Exception):
                if await producer.partitions_for(raw_topic):
                    break
            await asyncio.sleep(0.1)
        cpu0 = CpuSnapshot.take(pids)
        started = time.perf_counter()
        acks = [
            await producer.send(raw_topic, value, key=key, headers=headers)
            for key, value, headers in messages
        ]
        await asyncio.gather(*acks)
        produced = time.perf_counter() - started
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(raw_topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        await consumer.end_offsets(tps)  # metadata and connections before the clock
        received = 0
        started = time.perf_counter()
        while received < count:
            batch = await consumer.getmany(timeout_ms=1000)
            received += sum(len(records) for records in batch.values())
            if time.perf_counter() - started > 300:
                raise BenchError(f"raw consume read {received} of {count} in 300 s")
        consumed = time.perf_counter() - started
        cpu1 = CpuSnapshot.take(pids)
    finally:
        await consumer.stop()
    return RawPhase(
        messages=count,
        message_bytes_mean=round(size, 1),
        produce_seconds=round(produced, 3),
        produce_rate=round(count / produced, 1),
        consume_seconds=round(consumed, 3),
        consume_rate=round(count / consumed, 1),
        cpu_cores=cpu_between(cpu0, cpu1),
    )


@dataclass
class BareWorker:
    messages: int
    events_applied: int
    seconds: float
    rate: float
    cpu_s: float
    cpu_cores: dict[str, float]


async def bare_worker(
    settings: Settings, offsets: list[tuple[str, int, int, int]], pids: dict[str, int]
) -> BareWorker:
    """Strata's own worker logic (ProjectionWorker: contract decode, projection rules, the
    Redis Lua commit with checkpoints) fed by a plain aiokafka consumer in this client, over
    exactly the messages the worker drained alone, into a separate Redis namespace: what the
    worker's logic costs without its process. slot_of/accepts as Platform builds them."""
    bare = msgspec.structs.replace(settings, redis_prefix=f"{settings.redis_prefix}-bare")
    platform = bootstrap(bare)
    consumer = AIOKafkaConsumer(bootstrap_servers=bare.kafka_bootstrap, enable_auto_commit=False)
    try:
        topics = platform.topics

        def slot_of(topic: str, partition: int) -> int:
            return topics.partitions if topic == topics.credentials else partition

        def accepts(topic: str, event: Any) -> bool:
            return (topic == topics.credentials) == event.type.startswith(lookups.CREDENTIAL_EVENTS)

        async def dead_letter(_message: Incoming, error: BaseException) -> None:
            raise BenchError(f"the bare worker met a poison message: {error}")

        worker = ProjectionWorker(
            platform.projections()[lookups.NAME],
            slot_of=slot_of,
            accepts=accepts,
            dead_letter=dead_letter,
        )
        await consumer.start()
        ranges = {TopicPartition(t, p): (first, end) for t, p, first, end in offsets}
        consumer.assign(list(ranges))
        for tp, (first, _) in ranges.items():
            consumer.seek(tp, first)
        await consumer.end_offsets(list(ranges))  # metadata and connections before the clock
        total = sum(end - first for first, end in ranges.values())
        done = 0
        cpu0 = time.process_time()
        snapshot0 = CpuSnapshot.take(pids)
        started = time.perf_counter()
        while done < total:
            batch = await consumer.getmany(timeout_ms=1000, max_records=1000)
            messages = [
                Incoming(m.topic, m.partition, m.offset, m.key, m.value, list(m.headers))
                for tp, records in batch.items()
                for m in records
                if m.offset < ranges[tp][1]
            ]
            if messages:
                await worker.handle(messages)
                done += len(messages)
            if time.perf_counter() - started > 300:
                raise BenchError(f"the bare worker handled {done} of {total} in 300 s")
        seconds = time.perf_counter() - started
        snapshot1 = CpuSnapshot.take(pids)
        return BareWorker(
            messages=done,
            events_applied=worker.stats.applied,
            seconds=round(seconds, 3),
            rate=round(worker.stats.applied / seconds, 1),
            cpu_s=round(time.process_time() - cpu0, 2),
            cpu_cores=cpu_between(snapshot0, snapshot1),
        )
    finally:
        await consumer.stop()
        await platform.aclose()
        cleanup_redis(bare.redis_url, bare.redis_prefix)


# --------------------------------------------------------------------------------------------
# A shared machine: phases other work disturbed are repeated (with --wait-quiet)
# --------------------------------------------------------------------------------------------

T = TypeVar("T")
ATTEMPTS: dict[str, int] = {}
QUIET_LIMIT = 0.3  # cores other processes may use for the machine to count as quiet
PHASE_QUIET_WAIT_S = 180  # before each phase, wait at most this long for quiet


async def await_quiet(timeout: float, processes: Processes) -> float:
    """Wait (up to `timeout` s) until processes outside this run use < QUIET_LIMIT cores."""
    deadline = time.monotonic() + timeout
    while True:
        a = CpuSnapshot.take(processes.pids())
        await asyncio.sleep(2.0)
        other = cpu_between(a, CpuSnapshot.take(processes.pids()))["other"]
        if other < QUIET_LIMIT or time.monotonic() > deadline:
            return other
        note(f"other processes use {other:.2f} cores; waiting for the machine to quieten")
        await asyncio.sleep(6.0)


async def undisturbed(
    args: argparse.Namespace,
    label: str,
    phase: Callable[[int], Awaitable[T]],
    cpu_of: Callable[[T], dict[str, float]],
    processes: Processes,
) -> T:
    """Run `phase`; when other processes used more than --max-other cores meanwhile (someone
    else's work on a shared machine) and --wait-quiet is set, wait for quiet and run it
    again, up to --retries times; the least disturbed attempt is kept."""
    best: tuple[float, T] | None = None
    for attempt in range(1, args.retries + 2):
        if args.wait_quiet:
            await await_quiet(min(args.wait_quiet, PHASE_QUIET_WAIT_S), processes)
        result = await phase(attempt)
        ATTEMPTS[label] = attempt
        other = cpu_of(result)["other"]
        if best is None or other < best[0]:
            best = (other, result)
        if other <= args.max_other or not args.wait_quiet:
            break
        note(f"[yellow]{label}: other processes used {other:.2f} cores meanwhile[/yellow]")
    assert best is not None
    if best[0] > args.max_other:
        note(f"[yellow]{label}: kept an attempt disturbed by {best[0]:.2f} cores[/yellow]")
    return best[1]


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------


@dataclass
class Results:
    started_at: str
    command: str
    machine: dict[str, Any]
    versions: dict[str, str]
    settings: dict[str, Any]
    load: LoadPhase | None = None
    sweep: list[LoadPhase] = field(default_factory=list)
    live_burst: LiveBurstPhase | None = None
    isolated: IsolatedPhase | None = None
    raw: RawPhase | None = None
    bare_worker: BareWorker | None = None
    ratios: dict[str, float] = field(default_factory=dict)
    checks: dict[str, Any] = field(default_factory=dict)


async def delete_kafka(bootstrap_servers: str, prefix: str, group: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        with contextlib.suppress(Exception):
            await admin.delete_consumer_groups([group])
        topics = [t for t in await admin.list_topics() if t.startswith(prefix)]
        if topics:
            await admin.delete_topics(topics)
        return topics
    finally:
        await admin.close()


def cleanup_redis(url: str, prefix: str) -> int:
    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
        return len(keys)
    finally:
        client.close()


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout


def versions(dsn: str, redis_url: str) -> dict[str, str]:
    out: dict[str, str] = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SHOW server_version").fetchone()
        out["postgres"] = str(row[0]) if row else "unknown"
        for name in ("fsync", "synchronous_commit"):
            row = conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(name))).fetchone()
            out[f"postgres_{name}"] = str(row[0]) if row else "unknown"
    out["kafka"] = kafka_version()
    client = redis.Redis.from_url(redis_url)
    try:
        out["redis"] = str(client.info("server").get("redis_version", "unknown"))
    finally:
        client.close()
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        changed = _git(
            "status", "--porcelain", "--untracked-files=no", "--", ".", ":!bench", ":!docs"
        )
        dirty = [line[3:] for line in changed.splitlines() if line.strip()]
        out["strata"] = _git("rev-parse", "--short", "HEAD").strip() + (
            f" + uncommitted changes to {', '.join(dirty)}" if dirty else ""
        )
    for package in ("aiokafka", "faust-streaming", "litestar", "uvicorn", "redis", "psycopg"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[package] = metadata.version(package)
    return out


async def measure(
    args: argparse.Namespace,
    results: Results,
    settings: Settings,
    processes: Processes,
    admin_token: str,
    ports: dict[str, int],
) -> None:
    platform = bootstrap(settings)
    monitor = Monitor(platform, settings.postgres_dsn, settings.postgres_schema)
    try:
        step("starting the command API, read API, relay and worker")
        # All at once: their bootstraps create the event store's tables under one advisory
        # lock (infra/adapters/eventstore/recorders.py, ddl_lock), so they take turns.
        command_url = f"http://127.0.0.1:{ports['command']}"
        read_url = f"http://127.0.0.1:{ports['read']}"
        processes.start("command-api", "serve", "command-api")
        processes.start("read-api", "serve", "read-api")
        processes.start("relay", "relay")
        processes.start("worker", "worker", "--projection", "lookups")
        await wait_healthy(command_url, processes)
        await wait_healthy(read_url, processes)
        await wait_relay_table(settings, processes)
        monitor.start()
        token, key_position = await create_key(command_url, admin_token)
        started = time.monotonic()
        await monitor.wait_watermark(key_position, 180, processes, "pipeline start")
        await monitor.relay_batches()  # connects the offsets consumer before any clock
        note(f"pipeline live: the key (position {key_position}) projected in "
             f"{time.monotonic() - started:.1f} s")  # fmt: skip

        rng = random.Random(20_251_125)
        burst_requests = math.ceil(args.burst / BURST_BATCH)

        async with (
            session(command_url, token, 256) as command,
            session(read_url, token, 1024) as read,
        ):
            for rate in [args.rate, *args.sweep]:

                async def load_phase(attempt: int, rate: float = rate) -> LoadPhase:
                    step(
                        f"load: {rate:,.0f} records/s for {args.warmup:.0f} + "
                        f"{args.seconds:.0f} s" + (f" (attempt {attempt})" if attempt > 1 else "")
                    )
                    load = Load(args, command, read, monitor, processes, rate)
                    phase = await load.run(processes.pids)
                    note(
                        f"achieved {phase.achieved_rate:,.0f} records/s; freshness (read API) "
                        f"p50 {phase.freshness_read_api.p50_ms} ms, p99 "
                        f"{phase.freshness_read_api.p99_ms} ms; waiting for the projection"
                    )
                    await monitor.wait_watermark(
                        load.max_position, args.drain_timeout, processes, "catch-up"
                    )
                    return phase

                phase = await undisturbed(
                    args, f"load {rate:,.0f}/s", load_phase, lambda p: p.cpu_cores, processes
                )
                if results.load is None:
                    results.load = phase
                else:
                    results.sweep.append(phase)

            async def live_phase(attempt: int) -> LiveBurstPhase:
                step(f"live burst: {args.burst:,} records as fast as possible, everything running")
                bodies = build_bodies(rng, f"live{attempt}", burst_requests, BURST_BATCH)
                b = await live_burst(command, monitor, processes, bodies, args.drain_timeout)
                note(
                    f"ingest {b.ingest.rate:,.0f}/s, relay {b.relay.rate:,.0f}/s, worker "
                    f"{b.worker.rate:,.0f}/s (events, from the burst's start to each reaching it)"
                )
                return b

            results.live_burst = await undisturbed(
                args, "live burst", live_phase, lambda p: p.cpu_cores, processes
            )

            async def isolated_phase(attempt: int) -> IsolatedPhase:
                step(f"isolated drain: {args.burst:,} records, relay paused, worker stopped")
                bodies = build_bodies(rng, f"isolated{attempt}", burst_requests, BURST_BATCH)
                return await isolated_drain(command, monitor, processes, bodies, args.drain_timeout)

            results.isolated = await undisturbed(
                args,
                "isolated drain",
                isolated_phase,
                lambda p: max((p.relay_cpu_cores, p.worker_cpu_cores), key=lambda c: c["other"]),
                processes,
            )

        async def raw_phase(attempt: int) -> RawPhase:
            step(
                f"raw baseline: aiokafka produce/consume of {args.burst:,} copies of relay messages"
            )
            raw = await raw_baseline(
                settings.kafka_bootstrap,
                platform.topics.events,
                f"{settings.kafka_topic_prefix}raw-baseline-{attempt}",
                settings.kafka_partitions,
                args.burst,
                processes.pids(),
            )
            note(f"raw produce {raw.produce_rate:,.0f}/s, raw consume {raw.consume_rate:,.0f}/s")
            return raw

        results.raw = raw = await undisturbed(
            args, "raw baseline", raw_phase, lambda p: p.cpu_cores, processes
        )
        iso = results.isolated

        async def bare_phase(_attempt: int) -> BareWorker:
            step("Strata's worker logic in this client: plain aiokafka -> ProjectionWorker.handle")
            bw = await bare_worker(settings, iso.offsets, processes.pids())
            note(f"{bw.rate:,.0f} events/s ({bw.messages:,} messages, {bw.cpu_s:.2f} s CPU here)")
            return bw

        results.bare_worker = bw = await undisturbed(
            args, "bare worker", bare_phase, lambda p: p.cpu_cores, processes
        )
        results.ratios = {
            "relay_alone/raw_produce": round(iso.relay.rate / raw.produce_rate, 3),
            "worker_alone/raw_consume": round(iso.worker.rate / raw.consume_rate, 3),
            "worker_alone/bare_worker": round(iso.worker.rate / bw.rate, 3),
            "bare_worker/raw_consume": round(bw.rate / raw.consume_rate, 3),
            "relay_live/raw_produce": round(results.live_burst.relay.rate / raw.produce_rate, 3),
            "worker_live/raw_consume": round(results.live_burst.worker.rate / raw.consume_rate, 3),
        }
        results.checks["attempts"] = dict(ATTEMPTS)

        # honesty: every event reached the projection, in Redis, and the relay is at the head
        head = await platform.source.head()
        results.checks |= {
            "event_store_head": head,
            "relay_position": monitor.relay.last,
            "projection_watermark": monitor.watermark.last,
            "watermark_polls": monitor.watermark.polls,
            "relay_polls": monitor.relay.polls,
        }
        if monitor.watermark.last < head:
            await monitor.wait_watermark(head, 60, processes, "final catch-up")
            results.checks["projection_watermark"] = monitor.watermark.last
    finally:
        await monitor.close()
        await platform.aclose()


def run(args: argparse.Namespace) -> Results:
    started = datetime.now(UTC)
    run_id = secrets.token_hex(3)
    step("provisioning PostgreSQL, Redis and Kafka (infra.provision.up)")
    infra_env = provision.up(["postgres", "redis", "kafka"])
    busy_before = wait_quiet(QUIET_LIMIT, args.wait_quiet) if args.wait_quiet else busy_cores(2.0)
    dsn = infra_env["STRATA_POSTGRES_DSN"]
    redis_url = infra_env["STRATA_REDIS_URL"]
    kafka = infra_env["STRATA_KAFKA_BOOTSTRAP"]
    schema = f"bench_pipeline_{run_id}"
    redis_prefix = f"bench-pipeline-{run_id}"
    topic_prefix = f"bench-pipeline-{run_id}."
    admin_token = "st_admin_" + secrets.token_urlsafe(24)
    ports = {"command": free_port(), "read": free_port()}
    settings = from_env(
        {},
        mode="distributed",
        projection_feed="kafka",
        postgres_dsn=dsn,
        postgres_schema=schema,
        postgres_pool_size=4,
        redis_url=redis_url,
        redis_prefix=redis_prefix,
        kafka_bootstrap=kafka,
        kafka_topic_prefix=topic_prefix,
        kafka_partitions=args.partitions,
        admin_token=admin_token,
        command_port=ports["command"],
        read_port=ports["read"],
        host="127.0.0.1",
        log_level="warning",
        min_position_timeout=args.min_position_timeout,
        watermark_interval=args.watermark_interval,
        relay_batch_size=args.relay_batch_size,
        worker_engine=args.engine,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRATA_")}
    for name in Settings.__struct_fields__:
        value = getattr(settings, name)
        if value is not None:
            env[f"STRATA_{name.upper()}"] = str(value)
    env["PYTHONUNBUFFERED"] = "1"
    for name, value in args.set:  # after the run's own settings: they may override them
        env[f"STRATA_{name.upper()}"] = value
    results = Results(
        started_at=started.isoformat(timespec="seconds"),
        command=" ".join([".venv/bin/python", "bench/pipeline.py", *sys.argv[1:]]),
        machine={**machine(), "busy_cores_before": busy_before},
        versions=versions(dsn, redis_url),
        settings={
            "run": run_id,
            "engine": args.engine,
            "rate": args.rate,
            "seconds": args.seconds,
            "warmup": args.warmup,
            "batch": args.batch,
            "partitions": args.partitions,
            "burst": args.burst,
            "sweep": args.sweep,
            "relay_batch_size": settings.relay_batch_size,
            "watermark_interval_s": settings.watermark_interval,
            "min_position_timeout_s": settings.min_position_timeout,
            "schema": schema,
            "topic_prefix": topic_prefix,
            "set": dict(args.set),
        },
    )
    workdir = Path(tempfile.mkdtemp(prefix="strata-bench-pipeline-"))
    processes = Processes(env, workdir, args.profile)
    failed = True
    try:
        asyncio.run(measure(args, results, settings, processes, admin_token, ports))
        processes.check_alive()
        failed = False
    finally:
        codes = processes.stop_all()
        bad = {name: code for name, code in codes.items() if code not in (0, None, -15)}
        if bad:
            err.print(f"[yellow]exit codes {bad}; logs in {workdir}[/yellow]")
        if args.keep:
            err.print(
                f"kept schema {schema}, Redis prefix {redis_prefix}, Kafka topics "
                f"{topic_prefix}*, logs in {workdir}"
            )
        else:
            with contextlib.suppress(Exception), psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
                )
            with contextlib.suppress(Exception):
                cleanup_redis(redis_url, redis_prefix)
            with contextlib.suppress(Exception):
                asyncio.run(delete_kafka(kafka, topic_prefix, f"{topic_prefix}projection.lookups"))
            if failed or bad:
                err.print(f"logs kept in {workdir}")
            else:
                shutil.rmtree(workdir, ignore_errors=True)
    return results


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------


def _lat_row(name: str, lat: Latency) -> list[str]:
    return [name, f"{lat.p50_ms:,.0f}", f"{lat.p95_ms:,.0f}", f"{lat.p99_ms:,.0f}",
            f"{lat.max_ms:,.0f}", str(lat.count)]  # fmt: skip


def summary(results: Results, console: Console) -> None:
    m, v, s = results.machine, results.versions, results.settings
    console.print(
        f"\n[bold]Pipeline benchmark[/bold] {results.started_at}  ({results.command})\n"
        f"machine: {m['nproc']} CPUs ({m['cpu']}), {m['ram_gib']} GiB RAM, Linux {m['kernel']}, "
        f"Python {m['python']}; load at start {' '.join(m['loadavg_at_start'])}, "
        f"{m['busy_cores_before']} cores busy just before\n"
        f"PostgreSQL {v['postgres']} (fsync={v['postgres_fsync']}, synchronous_commit="
        f"{v['postgres_synchronous_commit']}), Kafka {v['kafka']}, Redis {v['redis']}; "
        f"aiokafka {v.get('aiokafka')}, faust-streaming {v.get('faust-streaming')}\n"
        f"Strata {v.get('strata')}\n"
        f"{s['partitions']} partitions, relay batch {s['relay_batch_size']}, watermark interval "
        f"{s['watermark_interval_s']} s; everything shares the machine's cores"
    )
    for load in [results.load, *results.sweep]:
        if load is not None:
            _load_summary(load, s["batch"], console)
    if results.sweep and results.load is not None:
        table = Table(title="Freshness by rate (read API, ms)", title_justify="left")
        for column in ("target/s", "achieved/s", "p50", "p95", "p99", "max", "applied p99",
                       "worker/s", "lag at end", "read 5xx"):  # fmt: skip
            table.add_column(column, justify="right")
        for load in sorted([results.load, *results.sweep], key=lambda x: x.target_rate):
            f = load.freshness_read_api
            table.add_row(
                f"{load.target_rate:,.0f}",
                f"{load.achieved_rate:,.0f}",
                f"{f.p50_ms:,.0f}",
                f"{f.p95_ms:,.0f}",
                f"{f.p99_ms:,.0f}",
                f"{f.max_ms:,.0f}",
                f"{load.freshness_applied.p99_ms:,.0f}",
                f"{load.worker_rate:,.0f}",
                f"{load.lag_at_end['projection']:,}",
                str(sum(n for code, n in load.probe_retries.items() if code != 504)),
            )
        console.print(table)
    table = Table(title="Stage throughput (events/s)", title_justify="left")
    for column in ("stage", "live burst", "alone", "raw aiokafka", "alone / raw"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    live, iso, raw = results.live_burst, results.isolated, results.raw
    if live and iso and raw:
        table.add_row("ingest (HTTP -> PostgreSQL)", shown(live.ingest.rate),
                      shown(iso.ingest.rate), "", "")  # fmt: skip
        table.add_row(
            "relay publish (PG -> Kafka)",
            shown(live.relay.rate),
            shown(iso.relay.rate),
            f"{raw.produce_rate:,.0f} produce",
            shown(results.ratios["relay_alone/raw_produce"], ".3f"),
        )
        table.add_row(
            "worker apply (Kafka -> Redis)",
            shown(live.worker.rate),
            shown(iso.worker.rate),
            f"{raw.consume_rate:,.0f} consume",
            shown(results.ratios["worker_alone/raw_consume"], ".3f"),
        )
        if results.bare_worker is not None:
            table.add_row(
                "  its logic in this client (plain aiokafka)",
                "",
                f"{results.bare_worker.rate:,.0f}",
                f"{raw.consume_rate:,.0f} consume",
                shown(results.ratios["bare_worker/raw_consume"], ".3f"),
            )
        console.print(table)
        console.print(
            f"live burst: {live.ingest.records:,} records; peak lag relay {live.relay_lag_peak:,}, "
            f"projection {live.projection_lag_peak:,} events; caught up "
            f"{live.caught_up_after_ingest_s:.1f} s after the ingest ended. CPU: "
            + _cores(live.cpu_cores)
        )
        console.print("relay alone, CPU: " + _cores(iso.relay_cpu_cores))
        console.print(
            f"worker alone (first move {iso.worker_start_s:.1f} s after start), CPU: "
            + _cores(iso.worker_cpu_cores)
        )
        produce = shown(results.ratios["relay_alone/raw_produce"], ".3f")
        consume = shown(results.ratios["worker_alone/raw_consume"], ".3f")
        console.print(
            f"raw baseline: {raw.messages:,} messages of ~{raw.message_bytes_mean:.0f} B "
            f"(key + value + headers, copies of the relay's); ratios "
            f"relay/raw-produce {produce}, worker/raw-consume {consume}. CPU: "
            + _cores(raw.cpu_cores)
        )
        if results.bare_worker is not None:
            bw = results.bare_worker
            console.print(
                f"worker logic in this client: {bw.events_applied:,} events in {bw.seconds:.2f} s "
                f"({bw.cpu_s:.2f} s CPU in this client); worker process / this "
                + shown(results.ratios["worker_alone/bare_worker"], ".3f")
                + ". CPU: "
                + _cores(bw.cpu_cores)
            )
    c = results.checks
    if c:
        console.print(
            f"checks: event store head {c['event_store_head']:,}, relay at "
            f"{c['relay_position']:,}, projection at {c['projection_watermark']:,}; attempts "
            f"per phase (a phase disturbed by other processes is repeated): {c.get('attempts')}"
        )


def _load_summary(load: LoadPhase, batch: int, console: Console) -> None:
    retries = ", ".join(f"{n} x {code}" for code, n in sorted(load.probe_retries.items()))
    console.print(
        f"\n[bold]Sustained load[/bold]: target {load.target_rate:,.0f} records/s "
        f"({load.requests_per_s:.0f} requests/s of {batch}), achieved "
        f"{load.achieved_rate:,.0f}/s over {load.window_s:.0f} s; {load.requests} requests, "
        f"{load.errors} errors, {load.not_started} not started; generator late p99 "
        f"{load.send_lag.p99_ms} ms; read-API probe on every {load.probe_every}. write "
        f"({load.probes_skipped} skipped: --max-probes waiting), answers asked again: "
        f"{retries or 'none'}"
    )
    if load.errors:
        console.print(f"[red]errors by kind[/red] {load.error_kinds}; first: {load.first_error}")
    for code, body in sorted(load.probe_errors.items()):
        console.print(f"[yellow]read API answered {code}[/yellow], e.g. {body[:160]}")
    table = Table(title="Freshness: from the write's response to ...", title_justify="left")
    for column in ("", "p50 ms", "p95 ms", "p99 ms", "max ms", "n"):
        table.add_column(column, justify="left" if not column else "right")
    table.add_row(*_lat_row("visible in the read API (min_position)", load.freshness_read_api))
    table.add_row(*_lat_row("applied in Redis (watermark, 5 ms poll)", load.freshness_applied))
    table.add_row(*_lat_row("published by the relay (20 ms poll)", load.freshness_relayed))
    table.add_row(*_lat_row("read API after applied (its polling)", load.read_api_overhead))
    table.add_row(*_lat_row("ingest request itself (send -> response)", load.ingest_latency))
    console.print(table)
    trend = ", ".join(
        f"{w['from_s']:.0f}s: {w['p50_ms']:,.0f}/{w['p99_ms']:,.0f}" for w in load.windows
    )
    console.print(f"freshness p50/p99 ms per 5 s of the window: {trend}")
    console.print(
        f"stage rates over the window: relay {load.relay_rate:,.0f}, worker "
        f"{load.worker_rate:,.0f} events/s; lag at the end: relay {load.lag_at_end['relay']}, "
        f"projection {load.lag_at_end['projection']} events; relay batches "
        f"{load.relay_batches / load.window_s:,.0f}/s of {load.events_per_relay_batch} events "
        "(each followed by a watermark to every partition)"
    )
    console.print("CPU (cores): " + _cores(load.cpu_cores))
    console.print(
        "CPU per event (µs of CPU per record ingested; robust to other load on the machine): "
        + _per_event(load.cpu_cores, load.achieved_rate)
    )
    goal = load.freshness_read_api.p99_ms
    verdict = "[green]meets[/green]" if goal < 2000 else "[red]misses[/red]"
    console.print(
        f"[bold]freshness p99 {goal:,.0f} ms[/bold] at {load.achieved_rate:,.0f} records/s: "
        f"{verdict} the goal (< 2 s at 2k events/s); target < 500 ms "
        + ("[green]met[/green]" if goal < 500 else "[yellow]not yet[/yellow]")
    )


def _per_event(cpu: dict[str, float], rate: float) -> str:
    names = ["command-api", "read-api", "relay", "worker", "PostgreSQL", "Kafka", "Redis"]
    parts = [f"{name} {cpu[name] / rate * 1e6:,.0f}" for name in names if name in cpu]
    total = sum(cpu.get(name, 0.0) for name in names) / rate * 1e6
    return ", ".join(parts) + f"; pipeline total {total:,.0f} µs/event"


def _cores(cpu: dict[str, float]) -> str:
    order = ["command-api", "read-api", "relay", "worker", "PostgreSQL", "Kafka",
             "Redis", "bench client", "other", "irq+softirq", "steal", "machine busy"]  # fmt: skip
    return ", ".join(f"{name} {cpu[name]:.2f}" for name in order if name in cpu)


def _setting(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or name not in Settings.__struct_fields__:
        raise argparse.ArgumentTypeError(f"not NAME=VALUE of a setting in infra/config.py: {text}")
    return name, value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Commit-to-read-API freshness at a sustained rate; stage throughput vs raw "
        "aiokafka."
    )
    parser.add_argument("--rate", type=float, default=2000, help="records (events) per second")
    parser.add_argument(
        "--engine",
        choices=["faust", "batch"],
        default=Settings().worker_engine,
        help="the projection worker's STRATA_WORKER_ENGINE (default: the product's)",
    )
    parser.add_argument("--seconds", type=float, default=30, help="measured load duration")
    parser.add_argument("--warmup", type=float, default=5, help="unmeasured load first (s)")
    parser.add_argument(
        "--sweep",
        type=lambda text: [float(r) for r in text.split(",") if r],
        default=[],
        metavar="RATE,RATE",
        help="further load phases at these rates after --rate (where freshness degrades)",
    )
    parser.add_argument("--batch", type=int, default=20, help="records per ingest request")
    parser.add_argument("--partitions", type=int, default=6, help="events topic partitions")
    parser.add_argument("--burst", type=int, default=50_000, help="records per drain burst")
    parser.add_argument(
        "--probe-every", type=int, default=0, help="read-API probe every N-th write (0: ~100/s)"
    )
    parser.add_argument("--max-in-flight", type=int, default=1000, help="client request cap")
    parser.add_argument(
        "--max-probes",
        type=int,
        default=64,
        help="read-API probes waiting at once; more are skipped (every waiting read polls "
        "Redis through the read API's pool, STRATA_REDIS_POOL_SIZE)",
    )
    parser.add_argument("--drain-timeout", type=float, default=300, help="seconds per wait")
    parser.add_argument(
        "--min-position-timeout", type=float, default=30, help="STRATA_MIN_POSITION_TIMEOUT"
    )
    parser.add_argument(
        "--watermark-interval", type=float, default=None, help="STRATA_WATERMARK_INTERVAL"
    )
    parser.add_argument(
        "--relay-batch-size", type=int, default=None, help="STRATA_RELAY_BATCH_SIZE"
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0,
        metavar="SECONDS",
        help="first wait up to this long for the machine to be idle (others < 0.3 cores), and "
        "up to 180 s before each phase; repeat phases that others disturbed (--max-other)",
    )
    parser.add_argument(
        "--max-other",
        type=float,
        default=0.25,
        help="with --wait-quiet: repeat a phase while other processes used more cores than this",
    )
    parser.add_argument("--retries", type=int, default=2, help="repeats of a disturbed phase")
    parser.add_argument("--keep", action="store_true", help="keep schema, topics, Redis keys")
    parser.add_argument("--json", action="store_true", help="print a JSON object on stdout")
    parser.add_argument(
        "--set",
        metavar="NAME=VALUE",
        action="append",
        default=[],
        type=_setting,
        help="a setting of the Strata processes (infra/config.py), e.g. analytics_pace=60",
    )
    parser.add_argument(
        "--profile",
        metavar="PREFIX",
        help="sample the Strata processes' CPU by stack; reports PREFIX-<process>-<n>.txt",
    )
    args = parser.parse_args(argv)
    if (
        min([args.rate, *args.sweep]) <= 0
        or args.seconds <= 0
        or args.batch < 1
        or args.partitions < 1
    ):
        parser.error("--rate, --seconds, --batch and --partitions must be positive")
    if args.burst < BURST_BATCH:
        parser.error(f"--burst must be at least {BURST_BATCH}")
    if args.profile:
        args.profile = str(Path(args.profile).resolve())
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        results = run(args)
    except BenchError as exc:
        err.print(f"[red]benchmark failed:[/red] {exc}")
        return 1
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/yellow]")
        return 130
    if args.json:
        summary(results, Console(stderr=True, highlight=False, width=max(err.width, 120)))
        print(json.dumps(finite(asdict(results)), indent=2, default=str, allow_nan=False))
    else:
        summary(results, Console(highlight=False, width=max(Console().width, 120)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
