#!/usr/bin/env bash
# Installs what is missing, builds the release preset, and runs the appliance on the
# bundled WRCCDC sample: vigild replays the logs, matches indicators, runs the rules,
# opens cases, and serves them on http://127.0.0.1:8080. The script then lists the cases
# through the API with vigilctl and prints the daemon's summary.
# Set VIGIL_DEMO_KEEP=1 to leave vigild running afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target vigild vigilctl

bin=build/release/mgmt
state=build/demo-state
config=configs/demo/vigil.yaml
api=http://127.0.0.1:8080

rm -rf "$state"
mkdir -p "$state"
# Every API call needs a token; mint the first admin token offline in the state folder.
VIGIL_TOKEN=$("$bin/vigilctl" tokens bootstrap --state-dir "$state" --name demo-admin 2>/dev/null)
export VIGIL_TOKEN
"$bin/vigild" --config "$config" --summary-file "$state/summary.txt" \
  >"$state/vigild.out" 2>"$state/vigild.log" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT

# Wait until the replay sources have finished and the pipeline has drained.
for _ in $(seq 1 600); do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "vigild exited early; its log:" >&2
    cat "$state/vigild.log" >&2
    exit 1
  fi
  if curl -sf -H "Authorization: Bearer $VIGIL_TOKEN" "$api/api/v1/status" 2>/dev/null | grep -q '"replay_done":true'; then break; fi
  sleep 0.1
done

echo
echo "== Cases (vigilctl --api $api cases list)"
"$bin/vigilctl" --api "$api" cases list
first=$("$bin/vigilctl" --api "$api" cases list --json | python3 -c \
  'import json,sys; items=json.load(sys.stdin)["items"]; print(items[0]["id"] if items else "")')
if [[ -n "$first" ]]; then
  echo
  echo "== Case $first (vigilctl cases show $first)"
  # Through a file, not a pipe: head closing the pipe early would end vigilctl with SIGPIPE,
  # and pipefail would then fail the script.
  "$bin/vigilctl" --api "$api" cases show "$first" >"$state/case-$first.txt"
  head -40 "$state/case-$first.txt"
fi

if [[ "${VIGIL_DEMO_KEEP:-0}" == "1" ]]; then
  trap - EXIT
  echo
  echo "vigild is still running (pid $pid) on $api; stop it with: kill $pid"
  echo "admin token (shown once): export VIGIL_TOKEN=$VIGIL_TOKEN"
  exit 0
fi
kill -TERM "$pid"
wait "$pid" || true
trap - EXIT
echo
cat "$state/summary.txt"
echo "vigild has stopped; the cases stay in $state/cases.db."
echo "To keep it serving the API after the replay: VIGIL_DEMO_KEEP=1 scripts/demo.sh"
