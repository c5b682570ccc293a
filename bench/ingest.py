"""Sustained HTTP ingest into PostgreSQL (fsync on), against a raw binary COPY of the same rows.

    .venv/bin/python bench/ingest.py [--records 200000] [--batch 1000] [--concurrency 4]
                                     [--single 2000] [--json] [--keep] [--profile PREFIX]

What it does, in one run (1-2 minutes with the defaults on 2 cores):
1. starts PostgreSQL and Redis if needed (`infra.provision.up`), creates a fresh schema and
   runs the real command API in a subprocess (`strata serve command-api`, distributed mode);
   creates an account and an `ingest:write` key through the API;
2. warm-up (not measured), then `--records` records of ~200 bytes (JSON, unique ids) POSTed
   to /v1/ingest/batch in batches of `--batch` by `--concurrency` keep-alive connections,
   the request bodies encoded before the clock starts;
3. the raw baseline: the exact rows Strata stored for those records, binary-COPYed into an
   identically shaped fresh table, in transactions of `--batch` rows over `--concurrency`
   connections: pre-encoded, and with psycopg's write_row (set_types uuid, int8, text,
   bytea); the faster, best of `--copy-rounds`, is the ratio's denominator. Also COPY under
   the table lock Strata's appends take, to show what that lock costs;
4. single-record latency: `--single` sequential POST /v1/ingest (and as many over 4
   connections), next to a raw one-row INSERT + COMMIT;
5. a summary (or `--json`), then stops the server (SIGTERM) and drops the schema and the
   Redis keys (unless `--keep`). SIGTERM or Ctrl-C on the benchmark cleans up the same way.

Honesty checks printed with the figures: `SHOW fsync` (must be on), record rows stored =
records sent, one transaction per request (distinct xmin per batch), the COPYed rows
identical to Strata's (EXCEPT is empty), and the CPU used by the server, PostgreSQL, this
client and anything else on the machine. Client, server and PostgreSQL share the machine's
cores; before each phase the benchmark waits (`--quiet-wait`) for other work to calm down,
and warns when other processes took CPU during the batch phase.

`--servers N` runs N command API processes on the same schema (the product ships one).
`--profile PREFIX` runs the server under bench/_sampler.py and writes PREFIX-1.txt (batch
phase) and PREFIX-2.txt (sequential single-record phase); `--profile-mode cprofile-cpu` uses
cProfile with each thread's CPU time instead of sampling.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import secrets
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from uuid import UUID

import httpx
import orjson
import psycopg
import redis
from eventsourcing.utils import get_topic
from psycopg import sql
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from _common import BenchError, err, free_port, step  # noqa: E402

from domain.record import Record  # noqa: E402
from infra import provision  # noqa: E402 - after the path fix, so it runs from a checkout

try:
    import aiohttp
except ImportError:  # httpx (a dev dependency) is the fallback
    aiohttp = None  # type: ignore[assignment]

SOURCE = "orders"
# The measured rows are the record events; the server may append others meanwhile (metering).
RECORD_TOPICS = [get_topic(Record.Created), get_topic(Record.Updated)]
IN_WINDOW = "notification_id > %s AND notification_id <= %s AND topic = ANY(%s)"
EVENTS_TABLE = "stored_events"
COPY_COLUMNS = "(originator_id, originator_version, topic, state)"
CLK_TCK = os.sysconf("SC_CLK_TCK")

# --------------------------------------------------------------------------------------------
# Machine and process accounting
# --------------------------------------------------------------------------------------------


def git_state() -> dict[str, Any]:
    """The commit measured, and how many files the working tree changes (the server runs the
    working tree: the project is installed editable)."""

    def git(*args: str) -> str:
        try:
            done = subprocess.run(
                ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True, timeout=10
            )
        except (OSError, subprocess.SubprocessError):
            return ""
        return done.stdout.strip()

    changed = [line for line in git("status", "--porcelain").splitlines() if line]
    return {"head": git("rev-parse", "--short", "HEAD"), "changed_files": len(changed)}


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


def _proc_cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def _all_postgres_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
    return pids


class PostgresProcesses:
    """Which PostgreSQL processes count as "ours": run() sets `find` to the backends of this
    run's connections (the server's pool and ours carry this run's application_name, through
    PGAPPNAME) plus the shared background processes (WAL writer, checkpointer, ...). Backends
    of other sessions on the same cluster then count as "other"."""

    find: Callable[[], list[int]] = staticmethod(_all_postgres_pids)


def _machine_ticks() -> tuple[int, int, int]:
    """(busy, iowait, total) jiffies over all CPUs."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle, iowait = values[3], values[4]
    total = sum(values[:8])
    return total - idle - iowait, iowait, total


@dataclass
class CpuSnapshot:
    at: float
    server: float
    postgres: dict[int, float]
    client: float
    ticks: tuple[int, int, int]

    @classmethod
    def take(cls, server_pids: Sequence[int]) -> CpuSnapshot:
        pg_pids = PostgresProcesses.find()
        return cls(
            at=time.perf_counter(),
            server=sum(_proc_cpu_s(pid) for pid in server_pids),
            postgres={pid: _proc_cpu_s(pid) for pid in pg_pids},
            client=time.process_time(),
            ticks=_machine_ticks(),
        )


