"""How long a revoked API key keeps working at the read API after `DELETE /v1/apikey/{id}`.

bench/read.py runs `measure` as one of its phases (distributed, projections fed from the log
by `strata projector`). Run alone, this module measures the three ways the `lookups` read
model (which the read API authenticates from) can be fed:

    .venv/bin/python bench/_read_revoke.py [--modes embedded,log,kafka] [--count 30] [--json]

- embedded: `strata dev` (one process: both APIs and the projection runner; SQLite, and
  SQLite for the read models);
- log: `strata serve command-api`, `strata projector` and `strata serve read-api`
  (PostgreSQL, Redis; LISTEN/NOTIFY on the event store's log);
- kafka: `strata serve command-api`, `strata relay`, `strata worker --projection lookups`
  and `strata serve read-api` (the product's distributed default: outbox relay to Kafka,
  a Faust worker applies to Redis).

Each revocation: the operator issues a `data:read` key through the command API and waits
until the read API accepts it (`min_position`); a poller then sends
`GET /v1/data/orders/revocation-probe` with that key on one connection, one request after
another (a 404 while the key works, a 401 once it does not), with `poll_pause` between
them; 20 to 40 ms later (at random) the operator revokes the key. Measured from the moment
the DELETE's answer arrived (the revocation is committed and acknowledged):

- `still_accepted_ms`: when the last request that still got through was *sent* (the key
  surely worked until then: a lower bound of the delay; negative: none got through after
  the acknowledgement);
- `refused_by_ms`: when the first refused request was *answered* (the key had surely
  stopped working by then: an upper bound).

The two bounds are one poll apart (a request takes 2-5 ms here), so `refused_by_ms` is the
figure: how long a revoked key can still read data after its revocation was acknowledged.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT, ROOT / "bench"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

PROBE = "/v1/data/orders/revocation-probe"
GIVE_UP_S = 30.0


class RevocationError(RuntimeError):
    pass


@dataclass
class Revocation:
    still_accepted_ms: float
    refused_by_ms: float
    polls_after: int
    """Requests sent after the acknowledgement (the last one refused)."""
    delete_ms: float
    """The DELETE's own round trip."""


@dataclass
class Revocations:
    mode: str
    count: int
    poll_pause_ms: float
    refused_by_ms: dict[str, float] = field(default_factory=dict)
    still_accepted_ms: dict[str, float] = field(default_factory=dict)
    poll_ms_median: float = 0.0
    delete_ms_median: float = 0.0
    runs: list[Revocation] = field(default_factory=list)


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, int(q / 100 * len(ordered) + 0.999999) - 1))]

    return {
        "p50": round(at(50), 1),
        "p95": round(at(95), 1),
        "max": round(ordered[-1], 1),
        "min": round(ordered[0], 1),
    }


async def _json(response: aiohttp.ClientResponse, want: int) -> Any:
    raw = await response.read()
    if response.status != want:
        raise RevocationError(f"{response.method} {response.url} answered {response.status}: "
                              f"{raw[:300]!r}")  # fmt: skip
    return orjson.loads(raw)["data"]


async def _issue(
    admin: aiohttp.ClientSession, command_url: str, account: str, n: int
) -> tuple[str, str, int]:
    body = {"account_id": account, "name": f"revocation-{n}", "scopes": ["data:read"]}
    async with admin.post(f"{command_url}/v1/apikey/generate", data=orjson.dumps(body)) as r:
        key = await _json(r, 201)
    return str(key["id"]), str(key["secret"]), int(key["position"])


