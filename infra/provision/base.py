"""Shared pieces of the provisioner: settings, progress output and process control.

Everything here is standard library only: the provisioner must run before any of
Strata's dependencies are known to work, and must import nothing from Strata.
"""

# Running fixed local programs (apt-get, mvn, java, postgres...) is this module's job:
# ruff: noqa: S603
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


class ProvisionError(RuntimeError):
    """A server could not be installed, started or stopped; the message says why."""


def say(message: str) -> None:
    """Print one progress line (stderr keeps stdout clean for `status` output)."""
    print(f"[infra] {message}", file=sys.stderr, flush=True)


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ProvisionError(f"{name}={raw!r} is not an integer") from exc


def _world_traversable(path: Path) -> bool:
    """True when every existing ancestor lets other users (postgres, strata-es) in."""
    for part in [path, *path.parents]:
        if part.exists() and not os.stat(part).st_mode & 0o001:
            return False
    return True


def _default_local_dir() -> Path:
    local = REPO_ROOT / ".local"
    if _world_traversable(local):
        return local
    # The servers run as their own system users; a checkout under e.g. /root
    # is closed to them, so keep the state in a per-checkout folder they can reach.
    digest = hashlib.sha256(str(REPO_ROOT).encode()).hexdigest()[:10]
    return Path("/var/tmp") / f"strata-local-{digest}"  # noqa: S108 - fixed, per-checkout


@dataclass(frozen=True)
class Settings:
    """Where things live and which ports they use; every field has an env override."""

    local_dir: Path
    host: str = "127.0.0.1"
    postgres_port: int = 25432
    redis_port: int = 26379
    kafka_port: int = 29092
    kafka_controller_port: int = 29093
    elasticsearch_port: int = 29200
    elasticsearch_transport_port: int = 29300
    kafka_version: str = "4.4.0"
    elasticsearch_version: str = "9.5.0"
    es_user: str = "strata-es"

    @property
    def cache_dir(self) -> Path:
        return self.local_dir / "cache"

    @property
    def infra_dir(self) -> Path:
        return self.local_dir / "infra"

    @property
    def env_file(self) -> Path:
        return self.infra_dir / "env"

    @classmethod
    def from_env(cls) -> Settings:
        raw_local = os.environ.get("STRATA_LOCAL_DIR", "").strip()
        local = Path(raw_local).resolve() if raw_local else _default_local_dir()
        return cls(
            local_dir=local,
            postgres_port=_env_int("STRATA_INFRA_POSTGRES_PORT", cls.postgres_port),
            redis_port=_env_int("STRATA_INFRA_REDIS_PORT", cls.redis_port),
            kafka_port=_env_int("STRATA_INFRA_KAFKA_PORT", cls.kafka_port),
            kafka_controller_port=_env_int(
                "STRATA_INFRA_KAFKA_CONTROLLER_PORT", cls.kafka_controller_port
            ),
            elasticsearch_port=_env_int("STRATA_INFRA_ELASTICSEARCH_PORT", cls.elasticsearch_port),
            elasticsearch_transport_port=_env_int(
                "STRATA_INFRA_ELASTICSEARCH_TRANSPORT_PORT", cls.elasticsearch_transport_port
            ),
            kafka_version=os.environ.get("STRATA_INFRA_KAFKA_VERSION", cls.kafka_version),
            elasticsearch_version=os.environ.get(
                "STRATA_INFRA_ELASTICSEARCH_VERSION", cls.elasticsearch_version
            ),
            es_user=os.environ.get("STRATA_INFRA_ES_USER", cls.es_user),
        )


# --------------------------------------------------------------------------- processes


def proc_state(pid: int) -> str | None:
    """The one-letter state from /proc/<pid>/stat, or None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name is in parentheses and may contain spaces: split after it.
    return stat.rsplit(")", 1)[1].split()[0]


def is_alive(pid: int) -> bool:
    """True for a live process; a zombie (exited, not yet reaped) counts as dead."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)  # reap it if it happens to be our own child
    state = proc_state(pid)
    return state is not None and state not in ("Z", "X")


def cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace")


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(check: Callable[[], bool], timeout: float, interval: float = 0.25) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(Exception):
            if check():
                return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log written)"
    return "\n".join("    " + line for line in text[-lines:])