@dataclass
class CpuUse:
    """CPU seconds spent during a phase, and as cores (CPU seconds per wall second)."""

    server_s: float
    postgres_s: float
    client_s: float
    machine_busy_pct: float
    machine_iowait_pct: float
    other_cores: float  # busy cores not used by the three above: other work, kernel threads

    @classmethod
    def between(cls, a: CpuSnapshot, b: CpuSnapshot) -> CpuUse:
        pg = sum(b.postgres[pid] - a.postgres.get(pid, 0.0) for pid in b.postgres)
        total = max(b.ticks[2] - a.ticks[2], 1)
        busy = (b.ticks[0] - a.ticks[0]) / total
        wall = max(b.at - a.at, 1e-9)
        ours = (b.server - a.server + pg + b.client - a.client) / wall
        return cls(
            server_s=round(b.server - a.server, 2),
            postgres_s=round(pg, 2),
            client_s=round(b.client - a.client, 2),
            machine_busy_pct=round(100 * busy, 1),
            machine_iowait_pct=round(100 * (b.ticks[1] - a.ticks[1]) / total, 1),
            other_cores=round(max(0.0, busy * (os.cpu_count() or 1) - ours), 2),
        )

    def cores(self, wall: float) -> str:
        return (
            f"server {self.server_s / wall:.2f}, postgres {self.postgres_s / wall:.2f}, "
            f"client {self.client_s / wall:.2f}, other {self.other_cores:.2f} cores; "
            f"machine busy {self.machine_busy_pct}%, iowait {self.machine_iowait_pct}%"
        )


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------

STATUSES = ("pending", "paid", "packed", "shipped", "delivered", "refunded", "cancelled")
COUNTRIES = ("DE", "FR", "US", "GB", "NL", "ES", "IT", "SE", "PL", "JP", "BR", "CA")
CURRENCIES = ("EUR", "USD", "GBP", "SEK", "PLN", "JPY")
TAGS = ("gift", "promo", "b2b", "express", "first-order", "vip", "backorder", "fragile")