async def _until_accepted(
    client: aiohttp.ClientSession, read_url: str, token: str, position: int
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    deadline = time.monotonic() + GIVE_UP_S
    while True:
        url = f"{read_url}{PROBE}?min_position={position}"
        async with client.get(url, headers=headers) as r:
            await r.read()
            if r.status == 404:
                return
            if r.status not in (401, 504) or time.monotonic() > deadline:
                raise RevocationError(f"a new key was answered {r.status} at the read API")
        await asyncio.sleep(0.01)


async def _one(
    admin: aiohttp.ClientSession,
    client: aiohttp.ClientSession,
    urls: tuple[str, str],
    account: str,
    n: int,
    poll_pause: float,
    poll_times: list[float],
) -> Revocation:
    command_url, read_url = urls
    key_id, token, position = await _issue(admin, command_url, account, n)
    await _until_accepted(client, read_url, token, position)
    headers = {"Authorization": f"Bearer {token}"}
    polls: list[tuple[float, float, int]] = []  # (sent, answered, status)

    async def poll() -> None:
        deadline = time.perf_counter() + GIVE_UP_S
        while time.perf_counter() < deadline:
            sent = time.perf_counter()
            async with client.get(read_url + PROBE, headers=headers) as r:
                await r.read()
                polls.append((sent, time.perf_counter(), r.status))
            if r.status == 401:
                return
            if r.status != 404:
                raise RevocationError(f"the probe was answered {r.status}")
            if poll_pause:
                await asyncio.sleep(poll_pause)
        raise RevocationError(f"a revoked key still worked after {GIVE_UP_S:.0f} s")

    poller = asyncio.create_task(poll())
    await asyncio.sleep(0.02 + random.random() * 0.02)
    started = time.perf_counter()
    async with admin.delete(f"{command_url}/v1/apikey/{key_id}") as r:
        await _json(r, 200)
    acknowledged = time.perf_counter()
    await poller
    after = [p for p in polls if p[0] >= acknowledged]
    accepted = [sent for sent, _, status in polls if status != 401]
    refused = next(answered for _, answered, status in polls if status == 401)
    poll_times.extend(answered - sent for sent, answered, _ in polls)
    return Revocation(
        still_accepted_ms=round((max(accepted) - acknowledged) * 1000, 2),
        refused_by_ms=round((refused - acknowledged) * 1000, 2),
        polls_after=len(after),
        delete_ms=round((acknowledged - started) * 1000, 2),
    )


async def measure(
    command_url: str,
    read_url: str,
    admin_token: str,
    account: str,
    *,
    mode: str,
    count: int = 30,
    poll_pause: float = 0.002,
    progress: Any = None,
) -> Revocations:
    """`count` keys issued, accepted, revoked, one after the other (module docstring)."""
    out = Revocations(mode=mode, count=count, poll_pause_ms=poll_pause * 1000)
    poll_times: list[float] = []
    timeout = aiohttp.ClientTimeout(total=60)
    admin_headers = {"Authorization": f"Bearer {admin_token}", "Content-Type": "application/json"}
    async with (
        aiohttp.ClientSession(headers=admin_headers, timeout=timeout) as admin,
        aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=1)) as client,
    ):
        for n in range(count):
            out.runs.append(
                await _one(admin, client, (command_url, read_url), account, n, poll_pause,
                           poll_times)
            )  # fmt: skip
            if progress is not None:
                progress(out.runs[-1])
    out.refused_by_ms = _percentiles([r.refused_by_ms for r in out.runs])
    out.still_accepted_ms = _percentiles([r.still_accepted_ms for r in out.runs])
    out.poll_ms_median = round(statistics.median(poll_times) * 1000, 2)
    out.delete_ms_median = round(statistics.median(r.delete_ms for r in out.runs), 2)
    return out


def describe(r: Revocations) -> str:
    a, b = r.refused_by_ms, r.still_accepted_ms
    return (
        f"{r.mode}: refused by p50 {a['p50']} / p95 {a['p95']} / max {a['max']} ms after the "
        f"DELETE's answer (last accepted request sent at p50 {b['p50']}, max {b['max']} ms); "
        f"{r.count} keys, a poll takes {r.poll_ms_median} ms, the DELETE {r.delete_ms_median} ms"
    )


# --------------------------------------------------------------------------------------------
# Stand-alone: the three feeds
# --------------------------------------------------------------------------------------------


async def _account(command_url: str, admin_token: str) -> str:
    headers = {"Authorization": f"Bearer {admin_token}", "Content-Type": "application/json"}
    body = {"name": "Revocations", "email": "revoke@strata.example", "plan": "enterprise"}
    async with (
        aiohttp.ClientSession(headers=headers) as admin,
        admin.post(f"{command_url}/v1/account/create", data=orjson.dumps(body)) as r,
    ):
        return str((await _json(r, 201))["id"])


