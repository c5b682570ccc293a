"""Plans (fees, quotas, overage prices, rate limits) from one JSON file, or the defaults.

`STRATA_PLANS_FILE` names the file; every process of a deployment must read the same one.
Shape: {"currency": "USD", "plans": {"basic": {"monthly_fee": 0, "rate_limit_per_minute":
1000, "included": {"records_ingested": 100000}, "overage": {"records_ingested":
{"minor": 50, "per": 1000}}}, ...}}; a null rate limit means unlimited.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from domain.billing import DEFAULT_CATALOG, Catalog, PlanTerms, Price


class _Price(msgspec.Struct, forbid_unknown_fields=True):
    minor: int
    per: int


class _Plan(msgspec.Struct, forbid_unknown_fields=True):
    monthly_fee: int
    rate_limit_per_minute: int | None
    included: dict[str, int] = {}
    overage: dict[str, _Price] = {}


class _Catalog(msgspec.Struct, forbid_unknown_fields=True):
    currency: str
    plans: dict[str, _Plan]


def load_catalog(path: str | None) -> Catalog:
    if not path:
        return DEFAULT_CATALOG
    try:
        raw = msgspec.json.decode(Path(path).read_bytes(), type=_Catalog)
    except (OSError, msgspec.DecodeError) as exc:
        raise SystemExit(f"STRATA_PLANS_FILE {path}: {exc}") from exc
    return Catalog(
        currency=raw.currency,
        plans={
            name: PlanTerms(
                name,
                monthly_fee=plan.monthly_fee,
                included=dict(plan.included),
                overage={m: Price(p.minor, p.per) for m, p in plan.overage.items()},
                rate_limit_per_minute=plan.rate_limit_per_minute,
            )
            for name, plan in raw.plans.items()
        },
    )