def make_record(rng: random.Random, run: str, index: int) -> dict[str, Any]:
    """One order-like record of about 200 bytes as JSON ({"id":..., "data":{...}})."""
    customer = rng.randrange(1, 2_000_000)
    created = 1_735_689_600 + rng.randrange(0, 31_536_000)
    return {
        "id": f"ord-{run}-{index:08d}",
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
class Workload:
    batch_bodies: list[bytes]
    batch_sizes: list[int]
    single_bodies: list[bytes]
    concurrent_single_bodies: list[bytes]
    warmup_bodies: list[bytes]
    warmup_single_bodies: list[bytes]
    record_bytes_mean: float
    records: int


def build_workload(args: argparse.Namespace, run: str) -> Workload:
    rng = random.Random(20_251_123)

    def records(prefix: str, count: int) -> list[dict[str, Any]]:
        return [make_record(rng, f"{run}{prefix}", i) for i in range(count)]

    def batches(recs: list[dict[str, Any]]) -> list[bytes]:
        return [
            orjson.dumps({"source": SOURCE, "records": recs[i : i + args.batch]})
            for i in range(0, len(recs), args.batch)
        ]

    measured = records("b", args.records)
    sizes = [len(orjson.dumps(r)) for r in measured[:5000]]
    bodies = batches(measured)
    batch_sizes = [min(args.batch, args.records - i) for i in range(0, args.records, args.batch)]

    def singles(prefix: str, count: int) -> list[bytes]:
        return [orjson.dumps({"source": SOURCE, **r}) for r in records(prefix, count)]

    return Workload(
        batch_bodies=bodies,
        batch_sizes=batch_sizes,
        single_bodies=singles("s", args.single),
        concurrent_single_bodies=singles("c", args.single),
        warmup_bodies=batches(records("w", args.batch * args.warmup_batches)),
        warmup_single_bodies=singles("x", 200),
        record_bytes_mean=sum(sizes) / max(len(sizes), 1),
        records=args.records,
    )


# --------------------------------------------------------------------------------------------
# Progress: bars on a terminal, a line every few seconds otherwise (logs, CI)
# --------------------------------------------------------------------------------------------


class Meter:
    def __init__(self, label: str, total: int) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self.started = time.perf_counter()
        self.last_line = self.started
        self.progress: Progress | None = None
        if err.is_terminal:
            self.progress = Progress(
                TextColumn("  {task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=err,
                transient=True,
            )
            self.task = self.progress.add_task(label, total=total)
            self.progress.start()

    def advance(self, n: int) -> None:
        self.done += n
        if self.progress is not None:
            self.progress.update(self.task, completed=self.done)
            return
        now = time.perf_counter()
        if now - self.last_line >= 5.0:
            self.last_line = now
            rate = self.done / (now - self.started)
            err.print(f"  {self.label}: {self.done}/{self.total} ({rate:,.0f}/s)")

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


# --------------------------------------------------------------------------------------------
# The server under test
# --------------------------------------------------------------------------------------------


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path
    profiled: bool

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise BenchError(
                f"the command API exited with {self.process.returncode}:\n{self.log_tail()}"
            )

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def signal(self, sig: int) -> None:
        if self.profiled and self.process.poll() is None:
            self.process.send_signal(sig)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                err.print("[yellow]the server did not stop in 30 s; killing it[/yellow]")
                self.process.kill()
                self.process.wait(timeout=10)


def start_server(
    env: dict[str, str], port: int, log_path: Path, profile: str | None, mode: str = "sample"
) -> Server:
    strata = Path(sys.executable).with_name("strata")
    if not strata.exists():
        raise BenchError(f"{strata} not found: run from the project's venv (.venv/bin/python)")
    # Run the entry-point script with this interpreter rather than through its shebang, which
    # a reinstall from another virtualenv can leave pointing at a missing interpreter.
    command = [sys.executable, str(strata), "serve", "command-api"]
    if profile:
        sampler = Path(__file__).with_name("_sampler.py")
        command = [
            sys.executable,
            str(sampler),
            "--out",
            profile,
            "--mode",
            mode,
            "--",
            *command[1:],
        ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,
        )
    return Server(process, f"http://127.0.0.1:{port}", log_path, profiled=bool(profile))


# --------------------------------------------------------------------------------------------
# HTTP client: aiohttp when installed (cheaper per request), else httpx; both keep-alive
# --------------------------------------------------------------------------------------------


class Http(Protocol):
    async def post(self, path: str, body: bytes) -> tuple[int, bytes]: ...

    async def get(self, path: str) -> int: ...

    async def aclose(self) -> None: ...


class AiohttpClient:
    name = "aiohttp"

    def __init__(self, base_url: str, token: str | None, connections: int) -> None:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.session = aiohttp.ClientSession(
            base_url=base_url,
            headers=headers,
            connector=aiohttp.TCPConnector(limit=connections),
            timeout=aiohttp.ClientTimeout(total=120),
        )

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        async with self.session.post(path, data=body) as response:
            return response.status, await response.read()

    async def get(self, path: str) -> int:
        async with self.session.get(path) as response:
            await response.read()
            return response.status

    async def aclose(self) -> None:
        await self.session.close()


class HttpxClient:
    name = "httpx"

    def __init__(self, base_url: str, token: str | None, connections: int) -> None:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.client = httpx.AsyncClient(
            base_url=base_url,
            headers=headers,
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
            timeout=120,
        )

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        response = await self.client.post(path, content=body)
        return response.status_code, response.content

    async def get(self, path: str) -> int:
        return (await self.client.get(path)).status_code

    async def aclose(self) -> None:
        await self.client.aclose()


def http_client(base_url: str, token: str | None, connections: int) -> Http:
    if aiohttp is None:
        return HttpxClient(base_url, token, connections)
    return AiohttpClient(base_url, token, connections)


async def wait_healthy(server: Server, timeout: float = 60.0) -> None:
    client = http_client(server.base_url, None, 1)
    deadline = time.monotonic() + timeout
    try:
        while True:
            server.check_alive()
            with contextlib.suppress(Exception):
                if await client.get("/health") == 200:
                    return
            if time.monotonic() > deadline:
                raise BenchError(f"the command API was not healthy in {timeout}s")
            await asyncio.sleep(0.1)
    finally:
        await client.aclose()


async def create_key(base_url: str, admin_token: str) -> str:
    admin = http_client(base_url, admin_token, 1)
    try:
        status, body = await admin.post(
            "/v1/account/create",
            orjson.dumps({"name": "Bench", "email": "bench@strata.example", "plan": "enterprise"}),
        )
        if status != 201:
            raise BenchError(f"account/create answered {status}: {body[:300]!r}")
        account_id = orjson.loads(body)["data"]["id"]
        status, body = await admin.post(
            "/v1/apikey/generate",
            orjson.dumps({"account_id": account_id, "name": "bench", "scopes": ["ingest:write"]}),
        )
        if status != 201:
            raise BenchError(f"apikey/generate answered {status}: {body[:300]!r}")
        return str(orjson.loads(body)["data"]["secret"])
    finally:
        await admin.aclose()


# --------------------------------------------------------------------------------------------
# Measurements
# --------------------------------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]


@dataclass
class Latency:
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Latency:
        ordered = sorted(seconds)
        return cls(
            p50_ms=round(percentile(ordered, 50) * 1000, 2),
            p95_ms=round(percentile(ordered, 95) * 1000, 2),
            p99_ms=round(percentile(ordered, 99) * 1000, 2),
            max_ms=round((ordered[-1] if ordered else float("nan")) * 1000, 2),
        )


@dataclass
class Phase:
    name: str
    items: int
    seconds: float
    per_second: float
    transactions: int
    concurrency: int
    latency: Latency | None = None
    cpu: CpuUse | None = None
    mb_per_second: float | None = None
    wal_bytes: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


async def post_all(
    clients: Sequence[Http],
    path: str,
    bodies: Sequence[bytes],
    sizes: Sequence[int],
    concurrency: int,
    meter: Meter | None,
    check: Callable[[int, bytes, int], None],
) -> list[float]:
    """POSTs every body over `concurrency` connections (spread over the clients, one per
    server process); returns each request's latency."""
    latencies: list[float] = []
    work = iter(range(len(bodies)))

    async def worker(client: Http) -> None:
        for i in work:
            started = time.perf_counter()
            status, payload = await client.post(path, bodies[i])
            latencies.append(time.perf_counter() - started)
            check(status, payload, sizes[i])
            if meter is not None:
                meter.advance(sizes[i])

    await asyncio.gather(*(worker(clients[n % len(clients)]) for n in range(concurrency)))
    return latencies


def expect(status_wanted: int) -> Callable[[int, bytes, int], None]:
    def check(status: int, payload: bytes, count: int) -> None:
        if status != status_wanted:
            raise BenchError(f"ingest answered {status}: {payload[:500]!r}")
        if count > 1:
            data = orjson.loads(payload)["data"]
            if data["count"] != count:
                raise BenchError(f"a batch of {count} answered count={data['count']}")

    return check


class Db:
    """The benchmark's own connection for bookkeeping (not used by any measured path)."""

    def __init__(self, dsn: str, schema: str, app_name: str) -> None:
        self.dsn = dsn
        self.schema = schema
        self.app_name = app_name
        self.conn = self.connect(autocommit=True)
        self.pids_conn = self.connect(autocommit=True)

    def connect(self, *, autocommit: bool = False) -> psycopg.Connection[Any]:
        return psycopg.connect(self.dsn, autocommit=autocommit, application_name=self.app_name)

    def our_postgres_pids(self) -> list[int]:
        """Backends of this run's sessions, and PostgreSQL's own background processes."""
        rows = self.pids_conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s "
            "OR backend_type IS DISTINCT FROM 'client backend'",
            (self.app_name,),
        ).fetchall()
        return [int(row[0]) for row in rows]

    def table(self, name: str) -> sql.Composed:
        return sql.SQL("{}.{}").format(sql.Identifier(self.schema), sql.Identifier(name))

    def scalar(self, query: sql.Composable | str, params: Sequence[Any] = ()) -> Any:
        row = self.conn.execute(query, params).fetchone()  # type: ignore[arg-type]
        return None if row is None else row[0]

    def head(self) -> int:
        query = sql.SQL("SELECT coalesce(max(notification_id), 0) FROM {}").format(
            self.table(EVENTS_TABLE)
        )
        return int(self.scalar(query))

    def wal_lsn(self) -> int:
        """The WAL insert position, in bytes (exact, unlike pg_stat_wal's delayed counters)."""
        return int(self.scalar("SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')"))

    def create_like_events(self, name: str) -> None:
        """A fresh table shaped like eventsourcing's stored_events (same keys and index)."""
        self.conn.execute(
            sql.SQL(
                "CREATE TABLE {table} ("
                "originator_id uuid NOT NULL, originator_version bigint NOT NULL, "
                "topic text, state bytea, notification_id bigserial, "
                "PRIMARY KEY (originator_id, originator_version)) WITH ("
                "autovacuum_enabled = true, autovacuum_vacuum_threshold = 100000000, "
                "autovacuum_vacuum_scale_factor = 0.5, autovacuum_analyze_threshold = 1000, "
                "autovacuum_analyze_scale_factor = 0.01)"
            ).format(table=self.table(name))
        )
        self.conn.execute(
            sql.SQL("CREATE UNIQUE INDEX {index} ON {table} (notification_id ASC)").format(
                index=sql.Identifier(f"{name}_notification_id_idx"), table=self.table(name)
            )
        )

    def close(self) -> None:
        self.conn.close()
        self.pids_conn.close()


Row = tuple[UUID, int, str, bytes]

_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)
_COPY_TRAILER = struct.pack("!h", -1)
_ROW_HEAD = struct.Struct("!hi16siqi")


