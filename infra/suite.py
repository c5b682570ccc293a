"""The whole test suite, as CI and developers run it (`infra/bin/test`).

Static checks, then the real servers (`infra.provision.up`, idempotent), then pytest.
Servers this run started are stopped at the end; ones already running are left alone.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from infra import provision

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

CHECKS: list[tuple[str, list[str]]] = [
    ("ruff lint", [str(BIN / "ruff"), "check", "."]),
    ("ruff format", [str(BIN / "ruff"), "format", "--check", "."]),
    ("mypy --strict", [str(BIN / "mypy")]),
    ("import layering", [str(BIN / "lint-imports")]),
    ("compose.yaml", ["bash", str(ROOT / "infra/provision/check_compose.sh")]),
    ("event contract", [str(BIN / "python"), "-m", "schemas.generate", "--check"]),
]


def _step(name: str, command: list[str], env: dict[str, str] | None = None) -> bool:
    print(f"\n== {name}: {' '.join(command)}", flush=True)
    started = time.monotonic()
    code = subprocess.call(command, cwd=ROOT, env=env)  # noqa: S603 - this repo's own tools
    verdict = "ok" if code == 0 else f"FAILED (exit {code})"
    print(f"== {name}: {verdict} in {time.monotonic() - started:.1f}s", flush=True)
    return code == 0


def main(pytest_args: list[str]) -> int:
    failed = [name for name, command in CHECKS if not _step(name, command)]
    already = {s.name for s in provision.status(provision.SERVERS) if s.state == "running"}
    print(
        "\n== servers: starting what is not running (first run downloads Kafka and "
        "Elasticsearch; later runs reuse .local/cache)",
        flush=True,
    )
    try:
        env = {**os.environ, **provision.up()}
        tests = [str(BIN / "pytest"), "-p", "no:cacheprovider", "--timeout", "600", *pytest_args]
        if not _step("tests", tests, env):
            failed.append("tests")
    except provision.ProvisionError as exc:
        print(f"servers could not start:\n{exc}", file=sys.stderr)
        failed.append("servers")
    finally:
        started = [name for name in provision.SERVERS if name not in already]
        if started and os.environ.get("STRATA_KEEP_SERVERS") != "1":
            print(f"\n== servers: stopping those this run started: {', '.join(started)}")
            provision.down(started)
    print(f"\n{'FAILED: ' + ', '.join(failed) if failed else 'all checks and tests passed'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
