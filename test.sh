#!/usr/bin/env bash
# Install what the tests need (Python packages into .venv, Debian's chromium for
# the browser tests), check lint, and run the whole suite. Arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"
. scripts/bootstrap.sh
bootstrap requirements-test.txt
if [ ! -x /usr/bin/chromium ]; then
  apt_install chromium
fi
.venv/bin/ruff check .
.venv/bin/ruff format --check .
exec .venv/bin/python -m pytest "$@"
