"""PostgreSQL from the Debian package, run as the `postgres` system user."""

# Running fixed local programs (apt-get, mvn, java, postgres...) is this module's job:
# ruff: noqa: S603

from __future__ import annotations

import glob
import os
import signal
import subprocess
from pathlib import Path

from .base import (
    ProvisionError,
    Service,
    cmdline,
    is_alive,
    proc_state,
    say,
    spawn_detached,
    wait_until,
)
from .system import apt_install, chown_tree, run_checked

DB_USER = "strata"
DB_PASSWORD = "strata"  # noqa: S105 - the local test server's documented password
DB_NAME = "strata"
OS_USER = "postgres"

_BOOTSTRAP_SQL = f"""
SELECT format('CREATE ROLE {DB_USER} LOGIN PASSWORD %L', '{DB_PASSWORD}')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{DB_USER}') \\gexec
ALTER ROLE {DB_USER} WITH LOGIN CREATEDB PASSWORD '{DB_PASSWORD}';
SELECT 'CREATE DATABASE {DB_NAME} OWNER {DB_USER}'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '{DB_NAME}') \\gexec
GRANT ALL PRIVILEGES ON DATABASE {DB_NAME} TO {DB_USER};
"""  # noqa: S608 - module constants only


def _bin_dir() -> Path | None:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    return Path(found[-1]).parent if found else None


class Postgres(Service):
    name = "postgres"
    marker = "postgres"
    ready_timeout = 30.0
    stop_signal = signal.SIGINT  # "fast" shutdown: SIGTERM would wait for clients
    stop_timeout = 30.0

    @property
    def port(self) -> int:
        return self.settings.postgres_port

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def socket_dir(self) -> Path:
        return self.home / "run"

    def env(self) -> dict[str, str]:
        return {
            "STRATA_POSTGRES_DSN": (
                f"postgresql://{DB_USER}:{DB_PASSWORD}@{self.settings.host}:{self.port}/{DB_NAME}"
            )
        }

    def owns(self, pid: int) -> bool:
        return f"-D {self.data_dir}" in cmdline(pid)

    def bin(self, tool: str) -> str:
        bin_dir = _bin_dir()
        if bin_dir is None:
            raise ProvisionError("PostgreSQL binaries not found under /usr/lib/postgresql")
        return str(bin_dir / tool)

    def install(self) -> None:
        if _bin_dir() is None:
            apt_install(["postgresql"])
            if _bin_dir() is None:
                raise ProvisionError("installed postgresql but found no initdb")

    def prepare(self) -> None:
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        chown_tree(self.socket_dir, OS_USER)
        if not (self.data_dir / "PG_VERSION").exists():
            if self.data_dir.exists() and any(self.data_dir.iterdir()):
                raise ProvisionError(
                    f"{self.data_dir} is not empty but holds no cluster; remove it and retry"
                )
            self.data_dir.mkdir(parents=True, exist_ok=True)
            chown_tree(self.data_dir, OS_USER)
            os.chmod(self.data_dir, 0o700)
            say(f"postgres: initdb {self.data_dir}")
            run_checked(
                [
                    self.bin("initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    "postgres",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                ],
                what="initdb",
                user=OS_USER,
                cwd=self.home,
            )
        conf = self.data_dir / "postgresql.conf"
        include = "include_if_exists = 'strata.conf'"
        if include not in conf.read_text():
            with conf.open("a") as fh:
                fh.write(f"\n# Strata's local settings, rewritten by every `up`\n{include}\n")
        (self.data_dir / "strata.conf").write_text(
            "\n".join(
                [
                    f"listen_addresses = '{self.settings.host}'",
                    f"port = {self.port}",
                    f"unix_socket_directories = '{self.socket_dir}'",
                    "max_connections = 200",
                    "shared_buffers = 256MB",
                    "work_mem = 8MB",
                    "maintenance_work_mem = 128MB",
                    "effective_cache_size = 2GB",
                    "fsync = on",
                    "synchronous_commit = on",
                    "full_page_writes = on",
                    "logging_collector = off",
                    "log_min_messages = warning",
                    "log_line_prefix = '%m [%p] %q%u@%d '",
                    "",
                ]
            )
        )
        chown_tree(self.data_dir, OS_USER)
        self._clear_stale_lock()

    def _clear_stale_lock(self) -> None:
        """After a crash (kill -9), postmaster.pid names a dead or zombie PID that postgres
        itself would still take for a running server: wait for it to go, then drop it."""
        lock = self.data_dir / "postmaster.pid"
        try:
            old = int(lock.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return
        if is_alive(old):
            return
        wait_until(lambda: proc_state(old) is None, 10)
        say(f"postgres: removing stale {lock.name} of crashed pid {old}")
        lock.unlink(missing_ok=True)

    def launch(self) -> int:
        return spawn_detached(
            [self.bin("postgres"), "-D", str(self.data_dir)],
            log=self.log_file,
            cwd=self.home,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C"},
            user=OS_USER,
        )

    def probe(self) -> bool:
        result = subprocess.run(
            [
                self.bin("pg_isready"),
                "-q",
                "-h",
                self.settings.host,
                "-p",
                str(self.port),
                "-t",
                "2",
            ],
            capture_output=True,
            check=False,
            timeout=5,
        )
        return result.returncode == 0

    def after_ready(self) -> None:
        run_checked(
            [
                self.bin("psql"),
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                str(self.socket_dir),
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-f",
                "-",
            ],
            what="creating the strata role and database",
            user=OS_USER,
            cwd=self.home,
            input_text=_BOOTSTRAP_SQL,
        )