def spawn_detached(
    argv: Sequence[str],
    *,
    log: Path,
    cwd: Path,
    env: Mapping[str, str],
    user: str | None = None,
) -> int:
    """Start argv in the background, detached from us, and return its PID.

    A throw-away `sh` backgrounds the command and prints `$!`: the server ends up
    re-parented to init in a session of its own, so it outlives this process
    (and pytest), leaves no zombie behind and is never signalled with us.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as log_fh:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        log_fh.write(f"\n==== {stamp} start: {' '.join(argv)}\n".encode())
        log_fh.flush()
        # The log is sh's stderr and the job's stdout+stderr; sh's stdout carries the PID.
        # (No numbered fds: dash only understands single-digit ones.)
        result = subprocess.run(
            ["/bin/sh", "-c", '"$@" </dev/null >&2 & echo $!', "sh", *argv],
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log_fh,
            text=True,
            start_new_session=True,
            user=user,
            group=user,
            extra_groups=[] if user else None,
            check=False,
        )
    if result.returncode != 0 or not result.stdout.strip().isdigit():
        raise ProvisionError(f"could not start {argv[0]}; see {log}")
    return int(result.stdout.strip())


def terminate(pid: int, sig: signal.Signals, timeout: float) -> None:
    """Send `sig`, wait up to `timeout`, then SIGKILL; returns once the PID is gone."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    if wait_until(lambda: not is_alive(pid), timeout, interval=0.2):
        return
    say(f"pid {pid} ignored {sig.name} for {timeout:.0f}s: sending SIGKILL")
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not is_alive(pid), 10, interval=0.1)


# --------------------------------------------------------------------------- services

BIND_ATTEMPTS = 4  # starts of a server whose port is briefly held by a client socket


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    state: str  # running | stopped | crashed | unresponsive | in-process
    pid: int | None
    address: str
    log: Path
    rss_mib: float | None = None

    def line(self) -> str:
        pid = str(self.pid) if self.pid else "-"
        rss = f"{self.rss_mib:.0f} MiB" if self.rss_mib is not None else "-"
        return f"{self.name:<14}{self.state:<13}{pid:<9}{rss:<10}{self.address:<45}{self.log}"