def binary_copy_payload(rows: Sequence[Row]) -> bytes:
    """PostgreSQL's binary COPY format for (uuid, int8, text, bytea) rows."""
    parts = [_COPY_SIGNATURE]
    for originator_id, version, topic, state in rows:
        encoded = topic.encode()
        parts.append(_ROW_HEAD.pack(4, 16, originator_id.bytes, 8, version, len(encoded)))
        parts.append(encoded)
        parts.append(struct.pack("!i", len(state)))
        parts.append(state)
    parts.append(_COPY_TRAILER)
    return b"".join(parts)


def copy_phase(
    db: Db,
    table: str,
    chunks: Sequence[Sequence[Row]],
    payloads: Sequence[bytes] | None,
    concurrency: int,
    *,
    lock_table: bool,
    label: str,
    server_pids: Sequence[int],
) -> Phase:
    """COPY every chunk in its own transaction, over `concurrency` connections (threads)."""
    statement = sql.SQL("COPY {} {} FROM STDIN (FORMAT BINARY)").format(
        db.table(table), sql.SQL(COPY_COLUMNS)
    )
    lock = sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(db.table(table))
    conns = [db.connect() for _ in range(concurrency)]  # connected before timing
    work = iter(range(len(chunks)))
    take = threading.Lock()
    latencies: list[float] = []
    errors: list[BaseException] = []
    total = sum(len(c) for c in chunks)
    meter = Meter(label, total)

    def worker(conn: psycopg.Connection[Any]) -> None:
        try:
            while True:
                with take:
                    i = next(work, None)
                if i is None:
                    return
                started = time.perf_counter()
                with conn.transaction(), conn.cursor() as cur:
                    if lock_table:
                        cur.execute(lock)
                    with cur.copy(statement) as copy:
                        if payloads is not None:
                            copy.write(payloads[i])
                        else:
                            copy.set_types(["uuid", "int8", "text", "bytea"])
                            for row in chunks[i]:
                                copy.write_row(row)
                latencies.append(time.perf_counter() - started)
                with take:
                    meter.advance(len(chunks[i]))
        except BaseException as exc:  # reported by the caller
            errors.append(exc)

    wal0 = db.wal_lsn()
    cpu0 = CpuSnapshot.take(server_pids)
    threads = [threading.Thread(target=worker, args=(c,)) for c in conns]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    cpu1 = CpuSnapshot.take(server_pids)
    wal1 = db.wal_lsn()
    meter.close()
    for conn in conns:
        conn.close()
    if errors:
        raise BenchError(f"{label} failed: {errors[0]!r}") from errors[0]
    seconds = cpu1.at - cpu0.at
    return Phase(
        name=label,
        items=total,
        seconds=round(seconds, 3),
        per_second=round(total / seconds, 1),
        transactions=len(chunks),
        concurrency=concurrency,
        latency=Latency.of(latencies),
        cpu=CpuUse.between(cpu0, cpu1),
        wal_bytes=wal1 - wal0,
    )


def insert_phase(db: Db, table: str, rows: Sequence[Row], server_pids: Sequence[int]) -> Phase:
    """One-row INSERT + COMMIT, sequentially: the floor of a single-record write's latency."""
    statement = sql.SQL("INSERT INTO {} {} VALUES (%s, %s, %s, %s)").format(
        db.table(table), sql.SQL(COPY_COLUMNS)
    )
    latencies: list[float] = []
    with db.connect(autocommit=True) as conn:
        conn.execute(statement, rows[0], prepare=True)
        cpu0 = CpuSnapshot.take(server_pids)
        for row in rows[1:]:
            started = time.perf_counter()
            conn.execute(statement, row, prepare=True)
            latencies.append(time.perf_counter() - started)
        cpu1 = CpuSnapshot.take(server_pids)
    seconds = cpu1.at - cpu0.at
    return Phase(
        name="raw INSERT + COMMIT",
        items=len(latencies),
        seconds=round(seconds, 3),
        per_second=round(len(latencies) / seconds, 1),
        transactions=len(latencies),
        concurrency=1,
        latency=Latency.of(latencies),
        cpu=CpuUse.between(cpu0, cpu1),
    )


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------


