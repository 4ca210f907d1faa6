#!/usr/bin/env bash
# Set up a virtual environment, then profile the bundled scoring service with aitax.
# Usage: scripts/demo.sh [extra aitax run options]
set -euo pipefail
cd "$(dirname "$0")/.."

python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[examples]'

.venv/bin/python examples/scoring/prepare.py
.venv/bin/aitax run "$@" examples/scoring/service.py
