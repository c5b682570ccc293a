"""Machine-level helpers: Debian packages, system users and ownership."""

# Running fixed local programs (apt-get, mvn, java, postgres...) is this module's job:
# ruff: noqa: S603, S607

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from .base import ProvisionError, say

_APT_ENV = {
    **os.environ,
    "DEBIAN_FRONTEND": "noninteractive",
    "NEEDRESTART_MODE": "a",
}


def _apt(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["apt-get", "-y", "-q", *args],
        env=_APT_ENV,
        capture_output=True,
        text=True,
        check=False,
    )


def apt_install(packages: Sequence[str]) -> None:
    """Install Debian packages non-interactively; refresh the index once if needed."""
    if os.geteuid() != 0:
        raise ProvisionError(
            f"need Debian packages {' '.join(packages)} but not running as root: "
            f"install them with `sudo apt-get install {' '.join(packages)}`"
        )
    say(f"apt-get install {' '.join(packages)} ...")
    args = ["install", "--no-install-recommends", *packages]
    result = _apt(args)
    if result.returncode != 0:
        say("apt-get install failed; running apt-get update and retrying")
        update = _apt(["update"])
        if update.returncode != 0:
            raise ProvisionError(f"apt-get update failed:\n{update.stderr[-2000:]}")
        result = _apt(args)
    if result.returncode != 0:
        raise ProvisionError(
            f"apt-get install {' '.join(packages)} failed:\n{result.stderr[-2000:]}"
        )


def ensure_command(command: str, package: str) -> str:
    """Path of `command`, installing its Debian `package` if it is missing."""
    found = shutil.which(command)
    if found:
        return found
    apt_install([package])
    found = shutil.which(command)
    if not found:
        raise ProvisionError(f"{command} still missing after installing {package}")
    return found


def ensure_system_user(name: str) -> None:
    """Create a locked, home-less system user (idempotent)."""
    try:
        pwd.getpwnam(name)
    except KeyError:
        pass
    else:
        return
    say(f"creating system user {name}")
    result = subprocess.run(
        [
            "useradd",
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            name,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    # exit code 9: created meanwhile by a concurrent run
    if result.returncode not in (0, 9):
        raise ProvisionError(f"useradd {name} failed: {result.stderr.strip()}")


def chown_tree(path: Path, user: str) -> None:
    """Give `path` and everything under it to `user` (and its primary group)."""
    entry = pwd.getpwnam(user)
    uid, gid = entry.pw_uid, entry.pw_gid
    os.chown(path, uid, gid)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            target = os.path.join(root, name)
            if os.lstat(target).st_uid != uid:
                os.lchown(target, uid, gid)


def run_checked(
    argv: Sequence[str],
    *,
    what: str,
    user: str | None = None,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    input_text: str | None = None,
    timeout: float = 300,
) -> str:
    """Run a short command to completion; raise ProvisionError with its output on failure."""
    try:
        result = subprocess.run(
            list(argv),
            user=user,
            group=user,
            extra_groups=[] if user else None,
            cwd=cwd,
            env=env,
            input=input_text,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ProvisionError(f"{what} timed out after {timeout:.0f}s") from exc
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()[-3000:]
        raise ProvisionError(f"{what} failed (exit {result.returncode}):\n{output}")
    return result.stdout
