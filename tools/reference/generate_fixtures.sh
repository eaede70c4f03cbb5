#!/usr/bin/env bash
# Regenerates every e3nn fixture. Uses $PYTHON, else tools/reference/.venv/bin/python.
# Runs every fixtures_*.py: fixtures_o3, _rotation, _math, _tensor_product write into
# crates/equivariant-core/tests/fixtures/, fixtures_nn, _modules and _forces into
# crates/equivariant/tests/fixtures/.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python="${PYTHON:-$here/.venv/bin/python}"
for script in "$here"/fixtures_*.py; do
  echo "== $script"
  "$python" "$script"
done
