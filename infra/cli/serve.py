"""Long-running processes: `strata dev` (everything, embedded), `serve`, `projector`."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator

import click
import faust
import structlog
import uvicorn
from litestar import Litestar
from rich.console import Console

from infra import heap, metrics, tracing
from infra.bootstrap import Platform, bootstrap
from infra.cli.options import data_dir_option, settings_for
from infra.config import Settings
from projections import webhooks


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to us (several run in one loop)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _server(app: Litestar, host: str, port: int) -> _Server:
    config = uvicorn.Config(
        app, host=host, port=port, log_config=None, access_log=False, lifespan="on"
    )
    return _Server(config)


async def run_platform(
    settings: Settings,
    *,
    command: bool = False,
    read: bool = False,
    projections: bool = False,
    relay: bool = False,
    banner: bool = False,
) -> int:
    """Run the chosen parts in one event loop until SIGINT/SIGTERM; 0 on a clean stop."""
    names = [n for n, on in (("command", command), ("read", read), ("relay", relay)) if on]
    tracing.configure("strata-" + "-".join(names or ["projector"]))
    platform = bootstrap(settings)
    if not (command or read):  # the APIs serve /metrics themselves
        metrics.serve(settings.host, settings.metrics_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    servers: list[tuple[str, _Server]] = []
    if command:
        app = platform.command_app()
        servers.append(("command API", _server(app, settings.host, settings.command_port)))
    if read:
        app = platform.read_app()
        servers.append(("read API", _server(app, settings.host, settings.read_port)))
    tasks = [asyncio.create_task(server.serve(), name=name) for name, server in servers]
    parts = {"command": command, "read": read, "projections": projections, "relay": relay}
    tasks += await _background(platform, stop, **parts)
    if banner:
        loop.call_later(0.5, _print_banner, settings, platform)
    heap.settle()
    stopper = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
    for _, server in servers:
        server.should_exit = True
    stop.set()
    exit_code = 0 if stopper in done else 1  # a part ended by itself: that is a failure
    for task in tasks:
        try:
            await task
        except SystemExit:
            click.echo(f"{task.get_name()} could not start (is its port in use?)", err=True)
            exit_code = 1
    await platform.aclose()
    return exit_code


async def _background(
    platform: Platform,
    stop: asyncio.Event,
    *,
    command: bool,
    read: bool,
    projections: bool,
    relay: bool,
) -> list[asyncio.Task[None]]:
    """The non-HTTP parts: projection runners, the relay, and the servers' housekeeping
    (metering, which also flushes once more on stop; expiry of idempotent responses)."""
    tasks: list[asyncio.Task[None]] = []
    # chdb has one owner: the read API's process feeds `analytics` (ADR 0009).
    for projection in platform.log_fed(projector=projections, serves_reads=read):
        runner = platform.runner(projection).run(stop)
        tasks.append(asyncio.create_task(runner, name=f"projection {projection.name}"))
    if projections and platform.settings.feed == "log":  # webhooks: the log-fed dispatcher
        dispatcher = platform.webhook_dispatcher().run(stop)
        tasks.append(asyncio.create_task(dispatcher, name="webhook dispatcher"))
    if relay:
        await platform.ensure_topics()
        outbox = platform.relay()
        metrics.PIPELINE.relays.append(outbox.stats)
        tasks.append(asyncio.create_task(outbox.run(stop), name="relay"))
    if command:
        tasks.append(asyncio.create_task(_expire_idempotency(platform, stop), name="expiry"))
    if read:  # the process that answers analytic queries keeps their snapshot (ADR 0009)
        compactor = platform.analytics_store.compact_forever(stop)
        tasks.append(asyncio.create_task(compactor, name="analytics compaction"))
    if command or read:
        interval = platform.settings.usage_flush_seconds
        metering = platform.meter.run(platform.log, stop, interval)
        tasks.append(asyncio.create_task(metering, name="metering"))
    return tasks


async def _expire_idempotency(platform: Platform, stop: asyncio.Event) -> None:
    """Forget idempotent responses older than their TTL, hourly."""
    while not stop.is_set():
        try:
            await asyncio.to_thread(
                platform.log.expire_idempotency, platform.settings.idempotency_ttl_seconds
            )
        except Exception:
            structlog.get_logger("strata").warning("idempotency expiry failed", exc_info=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=3600)


def _print_banner(settings: Settings, platform: Platform) -> None:
    console = Console(stderr=True, soft_wrap=True)
    base = f"http://{settings.host}"
    console.print(
        f"\n[bold]Strata[/bold] is running ({settings.mode} mode, data in {settings.data_path})"
    )
    console.print(
        f"  command API  {base}:{settings.command_port}   docs {base}:{settings.command_port}/docs"
    )
    console.print(
        f"  read API     {base}:{settings.read_port}   docs {base}:{settings.read_port}/docs"
    )
    if platform.new_admin_token:
        console.print(
            "\n  Operator token, shown once (only its hash is kept). Paste this line into the\n"
            "  shell you will use for the README's examples:\n"
            f"  [bold yellow]export STRATA_ADMIN_TOKEN={platform.new_admin_token}[/bold yellow]"
        )
    elif not settings.admin_token:
        console.print(
            "\n  The operator token was shown when this data dir was created. Lost it? Stop, "
            f"delete {settings.data_path / 'admin-token.sha256'} and start again for a new one."
        )
    console.print("  Ctrl-C stops.\n")


@click.command()
@data_dir_option
@click.option("--host", default=None, help="Interface to listen on (env STRATA_HOST).")
@click.option("--command-port", type=int, default=None, help="env STRATA_COMMAND_PORT (8000).")
@click.option("--read-port", type=int, default=None, help="env STRATA_READ_PORT (8001).")
def dev(
    data_dir: str | None, host: str | None, command_port: int | None, read_port: int | None
) -> None:
    """Run the whole platform in one process, embedded: no servers needed.

    Command API, read API and projection runner, with data in --data-dir.
    Stops cleanly on Ctrl-C or SIGTERM.
    """
    settings = settings_for(
        data_dir or "strata-data",
        host=host,
        command_port=command_port,
        read_port=read_port,
        log_format="console",
    )
    raise SystemExit(
        asyncio.run(run_platform(settings, command=True, read=True, projections=True, banner=True))
    )


@click.command()
@click.argument("app", type=click.Choice(["command-api", "read-api"]))
@data_dir_option
def serve(app: str, data_dir: str | None) -> None:
    """Serve one API (configured by STRATA_* variables), e.g. in the distributed mode."""
    settings = settings_for(data_dir)
    code = asyncio.run(
        run_platform(
            settings, command=app == "command-api", read=app == "read-api", projections=False
        )
    )
    raise SystemExit(code)


@click.command()
@data_dir_option
def projector(data_dir: str | None) -> None:
    """Feed every projection straight from the event store's log (LISTEN/NOTIFY on
    PostgreSQL), for deployments without Kafka (STRATA_PROJECTION_FEED=log)."""
    settings = settings_for(data_dir)
    if settings.feed != "log":
        raise click.ClickException(
            "STRATA_PROJECTION_FEED is 'kafka': projections are fed by `strata worker`. "
            "Set STRATA_PROJECTION_FEED=log to feed them from the log instead."
        )
    raise SystemExit(asyncio.run(run_platform(settings, projections=True)))


@click.command()
def relay() -> None:
    """Publish committed events from PostgreSQL to Kafka (the outbox relay).

    Creates the topics if missing, resumes after the last position the broker
    acknowledged, and writes partition watermarks for the stream workers.
    """
    raise SystemExit(asyncio.run(run_platform(settings_for(None), relay=True)))


@click.command()
@click.option("--projection", default="lookups", show_default=True, help="Which read model.")
def worker(projection: str) -> None:
    """Run a stream worker feeding one projection from Kafka (its own consumer group).

    Start several for more throughput: they share the partitions and survive rebalances.
    """
    settings = settings_for(None)
    if settings.feed != "kafka":
        raise click.ClickException(
            "STRATA_PROJECTION_FEED is 'log': projections are fed by `strata projector`/`dev`."
        )
    tracing.configure(f"strata-worker-{projection}")
    platform = bootstrap(settings)
    if projection not in platform.projections():
        raise click.BadParameter(f"unknown projection; known: {', '.join(platform.projections())}")
    asyncio.run(platform.ensure_topics(projection))
    metrics.serve(settings.host, settings.metrics_port)
    if projection != webhooks.NAME and settings.worker_engine == "batch":  # docs/adr/0007
        heap.settle()
        raise SystemExit(asyncio.run(_run_batch_worker(platform, projection)))
    app = platform.stream_app(projection)
    heap.settle()
    try:
        faust.Worker(
            app, loglevel=settings.log_level.upper(), quiet=True
        ).execute_from_commandline()
    finally:
        platform.log.close()


async def _run_batch_worker(platform: Platform, projection: str) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await platform.batch_worker(projection).run(stop)
    finally:
        await platform.aclose()
    return 0
