"""CPU per request of the read API in process: no HTTP server, no load generator.

Builds the distributed read API (real PostgreSQL and Redis, fresh schema and prefix), an
enterprise account, a key and a few records, then calls the ASGI app directly, one request
after another, and divides the process's CPU time by the number of requests. Splits what
bench/read.py measures under wrk (where uvicorn adds ~230 us a request on both sides):

    .venv/bin/python bench/_read_inproc.py [--requests 3000] [--profile /tmp/read.prof]

Rows: a bare Litestar route (bench/_bare_app.py), `/health` and a read by id, each with the
read API's change notices heard (the API's lifespan) and without (every lookup in Redis).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import os
import secrets
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
from redis.asyncio import Redis

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT, ROOT / "bench"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

if "BENCH_BARE_BODY" not in os.environ:  # the bare app answers this envelope
    _body = Path(tempfile.mkdtemp(prefix="strata-inproc-")) / "body.json"
    _body.write_text(
        '{"data": {"source": "orders", "id": "o-1", "version": 1, "data": {"total": 42, '
        '"currency": "EUR"}, "updated_at": "2026-12-06T00:00:00+00:00", "deleted": false}, '
        '"meta": {"timestamp": "2026-12-06T00:00:00.000+00:00", "request_id": "x"}}'
    )
    os.environ["BENCH_BARE_BODY"] = str(_body)

from _bare_app import app as bare_app  # noqa: E402

from infra import logs  # noqa: E402
from infra.bootstrap import Platform, bootstrap  # noqa: E402
from infra.config import Settings, from_env  # noqa: E402


def _settings(run_id: str) -> Settings:
    return from_env(
        None,
        mode="distributed",
        projection_feed="log",
        postgres_schema=f"bench_inproc_{run_id}",
        postgres_pool_size=2,
        redis_prefix=f"bench-inproc-{run_id}",
        admin_token="st_admin_" + secrets.token_urlsafe(24),
        log_level="warning",
    )


class _Call:
    """One GET through an ASGI app, without a client library."""

    def __init__(self, app: Any, path: str, headers: list[tuple[bytes, bytes]]) -> None:
        self.app = app
        self.scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8001),
        }
        self.status = 0

    async def __call__(self) -> int:
        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                self.status = message["status"]

        await self.app(dict(self.scope), receive, send)
        return self.status


async def _cpu_per_call(call: _Call, n: int, profile: cProfile.Profile | None) -> float:
    for _ in range(50):  # warm-up
        await call()
    started = time.process_time()
    if profile is not None:
        profile.enable()
    for _ in range(n):
        await call()
    if profile is not None:
        profile.disable()
    return (time.process_time() - started) / n * 1e6


@contextlib.asynccontextmanager
async def _tenant(platform: Platform) -> AsyncIterator[tuple[str, str]]:
    """An enterprise account's key and one record's path, projected into Redis."""
    import httpx  # noqa: PLC0415

    admin = {"Authorization": f"Bearer {platform.settings.admin_token}"}
    transport = httpx.ASGITransport(app=platform.command_app())  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://x") as command:
        account = (
            await command.post(
                "/v1/account/create",
                json={"name": "Bench", "email": "b@x.example", "plan": "enterprise"},
                headers=admin,
            )
        ).json()["data"]["id"]
        key = (
            await command.post(
                "/v1/apikey/generate",
                json={"account_id": account, "name": "bench", "role": "owner"},
                headers=admin,
            )
        ).json()["data"]["secret"]
        auth = {"Authorization": f"Bearer {key}"}
        record = {"source": "orders", "id": "o-1", "data": {"total": 42, "currency": "EUR"}}
        position = (await command.post("/v1/ingest", json=record, headers=auth)).json()["data"][
            "position"
        ]
    stop = asyncio.Event()
    runner = asyncio.create_task(platform.runner(platform.lookups).run(stop))
    for _ in range(3000):
        checkpoints = await platform.documents.checkpoints()
        if min(checkpoints.get(s, 0) for s in platform.feed_slots) >= position:
            break
        await asyncio.sleep(0.01)
    stop.set()
    await runner
    yield key, "/v1/data/orders/o-1"


async def measure(n: int, profile_path: str | None) -> None:
    run_id = secrets.token_hex(3)
    settings = _settings(run_id)
    logs.configure(settings.log_level, settings.log_format)
    platform = bootstrap(settings)
    app = platform.read_app()
    profile = cProfile.Profile() if profile_path else None
    try:
        async with _tenant(platform) as (key, path):
            auth = [(b"authorization", f"Bearer {key}".encode()), (b"host", b"x")]
            rows: list[tuple[str, _Call]] = [
                ("bare Litestar route", _Call(bare_app, "/v1/data/orders/o-1", [])),
                ("/health", _Call(app, "/health", auth)),
                ("read by id", _Call(app, path, auth)),
            ]
            for name, call in rows:
                print(f"{name:<36} {await _cpu_per_call(call, n, None):7.0f} us", flush=True)
            async with platform.listening(app):
                for _ in range(500):
                    if platform.notices is None or platform.notices.live:
                        break
                    await asyncio.sleep(0.01)
                for name, call in rows[1:]:
                    status = await call()
                    cpu = await _cpu_per_call(call, n, profile if name == "read by id" else None)
                    print(f"{name + ', notices heard':<36} {cpu:7.0f} us  ({status})", flush=True)
    finally:
        await platform.aclose()
        await _drop(settings)
    if profile is not None and profile_path:
        profile.dump_stats(profile_path)
        print(f"profile of the read by id (notices heard): {profile_path}")


async def _drop(settings: Settings) -> None:
    client = Redis.from_url(settings.redis_url)
    keys = [k async for k in client.scan_iter(match=f"{settings.redis_prefix}:*", count=1000)]
    if keys:
        await client.unlink(*keys)
    await client.aclose()
    with psycopg.connect(settings.postgres_dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{settings.postgres_schema}" CASCADE')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--profile", help="write a cProfile of the read by id here")
    args = parser.parse_args()
    if "STRATA_REDIS_URL" not in os.environ:
        raise SystemExit("load the servers' addresses first: set -a; . .local/infra/env")
    asyncio.run(measure(args.requests, args.profile))


if __name__ == "__main__":
    main()
