"""The README's walk-through, run as written against a real `strata dev` process."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAUNCHER = ROOT / "infra/bin/strata"


def _blocks(heading: str) -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split(f"## {heading}", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def dev_server(tmp_path: Path):  # type: ignore[no-untyped-def]
    """`infra/bin/strata dev` in a fresh directory; yields (ports, the printed export line)."""
    ports = (_free_port(), _free_port())
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRATA_")}
    env["COLUMNS"] = "200"
    process = subprocess.Popen(
        [str(LAUNCHER), "dev", "--command-port", str(ports[0]), "--read-port", str(ports[1])],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    export = None
    deadline = time.monotonic() + 60
    assert process.stderr is not None
    output = []
    while export is None and time.monotonic() < deadline:
        line = process.stderr.readline()
        output.append(line)
        if line.strip().startswith("export STRATA_ADMIN_TOKEN="):
            export = line.strip()
        if not line and process.poll() is not None:
            break
    assert export, "strata dev printed no operator token:\n" + "".join(output)
    try:
        yield ports, export
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0, "strata dev did not stop cleanly on Ctrl-C"


@pytest.mark.slow
def test_walkthrough_works_as_written(dev_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (command_port, read_port), export = dev_server
    walkthrough, cli = _blocks("Walk-through")
    # Only the two addresses change: this server listens on free ports, not 8000/8001.
    walkthrough = walkthrough.replace("127.0.0.1:8000", f"127.0.0.1:{command_port}").replace(
        "127.0.0.1:8001", f"127.0.0.1:{read_port}"
    )
    cli = cli.replace("infra/bin/strata", str(LAUNCHER))
    script = f"set -euo pipefail\n{export}\n{walkthrough}\n{cli}\n"
    result = subprocess.run(
        ["bash", "-c", script],
        check=False,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("STRATA_")},
            "COLUMNS": "200",
        },
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert '"error"' not in out, out
    assert '"data":{"total":45,"currency":"EUR"}' in out  # read your write after the batch
    assert '"type":"Record.Updated"' in out  # the history
    assert '"data":{"total":42,"currency":"EUR"},"version":1' in out  # as_of=1
    assert '"accepted":2,"rejected":1' in out  # the NDJSON stream
    assert "lookups" in out  # strata status
    assert "Account.Opened" in out  # strata audit account
    assert "replayed up to position" in result.stderr  # strata replay
