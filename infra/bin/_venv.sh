# Sourced by infra/bin/*: makes sure $ROOT/.venv exists with Strata and its pinned
# dependencies. Idempotent: reinstalls only when pyproject.toml or infra/constraints.txt
# changed. Leaves the caller's working directory alone (relative --data-dir keeps working).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$ROOT/.venv"
(
    cd "$ROOT"
    PYTHON="${STRATA_PYTHON:-python3}"
    if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        echo "Strata needs Python 3.11 or newer (found: $("$PYTHON" --version 2>&1))" >&2
        exit 1
    fi
    if [ ! -x .venv/bin/python ]; then
        echo "[setup] creating .venv" >&2
        "$PYTHON" -m venv .venv
    fi
    stamp=.venv/.strata-installed
    want="$(cat pyproject.toml infra/constraints.txt | sha256sum | cut -d' ' -f1)"
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        echo "[setup] installing Strata and its pinned dependencies into .venv" >&2
        .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
        .venv/bin/python -m pip install --quiet --disable-pip-version-check \
            -c infra/constraints.txt -e ".[dev]"
        echo "$want" > "$stamp"
    fi
)
