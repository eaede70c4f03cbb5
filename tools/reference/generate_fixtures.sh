#!/usr/bin/env bash
# Regenerates every e3nn fixture. Uses $PYTHON, else tools/reference/.venv/bin/python.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python="${PYTHON:-$here/.venv/bin/python}"
for script in "$here"/fixtures_*.py; do
  echo "== $script"
  "$python" "$script"
done