@dataclass
class Results:
    started_at: str
    command: str
    machine: dict[str, Any]
    postgres: dict[str, str]
    settings: dict[str, Any]
    record_bytes_mean: float
    checks: dict[str, Any] = field(default_factory=dict)
    phases: dict[str, Phase] = field(default_factory=dict)
    ratio: float | None = None
    ratio_vs: dict[str, float] = field(default_factory=dict)


def wait_quiet(max_wait: float, busy_below: float = 0.2) -> float:
    """Waits (bounded) until the machine is mostly idle, so other work does not skew a phase.

    Returns the busy fraction last seen; the measured phases also report the CPU used by
    other processes while they ran."""
    deadline = time.monotonic() + max_wait
    told = False
    while True:
        a = _machine_ticks()
        time.sleep(1.0)
        b = _machine_ticks()
        busy = (b[0] - a[0]) / max(b[2] - a[2], 1)
        if busy < busy_below or time.monotonic() >= deadline:
            if told or busy >= busy_below:
                err.print(f"  machine busy {busy:.0%} (other work); going on")
            return busy
        if not told:
            err.print(f"  machine busy {busy:.0%} with other work; waiting up to {max_wait:.0f}s")
            told = True


async def http_phase(
    servers: Sequence[Server],
    token: str,
    *,
    name: str,
    path: str,
    bodies: Sequence[bytes],
    sizes: Sequence[int],
    warmup: Sequence[bytes],
    warmup_size: int,
    concurrency: int,
    profile: bool,
    quiet_wait: float,
    on_start: Callable[[], None] | None = None,
) -> Phase:
    """Fresh keep-alive connections, an unmeasured warm-up on them, then the measured POSTs.

    (Connections are not reused across phases: uvicorn closes idle ones after 5 s.)"""
    wait_quiet(quiet_wait)
    per_server = -(-concurrency // len(servers))
    clients = [http_client(server.base_url, token, per_server) for server in servers]
    pids = [server.process.pid for server in servers]
    check = expect(200)
    try:
        await post_all(clients, path, warmup, [warmup_size] * len(warmup), concurrency, None, check)
        if on_start is not None:
            on_start()
        meter = Meter(f"{name}: POST {path}", sum(sizes))
        if profile:
            for server in servers:
                server.signal(signal.SIGUSR1)
        cpu0 = CpuSnapshot.take(pids)
        latencies = await post_all(clients, path, bodies, sizes, concurrency, meter, check)
        cpu1 = CpuSnapshot.take(pids)
        if profile:
            for server in servers:
                server.signal(signal.SIGUSR2)
        meter.close()
    finally:
        for client in clients:
            await client.aclose()
    seconds = cpu1.at - cpu0.at
    items = sum(sizes)
    body_bytes = sum(len(b) for b in bodies)
    lat = Latency.of(latencies)
    phase = Phase(
        name=name,
        items=items,
        seconds=round(seconds, 3),
        per_second=round(items / seconds, 1),
        transactions=len(bodies),
        concurrency=concurrency,
        latency=lat,
        cpu=CpuUse.between(cpu0, cpu1),
        mb_per_second=round(body_bytes / seconds / 1e6, 2),
        extra={"request_body_bytes": body_bytes},
    )
    err.print(
        f"  {phase.per_second:,.0f}/s, {seconds:.2f}s; per request p50 {lat.p50_ms} ms, "
        f"p99 {lat.p99_ms} ms\n  CPU: {phase.cpu.cores(seconds) if phase.cpu else ''}"
    )
    return phase


async def measure(
    args: argparse.Namespace, results: Results, db: Db, servers: Sequence[Server], token: str
) -> None:
    step("encoding the request bodies")
    workload = build_workload(args, results.settings["run"])
    results.record_bytes_mean = round(workload.record_bytes_mean, 1)
    pids = [server.process.pid for server in servers]
    events = db.table(EVENTS_TABLE)

    # 1 + 2. warm-up, then sustained batch ingest
    step(
        f"batch ingest: {args.records:,} records of ~{workload.record_bytes_mean:.0f} B JSON, "
        f"batches of {args.batch}, {args.concurrency} connections "
        f"(after {len(workload.warmup_bodies)} unmeasured batches)"
    )
    marks: dict[str, int] = {}

    def mark() -> None:
        marks["head"] = db.head()
        marks["wal"] = db.wal_lsn()

    batch = await http_phase(
        servers,
        token,
        name="Strata, HTTP batches",
        path="/v1/ingest/batch",
        bodies=workload.batch_bodies,
        sizes=workload.batch_sizes,
        warmup=workload.warmup_bodies,
        warmup_size=args.batch,
        concurrency=args.concurrency,
        profile=True,
        quiet_wait=args.quiet_wait,
        on_start=mark,
    )
    batch.wal_bytes = db.wal_lsn() - marks["wal"]
    head0, head1 = marks["head"], db.head()
    results.phases["strata_batch"] = batch

    # honesty: every record stored once, one transaction per request
    stored, xacts = db.conn.execute(
        sql.SQL("SELECT count(*), count(DISTINCT xmin::text) FROM {} WHERE " + IN_WINDOW).format(
            events
        ),
        (head0, head1, RECORD_TOPICS),
    ).fetchone() or (0, 0)
    results.checks["rows_stored"] = stored
    results.checks["transactions_seen"] = xacts
    results.checks["other_events_in_window"] = dict(
        db.conn.execute(
            sql.SQL(
                "SELECT topic, count(*) FROM {} WHERE notification_id > %s "
                "AND notification_id <= %s AND NOT topic = ANY(%s) GROUP BY topic"
            ).format(events),
            (head0, head1, RECORD_TOPICS),
        ).fetchall()
    )
    if stored != args.records:
        raise BenchError(f"{stored} rows stored for {args.records} records sent")
    if xacts != len(workload.batch_bodies):
        raise BenchError(f"{xacts} transactions for {len(workload.batch_bodies)} requests")

    # 3. the raw baseline, on the very rows Strata wrote
    step("raw baseline: reading back the rows Strata stored")
    db.conn.execute(sql.SQL("ANALYZE {}").format(events))  # not autoanalyze during a COPY
    with db.conn.cursor(binary=True) as cur:
        cur.execute(
            sql.SQL(
                "SELECT originator_id, originator_version, topic, state FROM {} WHERE "
                + IN_WINDOW
                + " ORDER BY notification_id"
            ).format(events),
            (head0, head1, RECORD_TOPICS),
        )
        rows: list[Row] = [(r[0], r[1], r[2], bytes(r[3])) for r in cur.fetchall()]
    results.checks["stored_row_bytes_mean"] = round(
        sum(16 + 8 + len(r[2]) + len(r[3]) for r in rows) / len(rows), 1
    )
    chunks = [rows[i : i + args.batch] for i in range(0, len(rows), args.batch)]
    payloads = [binary_copy_payload(c) for c in chunks]
    db.create_like_events("copy_warmup")
    warm = chunks[: max(1, 2 * args.concurrency)]
    copy_phase(
        db,
        "copy_warmup",
        warm,
        payloads[: len(warm)],
        args.concurrency,
        lock_table=False,
        label="COPY warm-up",
        server_pids=pids,
    )
    variants = [
        ("copy_pre", "COPY BINARY, pre-encoded", payloads, False),
        ("copy_rows", "COPY BINARY, write_row", None, False),
        ("copy_locked", "COPY BINARY + table lock", payloads, True),
    ]
    for round_ in range(1, args.copy_rounds + 1):
        for key, label, data, locked in variants:
            table = f"{key}_{round_}"
            db.create_like_events(table)
            step(
                f"{label} (round {round_}/{args.copy_rounds}): {len(rows):,} rows, "
                f"{len(chunks)} transactions, {args.concurrency} connections"
            )
            wait_quiet(args.quiet_wait)
            phase = copy_phase(
                db,
                table,
                chunks,
                data,
                args.concurrency,
                lock_table=locked,
                label=label,
                server_pids=pids,
            )
            err.print(f"  {phase.per_second:,.0f} rows/s, {phase.seconds:.2f}s")
            verify_copy(db, table, events, head0, head1, len(rows), len(chunks))
            best = results.phases.get(key)
            phase.extra["rounds"] = [*(best.extra["rounds"] if best else []), phase.per_second]
            if best is None or phase.per_second > best.per_second:
                results.phases[key] = phase
            else:
                best.extra["rounds"] = phase.extra["rounds"]
            db.conn.execute(sql.SQL("DROP TABLE {}").format(db.table(table)))
    results.checks["copy_rows_identical"] = True
    baseline = max(results.phases["copy_pre"].per_second, results.phases["copy_rows"].per_second)
    results.ratio = round(batch.per_second / baseline, 3)
    for key, _, _, _ in variants:
        results.ratio_vs[key] = round(batch.per_second / results.phases[key].per_second, 3)
    err.print(f"  [bold]ratio {results.ratio:.3f}[/bold] (Strata / the faster unlocked COPY)")

    # 4. single-record latency
    step(f"single-record ingest: {args.single} sequential POST /v1/ingest")
    half = len(workload.warmup_single_bodies) // 2
    results.phases["strata_single"] = await http_phase(
        servers[:1],
        token,
        name="Strata, 1 connection",
        path="/v1/ingest",
        bodies=workload.single_bodies,
        sizes=[1] * len(workload.single_bodies),
        warmup=workload.warmup_single_bodies[:half],
        warmup_size=1,
        concurrency=1,
        profile=True,
        quiet_wait=args.quiet_wait,
    )
    step(f"single-record ingest: {args.single} POST /v1/ingest over 4 connections")
    results.phases["strata_single_c4"] = await http_phase(
        servers,
        token,
        name="Strata, 4 connections",
        path="/v1/ingest",
        bodies=workload.concurrent_single_bodies,
        sizes=[1] * len(workload.concurrent_single_bodies),
        warmup=workload.warmup_single_bodies[half:],
        warmup_size=1,
        concurrency=4,
        profile=False,
        quiet_wait=args.quiet_wait,
    )
    db.create_like_events("insert_single")
    single_rows = rows[: min(args.single, len(rows))]
    step(f"raw baseline: {len(single_rows) - 1} sequential one-row INSERT + COMMIT")
    wait_quiet(args.quiet_wait)
    results.phases["insert_single"] = insert_phase(db, "insert_single", single_rows, pids)


def verify_copy(
    db: Db, table: str, events: sql.Composed, head0: int, head1: int, rows: int, chunks: int
) -> None:
    """The COPYed rows are exactly Strata's rows, written in one transaction per chunk."""
    differing = db.scalar(
        sql.SQL(
            "SELECT count(*) FROM (SELECT originator_id, originator_version, topic, state "
            "FROM {events} WHERE " + IN_WINDOW + " "
            "EXCEPT SELECT originator_id, originator_version, topic, state FROM {copy}) d"
        ).format(events=events, copy=db.table(table)),
        (head0, head1, RECORD_TOPICS),
    )
    count, xacts = db.conn.execute(
        sql.SQL("SELECT count(*), count(DISTINCT xmin::text) FROM {}").format(db.table(table))
    ).fetchone() or (0, 0)
    if differing or count != rows or xacts != chunks:
        raise BenchError(f"{table}: {count} rows in {xacts} transactions, {differing} differ")


def postgres_facts(db: Db) -> dict[str, str]:
    facts = {"version": str(db.scalar("SHOW server_version"))}
    for name in (
        "fsync",
        "synchronous_commit",
        "full_page_writes",
        "wal_sync_method",
        "shared_buffers",
        "max_wal_size",
    ):
        facts[name] = str(db.scalar(sql.SQL("SHOW {}").format(sql.Identifier(name))))
    facts["other_active_sessions_at_start"] = str(
        db.scalar(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE state = 'active' AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        )
    )
    return facts


def cleanup_redis(url: str, prefix: str) -> int:
    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        return len(keys)
    finally:
        client.close()


def run(args: argparse.Namespace) -> Results:
    started = datetime.now(UTC)
    run_id = secrets.token_hex(3)
    step("provisioning PostgreSQL and Redis (infra.provision.up)")
    infra_env = provision.up(["postgres", "redis"])
    dsn = infra_env["STRATA_POSTGRES_DSN"]
    redis_url = infra_env["STRATA_REDIS_URL"]
    schema = f"bench_ingest_{run_id}"
    prefix = f"bench-ingest-{run_id}"
    results = Results(
        started_at=started.isoformat(timespec="seconds"),
        command=" ".join([".venv/bin/python", "bench/ingest.py", *sys.argv[1:]]),
        machine=machine(),
        postgres={},
        settings={
            "run": run_id,
            "records": args.records,
            "batch": args.batch,
            "concurrency": args.concurrency,
            "servers": args.servers,
            "copy_rounds": args.copy_rounds,
            "git": git_state(),
            "single": args.single,
            "schema": schema,
        },
        record_bytes_mean=0.0,
    )
    app_name = f"bench-ingest-{run_id}"
    db = Db(dsn, schema, app_name)
    PostgresProcesses.find = db.our_postgres_pids
    servers: list[Server] = []
    log_dir = Path(tempfile.mkdtemp(prefix="strata-bench-"))
    try:
        results.postgres = postgres_facts(db)
        if results.postgres["fsync"] != "on":
            raise BenchError(f"PostgreSQL runs with fsync={results.postgres['fsync']}")
        db.conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        admin_token = "st_admin_" + secrets.token_urlsafe(24)
        env = {
            **os.environ,
            "STRATA_MODE": "distributed",
            "STRATA_POSTGRES_DSN": dsn,
            "STRATA_POSTGRES_SCHEMA": schema,
            "STRATA_REDIS_URL": redis_url,
            "STRATA_REDIS_PREFIX": prefix,
            "STRATA_ADMIN_TOKEN": admin_token,
            "STRATA_HOST": "127.0.0.1",
            "STRATA_LOG_LEVEL": "warning",
            "PGAPPNAME": app_name,  # libpq: the server's connections carry this run's name
        }
        env.pop("STRATA_DATA_DIR", None)
        for n in range(args.servers):
            port = free_port()
            step(f"starting `strata serve command-api` on :{port} (schema {schema})")
            servers.append(
                start_server(
                    {**env, "STRATA_COMMAND_PORT": str(port)},
                    port,
                    log_dir / f"command-api-{n}.log",
                    f"{args.profile}-p{n}" if args.profile and args.servers > 1 else args.profile,
                    args.profile_mode,
                )
            )
            # one at a time: each creates the tables, and concurrent CREATE TABLE IF NOT EXISTS
            # of the same table can fail in PostgreSQL (pg_type unique violation)
            asyncio.run(wait_healthy(servers[-1]))
        results.settings["server_pids"] = [server.process.pid for server in servers]
        token = asyncio.run(create_key(servers[0].base_url, admin_token))
        asyncio.run(measure(args, results, db, servers, token))
        for server in servers:
            server.check_alive()
    finally:
        for server in servers:
            server.stop()
            if server.process.returncode not in (0, None):
                err.print(f"[yellow]server exit code {server.process.returncode}[/yellow]")
        if args.keep:
            err.print(f"kept schema {schema}, Redis prefix {prefix}, server log in {log_dir}")
        else:
            with contextlib.suppress(Exception):
                db.conn.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
                )
            with contextlib.suppress(Exception):
                cleanup_redis(redis_url, prefix)
            with contextlib.suppress(OSError):
                for path in log_dir.iterdir():
                    path.unlink()
                log_dir.rmdir()
        db.close()
    return results


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------