async def _run_mode(mode: str, args: argparse.Namespace, infra: dict[str, str]) -> Revocations:
    import read  # noqa: PLC0415 - bench/read.py imports this module

    from infra.config import from_env  # noqa: PLC0415

    run_id = secrets.token_hex(3)
    workdir = Path(tempfile.mkdtemp(prefix=f"strata-bench-revoke-{mode}-"))
    admin_token = "st_admin_" + secrets.token_urlsafe(24)
    ports = {"command": read.free_port(), "read": read.free_port()}
    common: dict[str, Any] = {
        "admin_token": admin_token,
        "command_port": ports["command"],
        "read_port": ports["read"],
        "host": "127.0.0.1",
        "log_level": "warning",
        "min_position_timeout": 30,
        "rate_limit_failures_per_minute": 1_000_000,  # every revocation ends in one 401
    }
    if mode == "embedded":
        settings = from_env({}, mode="embedded", data_dir=str(workdir / "data"), **common)
    else:
        settings = from_env(
            {},
            mode="distributed",
            projection_feed=mode,
            postgres_dsn=infra["STRATA_POSTGRES_DSN"],
            postgres_schema=f"bench_revoke_{run_id}",
            postgres_pool_size=4,
            redis_url=infra["STRATA_REDIS_URL"],
            redis_prefix=f"bench-revoke-{run_id}",
            elasticsearch_url=infra["STRATA_ELASTICSEARCH_URL"],
            elasticsearch_index_prefix=f"bench-revoke-{run_id}-",
            kafka_bootstrap=infra.get("STRATA_KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
            kafka_topic_prefix=f"bench-revoke-{run_id}.",
            clickhouse_path=str(workdir / "chdb"),
            **common,
        )
    command_url = f"http://127.0.0.1:{ports['command']}"
    read_url = f"http://127.0.0.1:{ports['read']}"
    procs = read.Processes(read.strata_env(settings), workdir)
    failed = True
    try:
        # One after the other: DDL run by several processes at once can race (pipeline.md).
        if mode == "embedded":
            procs.strata("dev", "dev", "--data-dir", settings.data_dir,
                         "--command-port", str(ports["command"]),
                         "--read-port", str(ports["read"]))  # fmt: skip
            await read.wait_healthy(command_url, procs)
        else:
            procs.strata("command-api", "serve", "command-api")
            await read.wait_healthy(command_url, procs)
            if mode == "log":
                procs.strata("projector", "projector")
            else:
                procs.strata("relay", "relay")
                await asyncio.sleep(3)
                procs.strata("worker", "worker", "--projection", "lookups")
            await asyncio.sleep(3)
            procs.strata("read-api", "serve", "read-api")
        await read.wait_healthy(read_url, procs)
        account = await _account(command_url, admin_token)
        read.note(f"{mode}: warming up (3 revocations, not counted)")
        await measure(command_url, read_url, admin_token, account, mode=mode, count=3,
                      poll_pause=args.poll_pause)  # fmt: skip
        result = await measure(
            command_url, read_url, admin_token, account, mode=mode, count=args.count,
            poll_pause=args.poll_pause,
        )  # fmt: skip
        procs.check()
        failed = False
        return result
    finally:
        codes = procs.stop_all()
        if mode != "embedded":
            await asyncio.to_thread(read.cleanup, settings)  # it runs its own event loop
            if mode == "kafka":
                with contextlib.suppress(Exception):
                    await _delete_kafka(settings.kafka_bootstrap, settings.kafka_topic_prefix)
        if failed or any(code not in (0, None, -15) for code in codes.values()):
            read.err.print(f"exit codes {codes}; logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


async def _delete_kafka(bootstrap: str, prefix: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient  # noqa: PLC0415

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        with contextlib.suppress(Exception):
            await admin.delete_consumer_groups([f"{prefix}projection.lookups"])
        topics = [t for t in await admin.list_topics() if t.startswith(prefix)]
        if topics:
            await admin.delete_topics(topics)
    finally:
        await admin.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modes", default="embedded,log,kafka")
    parser.add_argument("--count", type=int, default=30, help="revocations per mode")
    parser.add_argument("--poll-pause", type=float, default=0.002, help="seconds between polls")
    parser.add_argument("--json", action="store_true", help="a JSON list on stdout")
    args = parser.parse_args(argv)
    import read  # noqa: PLC0415
    from _read_cpu import busy_cores  # noqa: PLC0415

    from infra import provision  # noqa: PLC0415

    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = set(modes) - {"embedded", "log", "kafka"}
    if unknown:
        parser.error(f"unknown modes {sorted(unknown)}")
    servers = ["postgres", "redis", "elasticsearch"] + (["kafka"] if "kafka" in modes else [])
    infra = provision.up(servers) if set(modes) - {"embedded"} else {}
    results = []
    for mode in modes:
        read.step(f"revocation delay, {mode}: {args.count} keys")
        others = busy_cores(2.0)
        result = asyncio.run(_run_mode(mode, args, infra))
        read.note(describe(result) + f" (machine busy {others} cores just before)")
        results.append({**asdict(result), "busy_cores_before": others})
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
