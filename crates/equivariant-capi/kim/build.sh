#!/usr/bin/env bash
# Builds the equivariant KIM model driver and a portable model around one checkpoint, and
# installs both into a private KIM collection under OUT_DIR (nothing is written to the system
# or user KIM collections).
#
#   crates/equivariant-capi/kim/build.sh CHECKPOINT MODEL_NAME OUT_DIR [CAPI_LIB]
#
#   CHECKPOINT  a checkpoint of `equivariant train` (safetensors)
#   MODEL_NAME  the KIM name of the portable model (a C identifier), e.g. equivariant_AuCu
#   OUT_DIR     where the build trees and the collection go
#   CAPI_LIB    libequivariant_capi.so (default: <workspace>/target/release/libequivariant_capi.so)
#
# Environment: EQUIVARIANT_KIM_DRIVER_NAME (default equivariant__MD_000000000000_000),
# CMAKE (default cmake), EQUIVARIANT_KIM_JOBS (default 2).
#
# Build output goes to stderr; stdout is only the environment LAMMPS (or any KIM simulator)
# needs, as `export` lines:
#
#   eval "$(crates/equivariant-capi/kim/build.sh best.safetensors equivariant_AuCu /tmp/kim)"
#   lmp -in examples/lammps/in.equivariant -var model equivariant_AuCu ...
set -euo pipefail

usage() {
  sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}
[[ $# -ge 3 && $# -le 4 ]] || usage

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
workspace="$(cd "$here/../../.." && pwd)"

checkpoint="$(realpath -e "$1")" || { echo "build.sh: no checkpoint '$1'" >&2; exit 1; }
model_name="$2"
driver_name="${EQUIVARIANT_KIM_DRIVER_NAME:-equivariant__MD_000000000000_000}"
c_identifier() {
  [[ "$2" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || { echo "build.sh: $1 '$2' must be a C identifier" >&2; exit 1; }
}
c_identifier MODEL_NAME "$model_name"
c_identifier EQUIVARIANT_KIM_DRIVER_NAME "$driver_name"
capi_lib="${4:-$workspace/target/release/libequivariant_capi.so}"
[[ -f "$capi_lib" ]] || { echo "build.sh: no C ABI library '$capi_lib' (cargo build --release -p equivariant-capi)" >&2; exit 1; }
capi_lib="$(realpath "$capi_lib")"
cmake="${CMAKE:-cmake}"
jobs="${EQUIVARIANT_KIM_JOBS:-2}"
command -v "$cmake" >/dev/null || { echo "build.sh: '$cmake' not found (apt-get install cmake)" >&2; exit 1; }

mkdir -p "$3"
out_dir="$(realpath "$3")"

# The private collection.  KIM_API_*_DIR are the KIM API 2.x "environment variable"
# collection; KIM_API_CONFIGURATION_FILE points the "user" collection at a config file
# under OUT_DIR, because KIM creates ~/.kim-api/<version>/config (and its directories) the
# first time it looks for an item when no user config file exists.
export KIM_API_MODEL_DRIVERS_DIR="$out_dir/model-drivers"
export KIM_API_PORTABLE_MODELS_DIR="$out_dir/portable-models"
export KIM_API_SIMULATOR_MODELS_DIR="$out_dir/simulator-models"
export KIM_API_CONFIGURATION_FILE="$out_dir/kim-api-user-config"
mkdir -p "$KIM_API_MODEL_DRIVERS_DIR" "$KIM_API_PORTABLE_MODELS_DIR" "$KIM_API_SIMULATOR_MODELS_DIR" \
  "$out_dir/user/model-drivers" "$out_dir/user/portable-models" "$out_dir/user/simulator-models"
if [[ ! -f "$KIM_API_CONFIGURATION_FILE" ]]; then
  cat >"$KIM_API_CONFIGURATION_FILE" <<EOF
model-drivers-dir = $out_dir/user/model-drivers
portable-models-dir = $out_dir/user/portable-models
simulator-models-dir = $out_dir/user/simulator-models
EOF
fi

common=(-DKIM_API_INSTALL_COLLECTION=ENVIRONMENT -DCMAKE_C_FLAGS=-O2 -DCMAKE_CXX_FLAGS=-O2)

{
  echo "== driver $driver_name (C ABI: $capi_lib)"
  "$cmake" -S "$here/driver" -B "$out_dir/build/driver" "${common[@]}" \
    -DEQUIVARIANT_CAPI_LIB="$capi_lib" \
    -DEQUIVARIANT_CAPI_INCLUDE_DIR="$here/../include" \
    -DEQUIVARIANT_KIM_DRIVER_NAME="$driver_name"
  "$cmake" --build "$out_dir/build/driver" -j "$jobs"
  "$cmake" --install "$out_dir/build/driver"

  echo "== portable model $model_name (checkpoint: $checkpoint)"
  "$cmake" -S "$here/model" -B "$out_dir/build/model-$model_name" "${common[@]}" \
    -DEQUIVARIANT_CHECKPOINT="$checkpoint" \
    -DEQUIVARIANT_KIM_MODEL_NAME="$model_name" \
    -DEQUIVARIANT_KIM_DRIVER_NAME="$driver_name"
  "$cmake" --build "$out_dir/build/model-$model_name" -j "$jobs"
  "$cmake" --install "$out_dir/build/model-$model_name"
} 1>&2

for item in "$KIM_API_MODEL_DRIVERS_DIR/$driver_name/libkim-api-model-driver.so" \
  "$KIM_API_PORTABLE_MODELS_DIR/$model_name/libkim-api-portable-model.so"; do
  [[ -f "$item" ]] || { echo "build.sh: expected $item after install" >&2; exit 1; }
done
echo "== installed $driver_name and $model_name under $out_dir" >&2

# %q quotes a path with spaces, quotes or other odd characters for the caller's `eval`.
for name in KIM_API_MODEL_DRIVERS_DIR KIM_API_PORTABLE_MODELS_DIR KIM_API_SIMULATOR_MODELS_DIR \
  KIM_API_CONFIGURATION_FILE; do
  printf 'export %s=%q\n' "$name" "${!name}"
done
