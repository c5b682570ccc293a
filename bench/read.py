"""The read side: read-by-id against a bare Litestar endpoint, search over 1M records and an
analytic query over 10M records, through the real `strata serve read-api`.

    .venv/bin/python bench/read.py [--records 100000] [--search-docs 1000000]
                                   [--analytics-records 10000000] [--seconds 10] [--rounds 3]
                                   [--connections 16] [--revocations 30] [--wait-quiet S]
                                   [--json] [--keep] [--profile PREFIX [--profile-mode M]]

What it does, in one run (distributed mode, projections fed from the log, no Kafka):
1. starts PostgreSQL, Redis and Elasticsearch if needed (`infra.provision.up`); a fresh schema,
   Redis prefix, Elasticsearch index prefix and chdb path; `strata serve command-api` and
   `strata projector` as subprocesses; an account (plan `enterprise`: no rate limit) and a
   `data:read` + `ingest:write` key through the API;
2. data: `--records` order records (~200 B of JSON) ingested through `POST /v1/ingest/batch`
   and projected by the projector into Redis (lookups) and Elasticsearch (search);
   `--search-docs` more documents fed to Elasticsearch through the search projection's rules
   and its adapter; `--analytics-records` records generated inside ClickHouse (chdb) into the
   analytics table (bench/_read_data.py says how);
3. `strata serve read-api` starts on that chdb path (it owns it and feeds `analytics` from the
   log); the benchmark waits until every read model reached the log's head through the API
   (`min_position`); then `--revocations` keys are issued, accepted and revoked one after
   the other, to time how long a revoked key keeps working (bench/_read_revoke.py, which
   also runs alone over the embedded, log and Kafka feeds); then the command API and the
   projector stop (the read API is idle from then on: its CPU is measured for 5 s);
4. read by id: `GET /v1/data/orders/<random key>` with wrk (closed loop, `--connections`),
   `--rounds` times alternating with the baseline — a bare Litestar app served by uvicorn in
   one process like the read API (bench/_bare_app.py), answering the very same envelope from
   memory; then Strata's `GET /health` under the same load (the server and its middleware
   without authentication or a read model: where the time goes); then both sides one
   connection at a time (latency unloaded). Ratio Strata / bare;
5. search: `--search-queries` queries of each of several kinds, one at a time, through the
   read API; the same queries straight to Elasticsearch (the adapter's own request body,
   routing and index) as the raw baseline;
6. analytics: `--query-runs` runs of each query through `POST /v1/data/query`; then, after the
   read API stopped, the same compiled SQL in chdb directly on the same data (the engine's
   own time, without HTTP, the app or the thread hop), and the headline query over other
   table designs built from the same rows (`engine_variants`: what the target would need);
7. a summary (or `--json` on stdout), then everything created is deleted (unless `--keep`).

CPU used by each process group and by everything else ("other") is printed per phase: the
machine has 2 cores shared with other people's work, which moves absolute figures; ratios
against a baseline measured in the same run move less. `--wait-quiet SECONDS` waits, before
each measured run, until other work uses under 0.3 cores (or that long has passed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import resource
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import psycopg
import redis
from elasticsearch import AsyncElasticsearch
from psycopg import sql
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import _read_data as data  # noqa: E402
import _read_revoke as revoke  # noqa: E402
import _read_wrk as wrk  # noqa: E402
from _common import BenchError, err, free_port, note, step  # noqa: E402
from _read_cpu import CpuSnapshot, busy_cores, cores_text, proc_cpu_s  # noqa: E402

from infra import provision  # noqa: E402 - after the path fix, so it runs from a checkout
from infra.adapters.clickhouse import hot  # noqa: E402
from infra.adapters.search import elastic_query  # noqa: E402
from infra.adapters.search.elastic import ElasticSearchIndex  # noqa: E402
from infra.config import Settings, from_env  # noqa: E402
from projections.search import SearchQuery  # noqa: E402
from read_api.querylang import QueryLimits, compile_query, parse_query  # noqa: E402
from read_api.search import parse_q, parse_sort  # noqa: E402

ORDERS, DOCS, SALES = "orders", "docs", "sales"
RECORD_PATH = "/v1/data/orders/r-%07d"
HEALTH_PATH = "/health?n=%d"
INGEST_BATCH = 1000
TARGET_RATIO, GOAL_RATIO = 0.4, 0.6
TARGET_QUERY_MS, GOAL_QUERY_MS = 500, 100
PROFILE_RESET = signal.SIGRTMIN + 1  # bench/_pipeline_sampler.py
PROFILE_REPORT = signal.SIGRTMIN + 2

# --------------------------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def check(self) -> None:
        if self.process.poll() is not None:
            tail = self.log.read_text(errors="replace").splitlines()[-30:]
            raise BenchError(
                f"`{self.name}` exited with {self.process.returncode}:\n" + "\n".join(tail)
            )

    def stop(self, timeout: float = 60.0) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return self.process.returncode


class Processes:
    def __init__(
        self,
        env: dict[str, str],
        workdir: Path,
        profile: str | None = None,
        profile_mode: str = "sample",
    ) -> None:
        self.env = env
        self.profile = profile
        self.profile_mode = profile_mode
        self.workdir = workdir
        self.running: dict[str, Proc] = {}

    def start(self, name: str, command: list[str], env: dict[str, str] | None = None) -> Proc:
        log = self.workdir / f"{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                command,
                env=env or self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                start_new_session=True,
            )
        self.running[name] = proc = Proc(name, process, log)
        return proc

    def strata(self, name: str, *args: str, profiled: bool = False) -> Proc:
        command = [str(Path(sys.executable).with_name("strata")), *args]
        if profiled and self.profile and self.profile_mode == "sample":
            sampler = str(ROOT / "bench" / "_pipeline_sampler.py")
            command = [sys.executable, sampler, "--out", self.profile, "--", *command]
        elif profiled and self.profile:  # deterministic: SIGUSR1 / SIGUSR2 (bench/_sampler.py)
            sampler = str(ROOT / "bench" / "_sampler.py")
            mode = ["--mode", self.profile_mode]
            command = [sys.executable, sampler, "--out", self.profile, *mode, "--", *command]
        return self.start(name, command)

    def signal(self, name: str, sig: int) -> None:
        proc = self.running.get(name)
        if self.profile and proc is not None and proc.process.poll() is None:
            if self.profile_mode != "sample":
                sig = signal.SIGUSR1 if sig == PROFILE_RESET else signal.SIGUSR2
            proc.process.send_signal(sig)

    def stop(self, name: str) -> int | None:
        return self.running.pop(name).stop()

    def stop_all(self) -> dict[str, int | None]:
        return {name: self.stop(name) for name in list(self.running)}

    def pids(self) -> dict[str, int]:
        return {name: proc.pid for name, proc in self.running.items()}

    def check(self) -> None:
        for proc in self.running.values():
            proc.check()


async def wait_healthy(url: str, procs: Processes, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as client:
        while True:
            procs.check()
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with client.get(f"{url}/health") as response:
                    if response.status == 200:
                        return
            if time.monotonic() > deadline:
                raise BenchError(f"{url} was not healthy in {timeout:.0f} s")
            await asyncio.sleep(0.2)


QUIET_LIMIT = 0.3  # cores other work may use for the machine to count as quiet


async def quiet(procs: Processes, args: argparse.Namespace) -> float:
    """Before a measured phase: wait (up to --wait-quiet seconds) until processes outside
    this run (the shared servers included: this run leaves them idle in between) use under
    QUIET_LIMIT cores; returns the last reading, also kept in results.quiet_waits."""
    started = time.monotonic()
    while True:
        before = CpuSnapshot.take(procs.pids())
        await asyncio.sleep(2.0)
        cores = before.cores_until(CpuSnapshot.take(procs.pids()))
        ours = sum(v for k, v in cores.items() if k in procs.running or k == "bench client")
        others = round(max(0.0, cores["machine busy"] - ours), 2)
        waited = time.monotonic() - started
        if others < QUIET_LIMIT or waited >= args.wait_quiet:
            args.quiet_waits.append({"others": others, "waited_s": round(waited, 1)})
            return others
        note(f"the machine is busy ({others:.2f} cores used by others); waiting for it to quieten")
        await asyncio.sleep(5.0)


# --------------------------------------------------------------------------------------------
# Set-up: account, key, data
# --------------------------------------------------------------------------------------------


async def call(
    client: aiohttp.ClientSession, method: str, url: str, body: Any = None, want: int = 200
) -> Any:
    payload = None if body is None else orjson.dumps(body)
    async with client.request(method, url, data=payload) as response:
        raw = await response.read()
        if response.status != want:
            raise BenchError(f"{method} {url} answered {response.status}: {raw[:300]!r}")
        return orjson.loads(raw)


def session(token: str, connections: int = 4) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        connector=aiohttp.TCPConnector(limit=connections, keepalive_timeout=2.0),
        timeout=aiohttp.ClientTimeout(total=600),
    )


async def create_key(command_url: str, admin_token: str) -> tuple[str, str, int]:
    """(account id, key secret, the key's position)."""
    async with session(admin_token) as admin:
        body: dict[str, Any] = {
            "name": "Bench",
            "email": "bench@strata.example",
            "plan": "enterprise",
        }
        account = (await call(admin, "POST", f"{command_url}/v1/account/create", body, 201))["data"]
        body = {
            "account_id": account["id"],
            "name": "bench",
            "scopes": ["data:read", "ingest:write"],
        }
        key = (await call(admin, "POST", f"{command_url}/v1/apikey/generate", body, 201))["data"]
        return str(account["id"]), str(key["secret"]), int(key["position"])


def order(rng: random.Random, n: int) -> dict[str, Any]:
    return {
        "id": f"r-{n:07d}",
        "data": {
            "customer": f"cus_{rng.randrange(1, 2_000_000):07d}",
            "amount_cents": rng.randrange(100, 250_000),
            "currency": rng.choice(data.CURRENCIES),
            "status": rng.choice(data.STATUSES),
            "items": rng.randrange(1, 9),
            "country": rng.choice(data.COUNTRIES),
            "created_at": "2026-03-01T12:00:00Z",
            "tags": rng.sample(data.TAGS, rng.randrange(0, 3)),
        },
    }


async def ingest(command_url: str, token: str, records: int) -> int:
    """`records` orders through POST /v1/ingest/batch; the last position."""
    rng = random.Random(5)
    bodies = [
        orjson.dumps(
            {
                "source": ORDERS,
                "records": [
                    order(rng, n) for n in range(start, min(records, start + INGEST_BATCH))
                ],
            }
        )
        for start in range(0, records, INGEST_BATCH)
    ]
    last = 0
    async with session(token, 2) as client:

        async def post(body: bytes) -> None:
            nonlocal last
            async with client.post(f"{command_url}/v1/ingest/batch", data=body) as response:
                raw = await response.read()
                if response.status not in (200, 201):
                    raise BenchError(f"ingest answered {response.status}: {raw[:300]!r}")
                last = max(last, int(orjson.loads(raw)["data"]["position"]))

        for i in range(0, len(bodies), 2):
            await asyncio.gather(*(post(b) for b in bodies[i : i + 2]))
    return last


async def load_search(es_url: str, prefix: str, account: str, count: int) -> float:
    client = AsyncElasticsearch(es_url, request_timeout=120)
    index = ElasticSearchIndex(client, prefix)
    shown = [0.0]

    def progress(done: int) -> None:
        if time.monotonic() - shown[0] > 15:
            shown[0] = time.monotonic()
            note(f"search: {done:,} of {count:,} documents")

    try:
        return await data.load_search(index, account, DOCS, count, progress=progress)
    finally:
        await client.close()


def load_analytics(chdb_path: Path, account: str, count: int) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "_read_data.py"), "analytics", "--path",
         str(chdb_path), "--account", account, "--source", SALES, "--count", str(count),
         "--queries", json.dumps(list(ANALYTIC_QUERIES.values()))],
        capture_output=True, text=True, check=False, cwd=ROOT,
    )  # fmt: skip
    if done.returncode != 0:
        raise BenchError(f"loading analytics failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


async def read_api_idle(pid: int, timeout: float = 900.0, below: float = 0.25) -> float:
    """Seconds until the read API's process uses less than `below` cores over 3 s: queries
    are timed without its analytics compaction (the orders it just applied make one due;
    its compactor checks every 10 s) or the merges after the bulk load running beside them."""
    started = time.perf_counter()
    await asyncio.sleep(12)
    while time.perf_counter() - started < timeout:
        before = proc_cpu_s(pid)
        await asyncio.sleep(3)
        if (proc_cpu_s(pid) - before) / 3 < below:
            return round(time.perf_counter() - started, 1)
    raise BenchError(f"the read API was still busy after {timeout:.0f} s")


async def wait_models(read_url: str, token: str, position: int, timeout: float) -> None:
    """Until lookups, search and analytics all applied `position` (the API's own gate)."""
    deadline = time.monotonic() + timeout
    checks = [
        ("GET", f"/v1/data/{ORDERS}/r-0000000", None),
        ("GET", f"/v1/data/{ORDERS}/search?limit=1", None),
        ("POST", "/v1/data/query", {"source": ORDERS}),
    ]
    async with session(token, 1) as client:
        for method, path, body in checks:
            while True:
                joiner = "&" if "?" in path else "?"
                url = f"{read_url}{path}{joiner}min_position={position}"
                async with client.request(
                    method, url, data=orjson.dumps(body) if body else None
                ) as r:
                    raw = await r.read()
                    if r.status == 200:
                        break
                    # 504: min_position's own timeout; 408: the request timeout, as long,
                    # may fire first. Either way the model is still catching up: ask again.
                    if r.status not in (504, 408) or time.monotonic() > deadline:
                        raise BenchError(f"{method} {path} answered {r.status}: {raw[:300]!r}")


# --------------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, int(q / 100 * len(ordered) + 0.999999) - 1))]


@dataclass
class Latency:
    n: int
    p50_ms: float
    p99_ms: float
    max_ms: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Latency:
        return cls(
            n=len(seconds),
            p50_ms=round(percentile(seconds, 50) * 1000, 2),
            p99_ms=round(percentile(seconds, 99) * 1000, 2),
            max_ms=round(max(seconds, default=float("nan")) * 1000, 2),
        )


# --------------------------------------------------------------------------------------------
# Phase: read by id vs a bare Litestar endpoint
# --------------------------------------------------------------------------------------------


@dataclass
class WrkRun:
    side: str
    connections: int
    result: wrk.WrkResult
    cpu: dict[str, float]


async def wrk_run(
    side: str,
    url: str,
    keys: int,
    token: str,
    connections: int,
    seconds: float,
    procs: Processes,
    path: str = RECORD_PATH,
) -> WrkRun:
    before = CpuSnapshot.take(procs.pids())
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    if side == "strata":
        procs.signal("strata", PROFILE_RESET)
    process, script = wrk.start(url, path, keys, token, connections=connections, seconds=seconds)
    result = await asyncio.to_thread(wrk.finish, process, script)
    if side == "strata":
        procs.signal("strata", PROFILE_REPORT)
    after = CpuSnapshot.take(procs.pids())
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    wrk_cpu = reaped.ru_utime + reaped.ru_stime - children.ru_utime - children.ru_stime
    cpu = before.cores_until(after, extra={"wrk": wrk_cpu})
    procs.check()
    if result.non_2xx or result.socket_errors:
        raise BenchError(
            f"{side}: {result.non_2xx} non-2xx answers, {result.socket_errors} socket errors"
        )
    return WrkRun(side, connections, result, cpu)


@dataclass
class ReadById:
    keys: int
    response_bytes: dict[str, float]
    runs: list[WrkRun] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    health: dict[str, float] = field(default_factory=dict)
    """Strata's GET /health under the same load: the server and middleware alone."""


def summarize_reads(runs: list[WrkRun], loaded: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for side in ("strata", "bare"):
        busy = [r for r in runs if r.side == side and r.connections == loaded]
        single = [r for r in runs if r.side == side and r.connections == 1]
        rates = [r.result.rate for r in busy]
        out[side] = {
            "req_per_s_median": round(statistics.median(rates), 1),
            "req_per_s_runs": rates,
            "p50_ms_loaded": round(statistics.median(r.result.p50_ms for r in busy), 2),
            "p99_ms_loaded": round(statistics.median(r.result.p99_ms for r in busy), 2),
            "p50_ms_one_connection": round(statistics.median(r.result.p50_ms for r in single), 2),
            "p99_ms_one_connection": round(statistics.median(r.result.p99_ms for r in single), 2),
            "server_cores": round(statistics.median(r.cpu.get(side, 0.0) for r in busy), 2),
            "cpu_us_per_request": round(
                statistics.median(r.cpu.get(side, 0.0) / r.result.rate * 1e6 for r in busy), 1
            ),
            "other_cores": round(statistics.median(r.cpu["other"] for r in busy), 2),
        }
    pairs = [
        s.result.rate / b.result.rate
        for s, b in zip(
            [r for r in runs if r.side == "strata" and r.connections == loaded],
            [r for r in runs if r.side == "bare" and r.connections == loaded],
            strict=True,
        )
    ]
    out["ratio_per_round"] = [round(p, 3) for p in pairs]
    out["ratio"] = round(statistics.median(pairs), 3)
    out["ratio_cpu_per_request"] = round(
        out["bare"]["cpu_us_per_request"] / out["strata"]["cpu_us_per_request"], 3
    )
    return out


async def read_by_id(
    args: argparse.Namespace, urls: dict[str, str], token: str, procs: Processes
) -> ReadById:
    sizes: dict[str, float] = {}
    async with session(token, 1) as client:
        for side in ("strata", "bare"):
            async with client.get(urls[side] + RECORD_PATH % 1) as response:
                sizes[side] = len(await response.read())
    result = ReadById(keys=args.records, response_bytes=sizes)
    for side in ("strata", "bare"):  # warm-up, not measured
        await wrk_run(side, urls[side], args.records, token, args.connections, 2, procs)
    for round_ in range(args.rounds):
        for side in ("strata", "bare") if round_ % 2 == 0 else ("bare", "strata"):
            await quiet(procs, args)
            run = await wrk_run(
                side, urls[side], args.records, token, args.connections, args.seconds, procs
            )
            result.runs.append(run)
            r = run.result
            note(
                f"round {round_ + 1} {side:6s} c={args.connections}: {r.rate:,.0f} req/s, p50 "
                f"{r.p50_ms:.2f} ms, p99 {r.p99_ms:.2f} ms; CPU: {cores_text(run.cpu)}"
            )
    # Where Strata's time goes: GET /health through the same server and middleware (request
    # id, tracing span, security headers, metrics, log line, metering, and the one Redis call
    # that checks the client's failed logins), no authentication, no read model.
    await quiet(procs, args)
    run = await wrk_run(
        "strata", urls["strata"], 1, token, args.connections, args.seconds, procs, HEALTH_PATH
    )
    r = run.result
    result.health = {
        "req_per_s": r.rate,
        "p50_ms": r.p50_ms,
        "p99_ms": r.p99_ms,
        "server_cores": run.cpu.get("strata", 0.0),
        "cpu_us_per_request": round(run.cpu.get("strata", 0.0) / r.rate * 1e6, 1),
        "other_cores": run.cpu["other"],
    }
    note(
        f"strata GET /health c={args.connections}: {r.rate:,.0f} req/s, p50 {r.p50_ms:.2f} ms; "
        f"CPU: {cores_text(run.cpu)}"
    )
    for side in ("strata", "bare"):
        await quiet(procs, args)
        run = await wrk_run(side, urls[side], args.records, token, 1, args.seconds, procs)
        result.runs.append(run)
        r = run.result
        note(f"{side:6s} c=1: {r.rate:,.0f} req/s, p50 {r.p50_ms:.2f} ms, p99 {r.p99_ms:.2f} ms")
    result.summary = summarize_reads(result.runs, args.connections)
    return result


# --------------------------------------------------------------------------------------------
# Phase: search
# --------------------------------------------------------------------------------------------


def search_queries(per_kind: int, seed: int = 3) -> dict[str, list[dict[str, str]]]:
    """Query-string parameters per kind; different words each time (no cache can answer)."""
    rng = random.Random(seed)
    words = data.vocabulary(5000)
    common, mid, rare = words[:20], words[100:1000], words[3000:]
    kinds: dict[str, Callable[[], dict[str, str]]] = {
        "one common word": lambda: {"q": rng.choice(common)},
        "one rare word": lambda: {"q": rng.choice(rare)},
        "two words": lambda: {"q": f"{rng.choice(common)} {rng.choice(mid)}"},
        "prefix (3 letters)": lambda: {"q": rng.choice(mid)[:3] + "*"},
        "phrase": lambda: {"q": f'"{rng.choice(common)} {rng.choice(common)}"'},
        "filters, no q": lambda: {
            "filter[category]": rng.choice(data.CATEGORIES),
            "filter[color]": rng.choice(data.COLORS),
        },
        "word + filter, sort=-updated_at": lambda: {
            "q": rng.choice(mid),
            "filter[category]": rng.choice(data.CATEGORIES),
            "sort": "-updated_at",
        },
        "no q, sort=-data.price_cents": lambda: {"sort": "-data.price_cents"},
    }
    return {name: [make() for _ in range(per_kind)] for name, make in kinds.items()}


def raw_search_body(account: str, params: dict[str, str]) -> dict[str, Any]:
    """What the Elasticsearch adapter sends for these parameters (elastic_query.request)."""
    by = parse_sort(params.get("sort"))
    filters = tuple((k[7:-1], v) for k, v in params.items() if k.startswith("filter["))
    query = SearchQuery(account, DOCS, parse_q(params.get("q")), filters, sort=by, limit=20)
    body = elastic_query.request(query)
    body["_source"] = {"excludes": body.pop("source_excludes")}  # a client keyword, not body
    return body


@dataclass
class SearchKind:
    kind: str
    api: Latency
    raw: Latency
    hits_median: int


@dataclass
class SearchPhase:
    documents: int
    kinds: list[SearchKind]
    api: Latency
    raw: Latency
    ratio_p50: float
    cpu: dict[str, float]


async def search_phase(
    args: argparse.Namespace,
    read_url: str,
    es_url: str,
    alias: str,
    account: str,
    token: str,
    procs: Processes,
) -> SearchPhase:
    queries = search_queries(args.search_queries)
    api_all: list[float] = []
    raw_all: list[float] = []
    kinds: list[SearchKind] = []
    before = CpuSnapshot.take(procs.pids())
    async with (
        session(token, 1) as api,
        aiohttp.ClientSession(headers={"Content-Type": "application/json"}) as es,
    ):
        for params in queries["two words"][:3]:  # warm-up
            async with api.get(f"{read_url}/v1/data/{DOCS}/search", params=params) as r:
                await r.read()
        for kind, items in queries.items():
            api_s, raw_s, hits = [], [], []
            for params in items:
                started = time.perf_counter()
                async with api.get(f"{read_url}/v1/data/{DOCS}/search", params=params) as r:
                    raw = await r.read()
                api_s.append(time.perf_counter() - started)
                if r.status != 200:
                    raise BenchError(f"search {params} answered {r.status}: {raw[:300]!r}")
                hits.append(int(orjson.loads(raw)["data"]["total"]))
                body = orjson.dumps(raw_search_body(account, params))
                started = time.perf_counter()
                async with es.post(
                    f"{es_url}/{alias}/_search", params={"routing": account}, data=body
                ) as r:
                    raw = await r.read()
                raw_s.append(time.perf_counter() - started)
                if r.status != 200 or orjson.loads(raw)["hits"]["total"]["value"] != hits[-1]:
                    raise BenchError(f"raw search {params} disagrees with the API: {raw[:300]!r}")
            kinds.append(
                SearchKind(kind, Latency.of(api_s), Latency.of(raw_s), int(statistics.median(hits)))
            )
            api_all += api_s
            raw_all += raw_s
            k = kinds[-1]
            note(
                f"{kind:32s} API p50 {k.api.p50_ms:6.1f} p99 {k.api.p99_ms:6.1f} ms | raw ES p50 "
                f"{k.raw.p50_ms:6.1f} p99 {k.raw.p99_ms:6.1f} ms | hits ~{k.hits_median:,}"
            )
    cpu = before.cores_until(CpuSnapshot.take(procs.pids()))
    api_lat, raw_lat = Latency.of(api_all), Latency.of(raw_all)
    return SearchPhase(
        args.search_docs, kinds, api_lat, raw_lat, round(raw_lat.p50_ms / api_lat.p50_ms, 3), cpu
    )


# --------------------------------------------------------------------------------------------
# Phase: analytics
# --------------------------------------------------------------------------------------------

ANALYTIC_QUERIES: dict[str, dict[str, Any]] = {
    # the headline: a filter, a group, a sum and two quantiles over every record
    "paid revenue by country": {
        "source": SALES,
        "filters": [{"field": "data.status", "op": "eq", "value": "paid"}],
        "group_by": ["data.country"],
        "aggregates": [
            {"fn": "count"},
            {"fn": "sum", "field": "data.amount_cents", "as": "revenue"},
            {"fn": "quantiles", "field": "data.amount_cents", "levels": [0.5, 0.99]},
        ],
        "order_by": [{"field": "revenue", "dir": "desc"}],
    },
    "count by status": {"source": SALES, "group_by": ["data.status"]},
    "count": {"source": SALES},
    "revenue by month, one quarter": {
        "source": SALES,
        "time_range": {"from": "2026-04-01T00:00:00Z", "to": "2026-07-01T00:00:00Z"},
        "group_by": [{"bucket": "month", "field": "updated_at"}],
        "aggregates": [{"fn": "sum", "field": "data.amount_cents", "as": "revenue"}],
    },
}


@dataclass
class QueryResult:
    name: str
    api: Latency
    engine: Latency | None = None
    rows: int = 0
    first_row: dict[str, Any] = field(default_factory=dict)


@dataclass
class AnalyticsPhase:
    load: dict[str, Any]
    queries: list[QueryResult]
    cpu: dict[str, float]
    parts_at_query: dict[str, Any] = field(default_factory=dict)
    variants: dict[str, Latency] = field(default_factory=dict)
    variant_rows: dict[str, list[Any]] = field(default_factory=dict)
    prepare_s: dict[str, float] = field(default_factory=dict)


async def analytics_phase(
    args: argparse.Namespace, read_url: str, token: str, load: dict[str, Any], procs: Processes
) -> AnalyticsPhase:
    results: list[QueryResult] = []
    before = CpuSnapshot.take(procs.pids())
    async with session(token, 1) as client:
        for name, query in ANALYTIC_QUERIES.items():
            times: list[float] = []
            answer: dict[str, Any] = {}
            for run in range(args.query_runs + 1):  # the first is a warm-up
                started = time.perf_counter()
                async with client.post(f"{read_url}/v1/data/query", data=orjson.dumps(query)) as r:
                    raw = await r.read()
                if r.status != 200:
                    raise BenchError(f"query {name!r} answered {r.status}: {raw[:400]!r}")
                if run:
                    times.append(time.perf_counter() - started)
                answer = orjson.loads(raw)["data"]
            results.append(
                QueryResult(
                    name, Latency.of(times), rows=answer["row_count"], first_row=answer["rows"][0]
                )
            )
            api = results[-1].api
            note(
                f"{name:32s} API p50 {api.p50_ms:8.1f} ms, max {api.max_ms:8.1f} ms; "
                f"first row {answer['rows'][0]}"
            )
    cpu = before.cores_until(CpuSnapshot.take(procs.pids()))
    return AnalyticsPhase(load=load, queries=results, cpu=cpu)


ENGINE_SCRIPT = """
import json, sys, time
import clickhouse_connect
path, runs, table = sys.argv[1], int(sys.argv[2]), sys.argv[3]
job = json.loads(sys.stdin.read())
client = clickhouse_connect.get_client(interface="chdb", path=path, tz_mode="aware")
out = {"times": {}, "first_rows": {}, "prepare_s": {}}
def timed(queries):
    for name, (sql, parameters, settings) in queries.items():
        times = []
        for run in range(runs + 1):
            started = time.perf_counter()
            result = client.query(sql, parameters=parameters, settings=settings)
            if run:
                times.append(time.perf_counter() - started)
        out["times"][name] = times
        out["first_rows"][name] = list(result.result_rows[0]) if result.result_rows else []
timed(job["queries"])
for name, statement in job["prepare"].items():
    started = time.perf_counter()
    client.command(statement)
    out["prepare_s"][name] = round(time.perf_counter() - started, 2)
timed(job["variants"])
db, name = table.split(".")
out["parts"] = client.query(
    "SELECT count(), sum(rows), uniqExact(partition) FROM system.parts "
    "WHERE active AND database = {d:String} AND table = {t:String}",
    parameters={"d": db, "t": name}).result_rows[0]
print(json.dumps(out, default=str))
"""

HEADLINE = next(iter(ANALYTIC_QUERIES))
_TYPED = (
    "JSONExtractString(data, 'status') AS status, JSONExtractString(data, 'country') AS country, "
    "JSONExtract(data, 'amount_cents', 'Nullable(Float64)') AS amount_cents"
)
_TYPED_QUERY = (
    "SELECT country, count(), sum(amount_cents) AS revenue, quantiles(0.5, 0.99)(amount_cents) "
    "FROM {table} WHERE account_id = {a:String} AND source = {s:String} AND status = 'paid' "
    "GROUP BY country ORDER BY revenue DESC, country ASC LIMIT 100"
)


# The headline as the compiler wrote it before migration 4 (ADR 9): `data` parsed per row.
_TEXT_QUERY = (
    "SELECT nullIf(nullIf(JSONExtractRaw(data, 'country'), ''), 'null') AS c0, count() AS c1, "
    "sum({n}) AS c2, quantiles(0.5, 0.99)({n}) AS c3 FROM {table} FINAL "
    "WHERE account_id = {a:String} AND is_deleted = 0 AND source = {s:String} AND "
    "if(JSONType(data, 'status') = 'String', JSONExtractString(data, 'status'), NULL) = 'paid' "
    "GROUP BY c0 ORDER BY c2 DESC, c0 ASC LIMIT 100"
).replace(
    "{n}",
    "if(JSONType(data, 'amount_cents') IN ('Int64', 'UInt64', 'Double'), "
    "JSONExtractFloat(data, 'amount_cents'), NULL)",
)


def engine_variants(table: str, account: str) -> tuple[dict[str, str], dict[str, Any]]:
    """What the headline query costs with other designs, on the same rows (not Strata's
    code; for the report): without FINAL (wrong answers: older versions and tombstones count
    too, only to price FINAL); the layout before migration 4 (data as JSON text, parsed by
    every query); the three fields as typed columns in a ReplacingMergeTree like Strata's
    (same FINAL); the latest live state precomputed into a plain MergeTree."""
    db = table.split(".", 1)[0]
    typed_rmt, typed_latest = f"{db}.bench_typed_rmt", f"{db}.bench_typed_latest"
    text = f"{db}.bench_text"
    prepare = {
        "data as JSON text, ReplacingMergeTree (migration 3)": (
            f"CREATE TABLE {text} ENGINE = ReplacingMergeTree(version, is_deleted) "
            f"ORDER BY (account_id, source, id) AS SELECT account_id, source, id, version, "
            f"is_deleted, data FROM {table}"
        ),
        "typed columns, ReplacingMergeTree": (
            f"CREATE TABLE {typed_rmt} ENGINE = ReplacingMergeTree(version, is_deleted) "
            f"ORDER BY (account_id, source, id) AS SELECT account_id, source, id, version, "
            f"is_deleted, {_TYPED} FROM {table}"
        ),
        "typed columns, latest live state": (
            f"CREATE TABLE {typed_latest} ENGINE = MergeTree ORDER BY (account_id, source, "
            f"status, country) AS SELECT account_id, source, id, {_TYPED} FROM {table} FINAL "
            "WHERE is_deleted = 0"
        ),
    }
    parameters = {"a": account, "s": SALES}
    variants: dict[str, Any] = {
        f"{HEADLINE} / data as JSON text (before migration 4), FINAL": (
            _TEXT_QUERY.replace("{table}", text),
            parameters,
            {},
        ),
        f"{HEADLINE} / typed columns, ReplacingMergeTree FINAL": (
            _TYPED_QUERY.replace("{table}", f"{typed_rmt} FINAL").replace(
                "WHERE ", "WHERE is_deleted = 0 AND "
            ),
            parameters,
            {},
        ),
        f"{HEADLINE} / typed columns, latest live state": (
            _TYPED_QUERY.replace("{table}", typed_latest),
            parameters,
            {},
        ),
    }
    return prepare, variants


def engine_baseline(
    chdb_path: Path, table: str, snapshot: str | None, account: str, runs: int
) -> dict[str, Any]:
    """The SQL the read API ran (the snapshot alone, with the fields these queries read as
    its columns: nothing changed since its cut) straight in chdb (the read API has stopped:
    one owner per path), the same over the snapshot's `fields` and over the records table
    under FINAL (before the snapshot), and the headline query over other designs
    (engine_variants)."""
    limits = QueryLimits(max_execution_seconds=600)
    queries = {}
    finals = {}
    for name, query in ANALYTIC_QUERIES.items():
        c = compile_query(parse_query(query), account, limits)
        columns = {a: hot.column_name(a) for a, _ in c.accessors.values()}
        plan = c.render_snapshot(snapshot, columns) if snapshot else c.render(table)
        queries[name] = (plan, c.parameters, c.settings)
        if snapshot:
            fields_only = c.render_snapshot(snapshot)
            finals[f"{name} / the snapshot's fields"] = (fields_only, c.parameters, c.settings)
        finals[f"{name} / FINAL over records"] = (c.render(table), c.parameters, c.settings)
    sql_, parameters, settings_ = finals[f"{HEADLINE} / FINAL over records"]
    prepare, variants = engine_variants(table, account)
    no_final = sql_.replace(" FINAL ", " ")
    variants = {
        **(finals if snapshot else {}),
        f"{HEADLINE} / without FINAL": (no_final, parameters, settings_),
        **variants,
    }
    job = {"queries": queries, "prepare": prepare, "variants": variants}
    done = subprocess.run(
        [sys.executable, "-c", ENGINE_SCRIPT, str(chdb_path), str(runs), table],
        input=json.dumps(job), capture_output=True, text=True, check=False, cwd=ROOT,
    )  # fmt: skip
    if done.returncode != 0:
        raise BenchError(f"the engine baseline failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


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
    setup: dict[str, Any] = field(default_factory=dict)
    read_by_id: ReadById | None = None
    search: SearchPhase | None = None
    analytics: AnalyticsPhase | None = None
    revocation: revoke.Revocations | None = None
    quiet_waits: list[dict[str, float]] = field(default_factory=list)


def machine() -> dict[str, Any]:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "unknown",
    )
    return {
        "nproc": os.cpu_count() or 0,
        "cpu": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "loadavg_at_start": Path("/proc/loadavg").read_text().split()[:3],
    }


def versions(redis_url: str, es_url: str) -> dict[str, str]:
    out = {}
    for package in (
        "litestar",
        "uvicorn",
        "msgspec",
        "redis",
        "elasticsearch",
        "chdb-core",
        "clickhouse-connect",
    ):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[package] = metadata.version(package)
    client = redis.Redis.from_url(redis_url)
    try:
        out["redis server"] = str(client.info("server").get("redis_version"))
    finally:
        client.close()
    with contextlib.suppress(Exception):  # `GET /` may be refused (405): ask the node
        url = f"{es_url}/_nodes/_local?filter_path=nodes.*.version"
        nodes = orjson.loads(
            subprocess.run(["curl", "-s", url], capture_output=True, check=False, timeout=10).stdout
        )["nodes"]
        out["elasticsearch server"] = str(next(iter(nodes.values()))["version"])
    with contextlib.suppress(Exception):
        out["wrk"] = (
            subprocess.run([wrk.wrk_binary(), "-v"], capture_output=True, text=True, check=False)
            .stdout.split("[")[0]
            .strip()
        )
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!bench", ":!docs"],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )  # fmt: skip
    changed = len([x for x in dirty.stdout.splitlines() if x.strip()])
    out["strata"] = head.stdout.strip() + (f" + {changed} uncommitted files" if changed else "")
    return out


def strata_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRATA_")}
    for name in Settings.__struct_fields__:
        value = getattr(settings, name)
        if value is not None:
            env[f"STRATA_{name.upper()}"] = str(value)
    env["PYTHONUNBUFFERED"] = "1"
    return env


async def measure(
    args: argparse.Namespace, results: Results, settings: Settings, procs: Processes, chdb: Path
) -> None:
    command_url = f"http://127.0.0.1:{settings.command_port}"
    read_url = f"http://127.0.0.1:{settings.read_port}"
    bare_url = f"http://127.0.0.1:{args.bare_port}"
    es_url = settings.elasticsearch_url
    setup = results.setup

    step("starting `strata serve command-api` and `strata projector`; account and key")
    procs.strata("command-api", "serve", "command-api")
    await wait_healthy(command_url, procs)
    # One after the other: eventsourcing's DDL run by two processes at once can fail with
    # "tuple concurrently updated" (docs/benchmarks.md, Pipeline, "startup race").
    procs.strata("projector", "projector")
    await asyncio.sleep(2)
    procs.check()
    account, token, _ = await create_key(command_url, str(settings.admin_token))
    setup["account"] = account

    step(f"ingesting {args.records:,} records through the command API (projected by the projector)")
    started = time.perf_counter()
    position = await ingest(command_url, token, args.records)
    setup["ingest_s"] = round(time.perf_counter() - started, 1)
    note(f"{args.records:,} records in {setup['ingest_s']} s; last position {position:,}")

    if args.analytics_records:
        step(f"generating {args.analytics_records:,} analytics records in chdb ({chdb})")
        setup["analytics"] = load_analytics(chdb, account, args.analytics_records)
        note(str(setup["analytics"]))
    if args.search_docs:
        step(f"indexing {args.search_docs:,} search documents through the Elasticsearch adapter")
        before = CpuSnapshot.take(procs.pids())
        seconds = await load_search(
            es_url, settings.elasticsearch_index_prefix, account, args.search_docs
        )
        setup["search_load_s"] = round(seconds, 1)
        setup["search_load_cpu"] = before.cores_until(CpuSnapshot.take(procs.pids()))
        rate = args.search_docs / seconds
        note(f"{args.search_docs:,} documents in {seconds:.0f} s ({rate:,.0f}/s); CPU: "
             f"{cores_text(setup['search_load_cpu'])}")  # fmt: skip

    step("starting `strata serve read-api`; waiting for every read model to reach the head")
    procs.strata("strata", "serve", "read-api", profiled=True)
    await wait_healthy(read_url, procs)
    started = time.perf_counter()
    await wait_models(read_url, token, position, timeout=1800)
    setup["catch_up_s"] = round(time.perf_counter() - started, 1)
    if args.analytics_records:
        step("waiting for the read API to idle (its analytics compaction and merges)")
        setup["read_api_idle_after_s"] = await read_api_idle(procs.running["strata"].pid)
        note(f"idle after {setup['read_api_idle_after_s']} s")

    if args.revocations:
        step(
            f"revocation delay: {args.revocations} keys issued, accepted by the read API, "
            "revoked (`strata projector` applies the revocations)"
        )
        await quiet(procs, args)
        admin = str(settings.admin_token)
        await revoke.measure(command_url, read_url, admin, account, mode="log", count=3)
        results.revocation = await revoke.measure(
            command_url, read_url, admin, account, mode="log", count=args.revocations
        )
        note(revoke.describe(results.revocation))
    procs.stop("command-api")
    procs.stop("projector")
    before = CpuSnapshot.take(procs.pids())
    await asyncio.sleep(5)
    setup["read_api_idle_cores"] = before.cores_until(CpuSnapshot.take(procs.pids()))["strata"]
    note(f"the read API alone, idle: {setup['read_api_idle_cores']} cores")

    step("starting the bare Litestar baseline (uvicorn, one process)")
    body = procs.workdir / "body.json"
    async with session(token, 1) as client, client.get(read_url + RECORD_PATH % 1) as response:
        body.write_bytes(await response.read())
    env = {**procs.env, "BENCH_BARE_BODY": str(body)}
    procs.start(
        "bare",
        [sys.executable, "-m", "uvicorn", "bench._bare_app:app", "--host", "127.0.0.1",
         "--port", str(args.bare_port), "--no-access-log", "--log-level", "warning"],
        env=env,
    )  # fmt: skip
    await wait_healthy(bare_url, procs)

    if args.rounds:
        step(
            f"read by id: wrk, {args.connections} connections, {args.seconds:.0f} s x "
            f"{args.rounds} rounds per side"
        )
        results.read_by_id = await read_by_id(
            args, {"strata": read_url, "bare": bare_url}, token, procs
        )
        s = results.read_by_id.summary
        note(f"ratio strata/bare {s['ratio']} (per round {s['ratio_per_round']})")
    procs.stop("bare")

    if args.search_docs and args.search_queries:
        step(f"search over {args.search_docs + args.records:,} records: API vs raw Elasticsearch")
        alias = f"{settings.elasticsearch_index_prefix}search"
        await quiet(procs, args)
        results.search = await search_phase(args, read_url, es_url, alias, account, token, procs)

    if args.analytics_records and args.query_runs:
        step(f"analytic queries over {args.analytics_records:,} records through the API")
        await quiet(procs, args)
        results.analytics = await analytics_phase(args, read_url, token, setup["analytics"], procs)
        procs.stop("strata")
        step("the same SQL straight in chdb (the read API stopped)")
        await quiet(procs, args)
        loaded = setup["analytics"]
        engine = engine_baseline(
            chdb, loaded["table"], loaded.get("snapshot"), account, args.query_runs
        )
        for q in results.analytics.queries:
            q.engine = Latency.of(engine["times"][q.name])
            note(f"{q.name:32s} engine p50 {q.engine.p50_ms:8.1f} ms")
        for name, seconds in engine["prepare_s"].items():
            note(f"prepared {name} in {seconds} s")
        for name, times in engine["times"].items():
            if name not in ANALYTIC_QUERIES:
                results.analytics.variants[name] = Latency.of(times)
                results.analytics.variant_rows[name] = engine["first_rows"][name]
                note(f"{name}: engine p50 {percentile(times, 50) * 1000:,.1f} ms; "
                     f"first row {engine['first_rows'][name]}")  # fmt: skip
        results.analytics.prepare_s = engine["prepare_s"]
        count, rows, partitions = engine["parts"]
        results.analytics.parts_at_query = {"parts": count, "rows": rows, "partitions": partitions}


def run(args: argparse.Namespace) -> Results:
    step("provisioning PostgreSQL, Redis and Elasticsearch (infra.provision.up)")
    infra = provision.up(["postgres", "redis", "elasticsearch"])
    wrk.wrk_binary()
    run_id = secrets.token_hex(3)
    workdir = Path(tempfile.mkdtemp(prefix="strata-bench-read-"))
    chdb = workdir / "chdb"
    settings = from_env(
        {},
        mode="distributed",
        projection_feed="log",
        postgres_dsn=infra["STRATA_POSTGRES_DSN"],
        postgres_schema=f"bench_read_{run_id}",
        postgres_pool_size=4,
        redis_url=infra["STRATA_REDIS_URL"],
        redis_prefix=f"bench-read-{run_id}",
        elasticsearch_url=infra["STRATA_ELASTICSEARCH_URL"],
        elasticsearch_index_prefix=f"bench-read-{run_id}-",
        clickhouse_path=str(chdb),
        admin_token="st_admin_" + secrets.token_urlsafe(24),
        command_port=free_port(),
        read_port=free_port(),
        host="127.0.0.1",
        log_level="warning",
        min_position_timeout=30,
        query_max_execution_seconds=args.query_timeout,
        rate_limit_failures_per_minute=1_000_000,  # every revocation ends in one 401
    )
    args.bare_port = free_port()
    results = Results(
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        command=" ".join([".venv/bin/python", "bench/read.py", *sys.argv[1:]]),
        machine={**machine(), "busy_cores_before": busy_cores(2.0)},
        versions=versions(settings.redis_url, settings.elasticsearch_url),
        settings=dict(vars(args)),
    )
    args.quiet_waits = results.quiet_waits
    procs = Processes(strata_env(settings), workdir, args.profile, args.profile_mode)
    failed = True
    try:
        asyncio.run(measure(args, results, settings, procs, chdb))
        failed = False
    finally:
        codes = procs.stop_all()
        if args.keep:
            err.print(
                f"kept schema {settings.postgres_schema}, Redis prefix {settings.redis_prefix}, "
                f"indices {settings.elasticsearch_index_prefix}*, files in {workdir}"
            )
        else:
            cleanup(settings)
            if failed:
                err.print(f"logs kept in {workdir} (chdb data removed)")
                shutil.rmtree(chdb, ignore_errors=True)
            else:
                shutil.rmtree(workdir, ignore_errors=True)
        if any(code not in (0, None, -15) for code in codes.values()):
            err.print(f"[yellow]exit codes {codes}[/yellow]")
    return results


def cleanup(settings: Settings) -> None:
    with (
        contextlib.suppress(Exception),
        psycopg.connect(settings.postgres_dsn, autocommit=True) as conn,
    ):
        conn.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                sql.Identifier(settings.postgres_schema)
            )
        )
    with contextlib.suppress(Exception):
        client = redis.Redis.from_url(settings.redis_url)
        batch = []
        for key in client.scan_iter(match=f"{settings.redis_prefix}:*", count=5000):
            batch.append(key)
            if len(batch) >= 5000:
                client.unlink(*batch)
                batch = []
        if batch:
            client.unlink(*batch)
        client.close()
    with contextlib.suppress(Exception):

        async def drop() -> None:
            es = AsyncElasticsearch(settings.elasticsearch_url)
            try:
                await es.options(ignore_status=404).indices.delete(
                    index=f"{settings.elasticsearch_index_prefix}*", expand_wildcards="all"
                )
            finally:
                await es.close()

        asyncio.run(drop())


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------


