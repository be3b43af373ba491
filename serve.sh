#!/usr/bin/env bash
# Install what the server needs (into .venv) and serve on http://127.0.0.1:5000.
# Arguments go to app.py: ./serve.sh --host 0.0.0.0 --port 8000
set -euo pipefail
cd "$(dirname "$0")"
. scripts/bootstrap.sh
bootstrap requirements.txt
exec .venv/bin/python app.py "$@"
