"""Local servers for Strata's distributed mode and integration tests.

    from infra import provision
    env = provision.up()            # start what is missing; {"STRATA_POSTGRES_DSN": ...}
    provision.status()              # [ServiceStatus(...), ...]
    provision.down()                # stop what `up` started, by PID

or `python -m infra.provision up|down|status [--only postgres,redis]`.

PostgreSQL and Redis come from Debian packages, Apache Kafka and Elasticsearch from
Maven Central; all listen on 127.0.0.1 on non-default ports and keep their data under
`.local/` (override with STRATA_LOCAL_DIR). ClickHouse has no server here: Strata
reaches it in-process through chdb, so `up` only reserves its data path.
See docs/infra.md.
"""

from __future__ import annotations

import shlex
import shutil
import threading
import time
from collections.abc import Iterable

from .base import ProvisionError, Service, ServiceStatus, Settings, file_lock, say
from .elasticsearch import Elasticsearch
from .kafka import Kafka
from .postgres import Postgres
from .redis import Redis

__all__ = [
    "CLICKHOUSE",
    "SERVERS",
    "SERVICES",
    "ProvisionError",
    "ServiceStatus",
    "Settings",
    "down",
    "env_file",
    "read_env_file",
    "status",
    "up",
]

#: servers that run as processes, in start order
SERVERS: tuple[str, ...] = ("postgres", "redis", "kafka", "elasticsearch")
#: ClickHouse runs in-process (chdb): nothing to start, only a data path to hand out
CLICKHOUSE = "clickhouse"
SERVICES: tuple[str, ...] = (*SERVERS, CLICKHOUSE)

_CLASSES: dict[str, type[Service]] = {
    "postgres": Postgres,
    "redis": Redis,
    "kafka": Kafka,
    "elasticsearch": Elasticsearch,
}


def _select(services: Iterable[str] | None) -> list[str]:
    if services is None:
        return list(SERVICES)
    wanted = [s.strip().lower() for s in services if s.strip()]
    unknown = sorted(set(wanted) - set(SERVICES))
    if unknown:
        raise ProvisionError(
            f"unknown service(s) {', '.join(unknown)}; known: {', '.join(SERVICES)}"
        )
    return [s for s in SERVICES if s in wanted]


def _servers(settings: Settings, names: Iterable[str]) -> list[Service]:
    return [_CLASSES[n](settings) for n in names if n in _CLASSES]


def _clickhouse_env(settings: Settings) -> dict[str, str]:
    path = settings.infra_dir / "clickhouse" / "chdb"
    return {"STRATA_CLICKHOUSE_PATH": str(path)}


def env_file(settings: Settings | None = None) -> str:
    """Path of the shell file with `export STRATA_...` lines for the running servers."""
    return str((settings or Settings.from_env()).env_file)


def read_env_file(settings: Settings | None = None) -> dict[str, str]:
    """The mapping last written by `up` (empty when there is none)."""
    path = (settings or Settings.from_env()).env_file
    result: dict[str, str] = {}
    if not path.exists():
        return result
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line.startswith("export "):
            key, _, value = line[len("export ") :].partition("=")
            parsed = shlex.split(value)
            result[key] = parsed[0] if parsed else ""
    return result


def _write_env_file(settings: Settings) -> dict[str, str]:
    env: dict[str, str] = {}
    for server in _servers(settings, SERVERS):
        if server.status().state == "running":
            env.update(server.env())
    env.update(_clickhouse_env(settings))
    lines = ["# written by `python -m infra.provision up`: addresses of the running servers"]
    lines += [f"export {key}={shlex.quote(value)}" for key, value in env.items()]
    tmp = settings.env_file.with_suffix(".tmp")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(settings.env_file)
    return env


def up(services: Iterable[str] | None = None) -> dict[str, str]:
    """Install what is missing and start the servers that are not running.

    A no-op for healthy servers; a crashed or hung one is restarted. Returns the
    STRATA_* settings of the requested services (also written to `.local/infra/env`).
    Raises ProvisionError naming the server and its log when something fails.
    """
    settings = Settings.from_env()
    names = _select(services)
    started = time.monotonic()
    with file_lock(settings.infra_dir / ".lock"):
        servers = _servers(settings, names)
        for server in servers:  # downloads and apt-get: one at a time
            if server.status().state != "running":
                server.install()
        errors: dict[str, Exception] = {}

        def run(server: Service) -> None:
            try:
                server.up()
            except Exception as exc:  # reported below, with the others
                errors[server.name] = exc

        threads = [threading.Thread(target=run, args=(s,), name=s.name) for s in servers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if CLICKHOUSE in names:
            (settings.infra_dir / "clickhouse").mkdir(parents=True, exist_ok=True)
        all_env = _write_env_file(settings)
    if errors:
        message = "\n".join(f"- {name}: {exc}" for name, exc in errors.items())
        raise ProvisionError(f"could not start {', '.join(errors)}:\n{message}")
    say(
        f"up: {', '.join(names)} ready in {time.monotonic() - started:.1f}s; "
        f"env file {settings.env_file}"
    )
    wanted: dict[str, str] = {}
    for server in servers:
        wanted.update(server.env())
    if CLICKHOUSE in names:
        wanted.update(_clickhouse_env(settings))
    return {k: all_env.get(k, v) for k, v in wanted.items()}


def down(services: Iterable[str] | None = None, *, purge: bool = False) -> None:
    """Stop the servers `up` started (only the PIDs it recorded).

    With purge=True also delete their data (never the download cache).
    """
    settings = Settings.from_env()
    names = _select(services)
    with file_lock(settings.infra_dir / ".lock"):
        for server in reversed(_servers(settings, names)):
            server.down()
            if purge:
                say(f"{server.name}: deleting {server.home}")
                shutil.rmtree(server.home, ignore_errors=True)
        if purge and CLICKHOUSE in names:
            shutil.rmtree(settings.infra_dir / "clickhouse", ignore_errors=True)
        _write_env_file(settings)


def status(services: Iterable[str] | None = None) -> list[ServiceStatus]:
    """The state of each server: running, stopped, crashed or unresponsive."""
    settings = Settings.from_env()
    names = _select(services)
    result = [server.status() for server in _servers(settings, names)]
    if CLICKHOUSE in names:
        path = _clickhouse_env(settings)["STRATA_CLICKHOUSE_PATH"]
        result.append(
            ServiceStatus(
                CLICKHOUSE, "in-process", None, f"chdb:{path}", settings.infra_dir / "clickhouse"
            )
        )
    return result
