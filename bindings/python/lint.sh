#!/usr/bin/env bash
# ruff and mypy on the llavauhd package, with the settings in pyproject.toml. The linters go to
# their own venv ($LINT_VENV, default .build-venv at the repository root), pinned by
# requirements-lint.txt; nothing is installed elsewhere.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
venv=${LINT_VENV:-$repo/.build-venv}
if ! "$venv/bin/python" -c 'import ruff, mypy' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$here/requirements-lint.txt"
fi
cd "$here"
"$venv/bin/ruff" check llavauhd tests
"$venv/bin/mypy" llavauhd
echo "python-lint: ruff and mypy clean"
