"""Signing secrets sealed with AES-256-GCM under a key ring kept outside the event store.

A sealed secret is `v1.<key id>.<base64url(nonce | ciphertext | tag)>`, authenticated with the
webhook's id as associated data (a sealed secret copied onto another webhook does not open).
The ring is a JSON file (0600), `{"current": kid, "keys": {kid: base64url(32 bytes)}}`,
created on first use; every process of a deployment must read the same file. Adding a key
and making it `current` rotates the ring: old secrets still open with their key until every
webhook's secret has been rotated (docs/adr/0011-webhooks.md).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = "v1"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class KeyRingSecretBox:
    def __init__(self, current: str, keys: dict[str, bytes]) -> None:
        if current not in keys:
            raise ValueError("the current webhook key is not in the ring")
        self.current = current
        self.keys = {kid: AESGCM(key) for kid, key in keys.items()}

    @classmethod
    def from_file(cls, path: Path) -> KeyRingSecretBox:
        """The ring in `path`, created (atomically, once) if missing."""
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            kid = secrets.token_hex(4)
            ring = {"current": kid, "keys": {kid: _b64(AESGCM.generate_key(bit_length=256))}}
            temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                json.dump(ring, handle)
            with contextlib.suppress(FileExistsError):
                os.link(temp, path)  # fails if another process made it first: use theirs
            temp.unlink()
        raw = json.loads(path.read_text())
        return cls(raw["current"], {kid: _unb64(key) for kid, key in raw["keys"].items()})

    @staticmethod
    def _aad(webhook_id: str) -> bytes:
        return f"strata-webhook:{webhook_id}".encode()

    def seal(self, secret: str, webhook_id: str) -> str:
        nonce = secrets.token_bytes(12)
        sealed = self.keys[self.current].encrypt(nonce, secret.encode(), self._aad(webhook_id))
        return f"{_VERSION}.{self.current}.{_b64(nonce + sealed)}"

    def open(self, sealed: str, webhook_id: str) -> str:
        try:
            version, kid, data = sealed.split(".", 2)
        except ValueError:
            raise ValueError("not a sealed secret") from None
        if version != _VERSION:
            raise ValueError(f"unknown sealing version {version!r}")
        key = self.keys.get(kid)
        if key is None:
            raise ValueError(f"webhook key {kid!r} is not in the ring")
        blob = _unb64(data)
        try:
            return key.decrypt(blob[:12], blob[12:], self._aad(webhook_id)).decode()
        except Exception as exc:
            raise ValueError("the sealed secret does not open (wrong key or webhook)") from exc