class Service(ABC):
    """One server that `up` installs, starts, checks and stops."""

    name: str = ""
    #: a string that only the server's own command line contains (class name, binary)
    marker: str = ""
    ready_timeout: float = 30.0
    stop_signal: signal.Signals = signal.SIGTERM
    stop_timeout: float = 30.0

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    # ---- paths
    @property
    def home(self) -> Path:
        return self.settings.infra_dir / self.name

    @property
    def pid_file(self) -> Path:
        return self.home / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.home / f"{self.name}.log"

    # ---- to implement
    @property
    @abstractmethod
    def port(self) -> int: ...

    @abstractmethod
    def env(self) -> dict[str, str]:
        """The STRATA_* settings that point Strata at this server."""

    @abstractmethod
    def install(self) -> None:
        """Make sure binaries and artifacts are on the machine (cached, idempotent)."""

    @abstractmethod
    def prepare(self) -> None:
        """Create the data folder and (re)write configuration files."""

    @abstractmethod
    def launch(self) -> int:
        """Start the server detached; return the PID of the server process itself."""

    @abstractmethod
    def probe(self) -> bool:
        """One quick readiness check (should not block for more than ~2 s)."""

    def owns(self, pid: int) -> bool:
        """Is `pid` really our server (guards against recycled PIDs and `tail -f` on a log)?"""
        line = cmdline(pid)
        return str(self.home) in line and self.marker in line

    def after_ready(self) -> None:  # noqa: B027 - optional hook
        """Hook for post-start bootstrap (roles, databases, ...)."""

    # ---- generic behaviour
    def recorded_pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def find_orphan(self) -> int | None:
        """A live server of ours whose PID file was lost (deleted by hand, say)."""
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and int(entry.name) != os.getpid():
                pid = int(entry.name)
                if self.owns(pid) and is_alive(pid):
                    return pid
        return None

    def running_pid(self) -> int | None:
        pid = self.recorded_pid()
        if pid is not None and is_alive(pid) and self.owns(pid):
            return pid
        return None

    def status(self) -> ServiceStatus:
        pid = self.recorded_pid()
        address = f"{self.settings.host}:{self.port}"
        if pid is None:
            return ServiceStatus(self.name, "stopped", None, address, self.log_file)
        if not (is_alive(pid) and self.owns(pid)):
            return ServiceStatus(self.name, "crashed", pid, address, self.log_file)
        ok = False
        with contextlib.suppress(Exception):
            ok = self.probe()
        state = "running" if ok else "unresponsive"
        return ServiceStatus(self.name, state, pid, address, self.log_file, rss_mib(pid))

    def up(self) -> None:
        pid = self.recorded_pid()
        if pid is not None and is_alive(pid) and self.owns(pid):
            if wait_until(self.probe, 5):
                say(f"{self.name}: already running (pid {pid}) on {self.settings.host}:{self.port}")
                return
            say(f"{self.name}: pid {pid} alive but not answering; restarting it")
            terminate(pid, self.stop_signal, self.stop_timeout)
        elif pid is not None:
            say(f"{self.name}: pid {pid} from the last run is gone (crashed?); restarting")
        self.pid_file.unlink(missing_ok=True)
        orphan = self.find_orphan()
        if orphan is not None:
            if wait_until(self.probe, 5):
                say(f"{self.name}: adopting running pid {orphan} (its PID file was missing)")
                self.pid_file.write_text(f"{orphan}\n")
                return
            say(f"{self.name}: stopping unanswering leftover pid {orphan}")
            terminate(orphan, self.stop_signal, self.stop_timeout)
        if port_open(self.settings.host, self.port):
            raise ProvisionError(
                f"{self.name}: port {self.settings.host}:{self.port} is already taken by a "
                "process this tool did not start; stop it or choose another port "
                f"(see docs/infra.md for the STRATA_INFRA_*_PORT variables)"
            )
        self.install()
        self.home.mkdir(parents=True, exist_ok=True)
        self.prepare()
        say(f"{self.name}: starting on {self.settings.host}:{self.port} (log: {self.log_file})")
        started = time.monotonic()
        pid = self.launch()
        self.pid_file.write_text(f"{pid}\n")
        for attempt in range(1, BIND_ATTEMPTS + 1):
            try:
                self._wait_ready(pid, started)
                break
            except ProvisionError:
                if is_alive(pid):
                    raise
                # Died straight away, or could not bind its port yet (a client's socket can
                # hold a loopback port in the ephemeral range for a moment, e.g. one that
                # connected to itself while retrying the stopped server): retry, the log
                # keeps every try.
                bind = "Address already in use" in log_tail(self.log_file, 80)
                quick = time.monotonic() - started <= 15 and attempt == 1
                if not (bind or quick) or attempt == BIND_ATTEMPTS:
                    raise
                say(f"{self.name}: exited during start-up; retrying (log: {self.log_file})")
                time.sleep(2.0 if bind else 0.0)
                started = time.monotonic()
                pid = self.launch()
                self.pid_file.write_text(f"{pid}\n")
        self.after_ready()
        say(f"{self.name}: ready in {time.monotonic() - started:.1f}s (pid {pid})")

    def _wait_ready(self, pid: int, started: float) -> None:
        deadline = started + self.ready_timeout
        while time.monotonic() < deadline:
            if not is_alive(pid):
                raise ProvisionError(
                    f"{self.name} exited during startup; log {self.log_file}:\n"
                    f"{log_tail(self.log_file)}"
                )
            with contextlib.suppress(Exception):
                if self.probe():
                    return
            time.sleep(0.3)
        raise ProvisionError(
            f"{self.name} did not become ready on {self.settings.host}:{self.port} within "
            f"{self.ready_timeout:.0f}s (pid {pid} left running for inspection); "
            f"log {self.log_file}:\n{log_tail(self.log_file)}"
        )

    def down(self) -> None:
        pid = self.recorded_pid()
        if pid is None:
            say(f"{self.name}: not running")
            return
        if is_alive(pid) and self.owns(pid):
            say(f"{self.name}: stopping pid {pid}")
            terminate(pid, self.stop_signal, self.stop_timeout)
        else:
            say(f"{self.name}: pid {pid} already gone")
        self.pid_file.unlink(missing_ok=True)


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Serialise concurrent `up`/`down` calls (parallel pytest sessions, developers)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"waiting for another provisioning run to finish (lock {path})")
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