def summary(results: Results, console: Console) -> None:
    m, v = results.machine, results.versions
    console.print(
        f"\n[bold]Read benchmark[/bold] {results.started_at} ({results.command})\n"
        f"machine: {m['nproc']} CPUs ({m['cpu']}), Linux {m['kernel']}, Python {m['python']}; load "
        f"{' '.join(m['loadavg_at_start'])}, {m['busy_cores_before']} cores busy just before\n"
        f"versions: {', '.join(f'{k} {x}' for k, x in v.items())}\nset-up: {results.setup}"
    )
    r = results.read_by_id
    if r is not None:
        s = r.summary
        table = Table(
            title=f"GET /v1/data/orders/{{id}} ({r.keys:,} records), wrk", title_justify="left"
        )
        for column in (
            "",
            "req/s",
            "p50 ms",
            "p99 ms",
            "p50 ms c=1",
            "p99 ms c=1",
            "server cores",
            "CPU µs/req",
            "other cores",
            "bytes",
        ):
            table.add_column(column, justify="right")
        for side, label in (("strata", "Strata read API"), ("bare", "bare Litestar")):
            x = s[side]
            table.add_row(
                label,
                f"{x['req_per_s_median']:,.0f}",
                f"{x['p50_ms_loaded']:.2f}",
                f"{x['p99_ms_loaded']:.2f}",
                f"{x['p50_ms_one_connection']:.2f}",
                f"{x['p99_ms_one_connection']:.2f}",
                f"{x['server_cores']:.2f}",
                f"{x['cpu_us_per_request']:,.0f}",
                f"{x['other_cores']:.2f}",
                f"{r.response_bytes[side]:.0f}",
            )
        h = r.health
        if h:
            table.add_row(
                "Strata GET /health",
                f"{h['req_per_s']:,.0f}",
                f"{h['p50_ms']:.2f}",
                f"{h['p99_ms']:.2f}",
                "",
                "",
                f"{h['server_cores']:.2f}",
                f"{h['cpu_us_per_request']:,.0f}",
                f"{h['other_cores']:.2f}",
                "",
            )
        console.print(table)
        ok = s["ratio"] >= TARGET_RATIO
        console.print(
            f"[bold]ratio Strata / bare {s['ratio']}[/bold] (rounds {s['ratio_per_round']}; "
            f"CPU per request {s['ratio_cpu_per_request']}): "
            + ("[green]meets[/green]" if ok else "[red]misses[/red]")
            + f" the target ≥ {TARGET_RATIO} (goal ≥ {GOAL_RATIO})"
        )
    sp = results.search
    if sp is not None:
        table = Table(
            title=f"Search over {sp.documents:,} documents (+ the orders), one at a time",
            title_justify="left",
        )
        for column in ("kind", "API p50", "API p99", "raw ES p50", "raw ES p99", "hits"):
            table.add_column(column, justify="left" if column == "kind" else "right")
        for k in sp.kinds:
            table.add_row(
                k.kind,
                f"{k.api.p50_ms:.1f}",
                f"{k.api.p99_ms:.1f}",
                f"{k.raw.p50_ms:.1f}",
                f"{k.raw.p99_ms:.1f}",
                f"{k.hits_median:,}",
            )
        table.add_row(
            "all",
            f"{sp.api.p50_ms:.1f}",
            f"{sp.api.p99_ms:.1f}",
            f"{sp.raw.p50_ms:.1f}",
            f"{sp.raw.p99_ms:.1f}",
            "",
        )
        console.print(table)
        console.print(f"raw/API p50 {sp.ratio_p50}; CPU: {cores_text(sp.cpu)}")
    a = results.analytics
    if a is not None:
        table = Table(
            title=f"Analytic queries over {a.load['records']:,} records ({a.load['rows']:,} rows)",
            title_justify="left",
        )
        for column in ("query", "API p50 ms", "API max ms", "engine p50 ms", "groups"):
            table.add_column(column, justify="left" if column == "query" else "right")
        for q in a.queries:
            engine = f"{q.engine.p50_ms:,.0f}" if q.engine else ""
            table.add_row(
                q.name, f"{q.api.p50_ms:,.0f}", f"{q.api.max_ms:,.0f}", engine, str(q.rows)
            )
        console.print(table)
        for name, lat in a.variants.items():
            prepared = next((f", table built in {t} s" for k, t in a.prepare_s.items()
                             if k in name), "")  # fmt: skip
            console.print(f"  {name}: engine p50 {lat.p50_ms:,.0f} ms{prepared}")
        head = a.queries[0]
        ok = head.api.p50_ms < TARGET_QUERY_MS
        console.print(
            f"[bold]{head.name}: p50 {head.api.p50_ms:,.0f} ms[/bold] "
            + ("[green]meets[/green]" if ok else "[red]misses[/red]")
            + f" the target < {TARGET_QUERY_MS} ms (goal < {GOAL_QUERY_MS} ms); "
            f"parts {a.parts_at_query}; CPU: {cores_text(a.cpu)}"
        )
    if results.revocation is not None:
        console.print(f"[bold]revocation delay[/bold] {revoke.describe(results.revocation)}")
    if results.quiet_waits:
        others = [w["others"] for w in results.quiet_waits]
        console.print(
            f"other work before the measured runs: {min(others):.2f} to {max(others):.2f} cores "
            f"(waited {sum(w['waited_s'] for w in results.quiet_waits):.0f} s in all)"
        )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Read by id vs bare Litestar; search; analytic queries."
    )
    p.add_argument("--records", type=int, default=100_000, help="orders ingested (read by id)")
    p.add_argument(
        "--search-docs",
        type=int,
        default=1_000_000,
        help="more search documents (0: no search phase)",
    )
    p.add_argument(
        "--analytics-records",
        type=int,
        default=10_000_000,
        help="analytics records (0: no analytics phase)",
    )
    p.add_argument("--seconds", type=float, default=10, help="per wrk run")
    p.add_argument(
        "--rounds", type=int, default=3, help="wrk rounds per side (0: no read-by-id phase)"
    )
    p.add_argument("--connections", type=int, default=16, help="wrk connections")
    p.add_argument("--search-queries", type=int, default=30, help="queries per search kind")
    p.add_argument("--query-runs", type=int, default=5, help="runs per analytic query (+1 warm-up)")
    p.add_argument(
        "--query-timeout", type=float, default=60, help="STRATA_QUERY_MAX_EXECUTION_SECONDS"
    )
    p.add_argument(
        "--revocations",
        type=int,
        default=30,
        help="keys revoked to time how long they keep working (0: no revocation phase)",
    )
    p.add_argument(
        "--wait-quiet",
        type=float,
        default=0,
        metavar="SECONDS",
        help=f"before each measured phase, wait up to this long for other work to use under "
        f"{QUIET_LIMIT} cores",
    )
    p.add_argument("--keep", action="store_true", help="keep the schema, keys, indices and files")
    p.add_argument("--json", action="store_true", help="print a JSON object on stdout")
    p.add_argument(
        "--profile",
        metavar="PREFIX",
        help="run the read API under bench/_pipeline_sampler.py; a report per loaded wrk run "
        "(PREFIX-<n>.txt); profiled runs are not figures",
    )
    p.add_argument(
        "--profile-mode",
        choices=("sample", "cprofile", "cprofile-cpu"),
        default="sample",
        help="sample: CPU-weighted stack sampling (bench/_pipeline_sampler.py); cprofile, "
        "cprofile-cpu: deterministic (bench/_sampler.py --mode), exact call counts",
    )
    args = p.parse_args(argv)
    if args.profile:
        args.profile = str(Path(args.profile).resolve())
    if args.records < 2 or args.seconds <= 0 or args.connections < 1:
        p.error("--records must be at least 2, --seconds and --connections positive")
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
        summary(results, Console(stderr=True, highlight=False, width=140))
        print(json.dumps(asdict(results), indent=2, default=str))
    else:
        summary(results, Console(highlight=False, width=140))
    return 0


if __name__ == "__main__":
    sys.exit(main())
