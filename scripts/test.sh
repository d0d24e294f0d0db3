#!/usr/bin/env bash
# Installs what is missing, builds the developer preset and runs the whole test suite
# through ctest. Extra arguments go to ctest (for example -R parser or -L fuzz).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cmake --preset dev >/dev/null
cmake --build --preset dev -j "$(nproc)"
ctest --preset dev -j "$(nproc)" "$@"
