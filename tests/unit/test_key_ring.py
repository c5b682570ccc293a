"""The signing-key ring shared by every process of a deployment (infra/adapters/jwt.py)."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from infra.adapters.jwt import KeyRing


def _ensure_and_tell(path: str, start: object, kids: object) -> None:
    ring = KeyRing(Path(path), token_ttl=60)
    start.wait()  # type: ignore[attr-defined]
    ring.ensure()
    kids.put(ring.signing_key().kid)  # type: ignore[attr-defined]


def test_processes_that_start_together_share_one_ring(tmp_path: Path) -> None:
    """The command and read APIs start at once on one data dir: before, both wrote one
    temporary file and the slower failed, or replaced the ring the other signed with."""
    for attempt in range(5):
        path = tmp_path / f"attempt-{attempt}" / "jwt-keys.json"
        context = multiprocessing.get_context("fork")
        start, kids = context.Event(), context.Queue()
        workers = [
            context.Process(target=_ensure_and_tell, args=(str(path), start, kids))
            for _ in range(6)
        ]
        for worker in workers:
            worker.start()
        start.set()
        for worker in workers:
            worker.join(30)
            assert worker.exitcode == 0
        seen = {kids.get(timeout=5) for _ in workers}
        assert seen == {KeyRing(path, token_ttl=60).signing_key().kid}
        assert [p.name for p in path.parent.iterdir()] == ["jwt-keys.json"]  # no leftovers
        assert path.stat().st_mode & 0o777 == 0o600


def test_rotations_of_two_processes_keep_both_keys(tmp_path: Path) -> None:
    path = tmp_path / "jwt-keys.json"
    first, second = KeyRing(path, token_ttl=60), KeyRing(path, token_ttl=60)
    first.ensure()
    original = first.signing_key().kid
    rotated_by_first = first.rotate().kid
    rotated_by_second = second.rotate().kid  # read the ring as the first left it
    kids = {key.kid for key in first.live()}
    assert kids == {original, rotated_by_first, rotated_by_second}
    assert first.signing_key().kid == rotated_by_second
