"""POSTs webhook deliveries with aiohttp: no redirects, no proxies from the environment, one
timeout per attempt, and addresses filtered at connect time (guard.SafeResolver)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

import aiohttp

from domain.webhook import AddressPolicy, endpoint_url, ip_literal
from infra.adapters.webhooks.guard import SafeResolver, describe
from projections.delivery import SendResult

_READ_LIMIT = 64 * 1024


class HttpSender:
    def __init__(self, policy: AddressPolicy) -> None:
        self.policy = policy
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                resolver=SafeResolver(self.policy), limit=0, ttl_dns_cache=10
            )
            self._session = aiohttp.ClientSession(connector=connector, trust_env=False)
        return self._session

    async def send(
        self, url: str, body: bytes, headers: Mapping[str, str], timeout: float
    ) -> SendResult:
        started = time.monotonic()
        try:
            endpoint = endpoint_url(url)
            literal = ip_literal(endpoint.host)
            # aiohttp does not ask the resolver about IP literals: check them here.
            if literal is not None:
                why = self.policy.refusal(endpoint.host, literal)
                if why is not None:
                    return SendResult(None, f"refused: {why}", time.monotonic() - started)
            async with self._client().post(
                url,
                data=body,
                headers=dict(headers),
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as response:
                await response.content.read(_READ_LIMIT)
                status = response.status
        except TimeoutError:
            return SendResult(None, f"timed out after {timeout:g}s", time.monotonic() - started)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            return SendResult(None, describe(exc), time.monotonic() - started)
        error = None
        if 300 <= status < 400:
            error = f"HTTP {status} (redirects are not followed)"
        return SendResult(status, error, time.monotonic() - started)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
