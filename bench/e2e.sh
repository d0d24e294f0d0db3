#!/usr/bin/env bash
# The end-to-end benchmark: builds the release preset (vigild, vigilctl, vigil_loadgen,
# vigil_linescan), then runs bench/e2e.py, which generates each workload, runs the limit
# anchors and vigild on 1 and 2 workers through each source, and checks every run's
# alerts against the generator's ground truth (exit status 1 when they differ).
#
#   bench/e2e.sh                       # W1..W4, 1M events, file/tcp/udp/pcap, 1 and 2 workers
#   bench/e2e.sh --smoke               # tiny inputs, no timing, what ctest runs
#   bench/e2e.sh --workloads W2 --sources file,tcp --events 2000000
#
# Other options go to bench/e2e.py (--help lists them). Set BUILD to use another build
# folder, and SKIP_BUILD=1 to use it as it is. Measure on an idle machine: the script
# prints the load average next to every figure.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build/release}
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  if [[ ! -f $build/CMakeCache.txt ]]; then
    cmake --preset release >/dev/null
  fi
  cmake --build "$build" -j "${JOBS:-2}" --target vigild vigilctl vigil_loadgen vigil_linescan
fi
exec python3 bench/e2e.py --build "$build" "$@"
