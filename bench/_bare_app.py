"""The baseline of bench/read.py: a bare Litestar app on the same server stack as Strata.

`GET /v1/data/{source}/{record_id}` answers, from memory, the very envelope that Strata
answered for one record (read from $BENCH_BARE_BODY), encoded by Litestar per request: no
authentication, no read model, no middleware. Served by `uvicorn bench._bare_app:app`, one
process, like `strata serve read-api`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import msgspec
from litestar import Litestar, get

BODY: dict[str, Any] = msgspec.json.decode(Path(os.environ["BENCH_BARE_BODY"]).read_bytes())


@get("/v1/data/{source:str}/{record_id:str}")
async def record(source: str, record_id: str) -> dict[str, Any]:
    return BODY


@get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


app = Litestar(route_handlers=[record, health], openapi_config=None, logging_config=None)
