"""A query that hits a ClickHouse limit is a 422 naming the limit, in both modes."""

from __future__ import annotations

import msgspec
import pytest

from infra.config import Settings
from tests.analytics.test_api import ORDERS, ingest, query
from tests.conftest import Stack, assert_error


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The shared settings with a memory limit no aggregation fits in."""
    return msgspec.structs.replace(settings, query_max_memory_bytes=1)


async def test_a_limit_hit_is_a_422_naming_it(stack: Stack) -> None:
    tenant = await stack.new_account()
    position = await ingest(stack, tenant, "orders", ORDERS)
    body = {"group_by": ["id"], "aggregates": [{"fn": "quantiles", "field": "data.total"}]}
    response = await query(stack, tenant, body, position)
    error = assert_error(response, 422, "QUERY_LIMIT_EXCEEDED")
    assert error["message"].startswith("the query exceeded max_memory_usage = 1;")
    assert error["details"] == [{"limit": "max_memory_usage", "value": 1}]
    too_many = await query(stack, tenant, {"limit": 10_001})
    assert "$.limit" in assert_error(too_many, 400, "INVALID_QUERY")["message"]
