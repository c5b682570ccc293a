"""`python -m infra.provision up|down|status [--only a,b] [--purge]`."""

from __future__ import annotations

import argparse
import sys

from . import SERVICES, ProvisionError, down, read_env_file, status, up


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infra.provision",
        description="Start, stop or inspect Strata's local PostgreSQL, Redis, Kafka and "
        "Elasticsearch (ClickHouse runs in-process through chdb).",
    )
    parser.add_argument("action", choices=("up", "down", "status", "env"))
    parser.add_argument(
        "--only",
        default="",
        help=f"comma-separated subset of: {','.join(SERVICES)} (default: all)",
    )
    parser.add_argument(
        "--purge", action="store_true", help="with down: also delete the servers' data"
    )
    args = parser.parse_args(argv)
    services = [s for s in args.only.split(",") if s.strip()] or None
    try:
        if args.action == "up":
            for key, value in up(services).items():
                print(f"{key}={value}")
        elif args.action == "down":
            down(services, purge=args.purge)
        elif args.action == "env":
            for key, value in read_env_file().items():
                print(f"{key}={value}")
        else:
            rows = status(services)
            print(f"{'service':<14}{'state':<13}{'pid':<9}{'rss':<10}{'address':<45}log")
            for row in rows:
                print(row.line())
            return 0 if all(r.state in ("running", "in-process") for r in rows) else 3
    except ProvisionError as exc:
        print(f"infra {args.action} failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"infra {args.action} interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
