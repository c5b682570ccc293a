#!/usr/bin/env bash
# Validate compose.yaml without a Docker engine (none runs on the CI machines):
#  1. the Compose Specification's reference loader, compose-go (what `docker compose`
#     itself uses), built once from the Go module proxy into .local/cache/go-bin;
#  2. Strata's own consistency rules on the resolved model (tools/compose_rules below):
#     depends_on targets exist, every STRATA_* name is one infra/config.py reads, and
#     every Strata service runs an existing `strata` sub-command.
# Usage: bash infra/provision/check_compose.sh   (exit 0 = valid)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
local_dir="${STRATA_LOCAL_DIR:-$repo/.local}"
version="v2.16.2"
validator="$local_dir/cache/go-bin/compose-spec-$version"
python="${PYTHON:-$repo/.venv/bin/python}"
[ -x "$python" ] || python="python3"

if [ ! -x "$validator" ]; then
    go_bin="$(command -v go || true)"
    [ -n "$go_bin" ] || [ ! -x /usr/local/go/bin/go ] || go_bin=/usr/local/go/bin/go
    if [ -z "$go_bin" ]; then
        echo "check_compose: no Go toolchain to build the compose-spec validator" >&2
        exit 1
    fi
    echo "check_compose: building compose-go $version validator (once)" >&2
    tmp="$(mktemp -d)"
    GOBIN="$tmp" GOMODCACHE="$local_dir/cache/gomod" GOFLAGS=-modcacherw GOTOOLCHAIN=local \
        "$go_bin" install "github.com/compose-spec/compose-go/v2/cmd@$version"
    mkdir -p "$(dirname "$validator")"
    mv "$tmp/cmd" "$validator"
    rm -rf "$tmp"
fi

resolved="$(mktemp)"
trap 'rm -f "$resolved"' EXIT
# interpolation on: the ${VAR:-default} values must produce a valid model by themselves
(cd "$repo" && env -u STRATA_ADMIN_TOKEN "$validator" -format json compose.yaml >"$resolved")

cd "$repo"
"$python" - "$resolved" <<'PY'
import json
import sys

model = json.load(open(sys.argv[1]))
services = model["services"]
errors = []
try:
    from infra.config import env_names

    known = {name for name, _ in env_names()}
except ImportError as exc:  # the check must still say something useful
    known = set()
    print(f"check_compose: cannot import infra.config ({exc}); skipping name check")
try:
    from infra.cli.main import main as cli

    commands = set(cli.commands)
except ImportError as exc:
    commands = set()
    print(f"check_compose: cannot import the strata CLI ({exc}); skipping command check")

for name, service in services.items():
    for dep in service.get("depends_on", {}):
        if dep not in services:
            errors.append(f"{name}: depends_on unknown service {dep!r}")
    if service.get("image") != "strata:local":
        continue
    for var in service.get("environment", {}):
        if var.startswith("STRATA_") and known and var not in known:
            errors.append(f"{name}: {var} is not a setting infra/config.py reads")
    command = service.get("command") or []
    if commands and command and command[0] not in commands:
        errors.append(f"{name}: `strata {' '.join(command)}`: no such strata command")
for volume in model.get("volumes", {}):
    if not any(
        v.get("source") == volume for s in services.values() for v in s.get("volumes", [])
    ):
        errors.append(f"volume {volume!r} is declared but unused")
if errors:
    print("compose.yaml is inconsistent:\n- " + "\n- ".join(errors), file=sys.stderr)
    sys.exit(1)
print(f"compose.yaml OK: {len(services)} services, {len(model.get('volumes', {}))} volumes")
PY
