#!/usr/bin/env bash
# ctest smoke run of the peers: tiny W1/W2 inputs, SEC and syslog-ng PatternDB must raise
# the ground-truth brute-force count. No timing. Exits 77 (skipped) when neither peer is
# installed; bench/peers/run_peers.sh installs them.
#   bench/peers/smoke.sh BUILD_DIR OUT_DIR
set -euo pipefail
build=$1
out=$2
here=$(cd "$(dirname "$0")" && pwd)
peers=()
command -v sec >/dev/null && peers+=(sec)
command -v syslog-ng >/dev/null && peers+=(syslog-ng-pdb)
if ((${#peers[@]} == 0)); then
  echo "neither sec nor syslog-ng is installed; skipping (bench/peers/run_peers.sh installs them)"
  exit 77
fi
rm -rf "$out"
for w in W1 W2; do
  "$build/bench/vigil_loadgen" gen --workload "$w" --seed 7 --events 5000 --out "$out/$w"
done
list=$(IFS=,; echo "${peers[*]}")
python3 "$here/peers.py" --w1 "$out/W1" --w2 "$out/W2" --out "$out/peers" --cpu 0-1 \
  --sender-cpu 0-1 --loadgen "$build/bench/vigil_loadgen" --peers "$list" --timeout 60
