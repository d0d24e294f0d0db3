#!/usr/bin/env bash
# Side-by-side run of vigild and its peers on the same generated lines, one core each:
#   SEC and syslog-ng PatternDB on W2 (the 5-failed-logins-in-60-s rule), checked against
#   the ground truth alert count; syslog-ng and rsyslog parsing W1.
# Installs sec and syslog-ng-core with apt-get (needs root) and unpacks rsyslog's .deb,
# which conflicts with syslog-ng-core, into $RSYSLOG_ROOT without installing it.
#
#   bench/peers/run_peers.sh [EVENTS]        (default 1000000; OUT, BUILD, CPU override)
set -euo pipefail
cd "$(dirname "$0")/../.."
events=${1:-1000000}
out=${OUT:-/tmp/vigil-e2e}
build=${BUILD:-build/release}
cpu=${CPU:-1}
seed=${SEED:-42}
rsyslog_root=${RSYSLOG_ROOT:-/tmp/vigil-rsyslog-root}

need=()
command -v sec >/dev/null || need+=(sec)
command -v syslog-ng >/dev/null || need+=(syslog-ng-core)
for lib in libestr0 libfastjson4 liblognorm5; do
  dpkg -s "$lib" >/dev/null 2>&1 || need+=("$lib")
done
if ((${#need[@]})); then
  echo "installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
if [[ ! -x $rsyslog_root/usr/sbin/rsyslogd ]]; then
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download rsyslog >/dev/null)
  dpkg-deb -x "$tmp"/rsyslog_*.deb "$rsyslog_root"
  rm -rf "$tmp"
fi

for b in mgmt/vigild bench/vigil_loadgen bench/vigil_linescan; do
  [[ -x $build/$b ]] || { echo "run_peers: $build/$b missing; run bench/e2e.sh first" >&2; exit 2; }
done
w1=$out/data/W1-$events-$seed
w2=$out/data/W2-$events-$seed
[[ -f $w1/truth.json ]] || "$build/bench/vigil_loadgen" gen --workload W1 --seed "$seed" --events "$events" --out "$w1"
[[ -f $w2/truth.json ]] || "$build/bench/vigil_loadgen" gen --workload W2 --seed "$seed" --events "$events" --out "$w2"

echo "== vigild, 1 worker, pinned to CPU $cpu (load $(cut -d' ' -f1 /proc/loadavg))"
python3 bench/e2e.py --build "$build" --out "$out" --events "$events" --seed "$seed" \
  --workloads W1,W2 --workers 1 --sources file --latency-loads '' --cpus "$cpu" \
  --json "$out/peers-vigild.jsonl"
echo "== peers, pinned to CPU $cpu"
set +e
python3 bench/peers/peers.py --w1 "$w1" --w2 "$w2" --out "$out/peers" --cpu "$cpu" \
  --sender-cpu "$(( cpu == 0 ? 1 : 0 ))" --loadgen "$build/bench/vigil_loadgen" \
  --rsyslog-root "$rsyslog_root" | tee "$out/peers.jsonl"
status=${PIPESTATUS[0]}
set -e
python3 - "$out/peers-vigild.jsonl" "$out/peers.jsonl" <<'PY'
import json, sys
vig = {r["workload"]: r for r in map(json.loads, open(sys.argv[1])) if r.get("kind") == "vigild"}
print("\n== ratios (vigild events per CPU second / peer lines per CPU second)")
for r in map(json.loads, open(sys.argv[2])):
    base = vig["W1" if r["what"].startswith("parse") and "PatternDB" not in r["what"] else "W2"]
    if r.get("lines_per_cpu_s"):
        extra = ""
        if "alerts" in r:
            extra = f", alerts {r['alerts']} (vigild {base['alerts']}, ground truth {r['alerts_expected']})"
        print(f"  {r['peer']:9} {r['what']:40} {r['lines_per_cpu_s']:>10,} lines/CPU-s; "
              f"vigild {base['events_per_cpu_s']:,} -> {base['events_per_cpu_s'] / r['lines_per_cpu_s']:.1f}x{extra}")
    else:
        print(f"  {r['peer']}: {r.get('error')}")
PY
exit "$status"