def _cores(p: Phase) -> str:
    if p.cpu is None or p.seconds <= 0:
        return ""
    c = p.cpu
    return (
        f"{c.server_s / p.seconds:.2f} / {c.postgres_s / p.seconds:.2f} / "
        f"{c.client_s / p.seconds:.2f} / {c.other_cores:.2f}"
    )


def summary(results: Results, console: Console) -> None:
    m, pg, s = results.machine, results.postgres, results.settings
    servers = f", {s['servers']} server processes" if s.get("servers", 1) > 1 else ""
    console.print(
        f"\n[bold]Ingest benchmark[/bold] {results.started_at}  ({results.command}; commit "
        f"{s['git']['head']}, {s['git']['changed_files']} files changed in the working tree)\n"
        f"machine: {m['nproc']} CPUs ({m['cpu']}), {m['ram_gib']} GiB RAM, Linux {m['kernel']}, "
        f"Python {m['python']}; load at start {' '.join(m['loadavg_at_start'])}\n"
        f"PostgreSQL {pg['version']}: fsync={pg['fsync']}, "
        f"synchronous_commit={pg['synchronous_commit']}, "
        f"full_page_writes={pg['full_page_writes']}, wal_sync_method={pg['wal_sync_method']}, "
        f"shared_buffers={pg['shared_buffers']}; other active sessions at start: "
        f"{pg['other_active_sessions_at_start']}\n"
        f"records ~{results.record_bytes_mean:.0f} B of JSON each "
        f"(stored row ~{results.checks.get('stored_row_bytes_mean', 0):.0f} B with metadata); "
        f"batch {s['batch']}, concurrency {s['concurrency']}{servers}; client, server and "
        "PostgreSQL share the machine"
    )
    table = Table(title="Throughput", title_justify="left")
    columns = ("phase", "rows/s", "s", "tx", "tx p50 / p99 ms", "cores srv / pg / client / other")
    for column in columns:
        table.add_column(column, justify="left" if column == "phase" else "right")
    for key in ("strata_batch", "copy_pre", "copy_rows", "copy_locked"):
        p = results.phases.get(key)
        if p is None:
            continue
        lat = f"{p.latency.p50_ms} / {p.latency.p99_ms}" if p.latency else ""
        rate = f"{p.per_second:,.0f}"
        table.add_row(p.name, rate, f"{p.seconds:.2f}", str(p.transactions), lat, _cores(p))
    console.print(table)
    batch = results.phases.get("strata_batch")
    if batch is not None and results.ratio is not None:
        verdict = "[green]meets[/green]" if results.ratio >= 0.10 else "[red]misses[/red]"
        console.print(
            f"[bold]ratio = {results.ratio:.3f}[/bold] (Strata records/s / raw COPY rows/s, the "
            f"faster unlocked COPY variant, best of {s.get('copy_rounds', 1)} rounds): {verdict} "
            "the 0.10 target (goal 0.25); "
            f"vs COPY under the same table lock: {results.ratio_vs.get('copy_locked', 0):.3f}\n"
            f"Strata: {batch.mb_per_second} MB/s of request bodies; WAL "
            f"{(batch.wal_bytes or 0) / batch.items:.0f} B/record (COPY "
            f"{(results.phases['copy_pre'].wal_bytes or 0) / batch.items:.0f} B/row)"
        )
    lat_table = Table(title="Single-record ingest", title_justify="left")
    for column in ("phase", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "cores srv / pg"):
        lat_table.add_column(column, justify="left" if column == "phase" else "right")
    for key in ("strata_single", "strata_single_c4", "insert_single"):
        p = results.phases.get(key)
        if p is None or p.latency is None:
            continue
        cores = (
            f"{p.cpu.server_s / p.seconds:.2f} / {p.cpu.postgres_s / p.seconds:.2f}"
            if p.cpu and key != "insert_single"
            else ""
        )
        lat_table.add_row(
            p.name,
            f"{p.per_second:,.0f}",
            f"{p.latency.p50_ms}",
            f"{p.latency.p95_ms}",
            f"{p.latency.p99_ms}",
            f"{p.latency.max_ms}",
            cores,
        )
    console.print(lat_table)
    checks = results.checks
    console.print(
        f"checks: {checks.get('rows_stored')} rows stored in {checks.get('transactions_seen')} "
        f"transactions (one per request); COPYed rows identical to Strata's: "
        f"{checks.get('copy_rows_identical')}; cores = CPU seconds per wall second of the "
        "server process(es), all PostgreSQL processes, this client, and anything else"
    )
    if batch is not None and batch.cpu is not None and batch.cpu.other_cores > 0.25:
        console.print(
            f"[yellow]warning: {batch.cpu.other_cores:.2f} cores were busy with other work "
            "during the batch phase; the figures are low (run on a quiet machine)[/yellow]"
        )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Sustained HTTP batch ingest vs a raw binary COPY of the same rows.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--records", type=int, default=200_000, help="measured batch records")
    parser.add_argument("--batch", type=int, default=1000, help="records per request/transaction")
    parser.add_argument("--concurrency", type=int, default=4, help="client connections")
    parser.add_argument("--single", type=int, default=2000, help="single-record requests")
    parser.add_argument(
        "--servers",
        type=int,
        default=1,
        help="command API processes (clients spread over them); 1 is the product as shipped",
    )
    parser.add_argument("--warmup-batches", type=int, default=8, help="unmeasured batches first")
    parser.add_argument("--copy-rounds", type=int, default=3, help="COPY rounds (the best counts)")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=60.0,
        help="before each phase, wait up to this many seconds for an idle machine",
    )
    parser.add_argument("--keep", action="store_true", help="keep the schema and Redis keys")
    parser.add_argument("--json", action="store_true", help="print a JSON object on stdout")
    parser.add_argument(
        "--profile",
        metavar="PREFIX",
        help="sample the server's CPU by stack (bench/_sampler.py); reports PREFIX-1/2.txt",
    )
    parser.add_argument(
        "--profile-mode",
        choices=("sample", "cprofile", "cprofile-cpu"),
        default="sample",
        help="sample: CPU-weighted stack sampling of every thread; cprofile: deterministic "
        "(wall time); cprofile-cpu: deterministic, each thread's CPU time",
    )
    args = parser.parse_args(argv)
    if min(args.records, args.batch, args.concurrency, args.single, args.servers) < 1:
        parser.error("--records, --batch, --concurrency, --single, --servers must be positive")
    if args.single < 2:
        parser.error("--single must be at least 2")
    if args.profile:
        args.profile = str(Path(args.profile).resolve())
    return args


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM cleans up like Ctrl-C: the server is stopped and the schema dropped
    signal.signal(signal.SIGTERM, _interrupt)
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
        print(json.dumps(asdict(results), indent=2, default=str))
    else:
        summary(results, Console(highlight=False, width=max(Console().width, 120)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
