#!/usr/bin/env bash
# Builds the libFuzzer targets (the `fuzz` preset: clang, ASan + UBSan) and fuzzes each
# one for a while, starting from its seeds in tests/fuzz/<target>_corpus plus one seed per
# line of the shared-corpus files it lists. New inputs go to build/fuzz/fuzz-work/<target>;
# a crash, leak or sanitizer report stops that target and fails the script, and the input
# that caused it is left as build/fuzz/fuzz-work/<target>/crash-* (or leak-*, timeout-*).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]      default: 60 seconds, every target
#
# A failing input belongs in tests/fuzz/<target>_corpus/regression_<what> once fixed, so
# ctest replays it on every run.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
shift || true
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -eq 0 ]; then
  echo "fuzz.sh: '$seconds' is not a positive number of seconds; try: scripts/fuzz.sh 60" >&2
  exit 2
fi

bash scripts/install-deps.sh
cmake --preset fuzz >/dev/null
build=build/fuzz
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for src in tests/fuzz/*_fuzz.cc; do targets+=("$(basename "$src" .cc)"); done
fi
cmake --build "$build" --target "${targets[@]}"

failed=()
for target in "${targets[@]}"; do
  work="$build/fuzz-work/$target"
  seeds="$build/fuzz-seeds/$target"
  mkdir -p "$work" "$seeds"
  list="$build/tests/fuzz/$target.shared-seeds"
  if [ -s "$list" ]; then
    # One seed file per non-empty line, at most 64 KiB each, named by line number.
    while IFS= read -r path; do
      [ -n "$path" ] || continue
      find "$path" -type f -print0 | sort -z | while IFS= read -r -d '' file; do
        awk -v dir="$seeds" -v tag="$(basename "$file")" \
          'length($0) > 0 && length($0) <= 65536 { f = dir "/" tag "." NR; printf "%s", $0 > f; close(f) }' \
          "$file"
      done
    done <"$list"
  fi
  echo "== $target: ${seconds}s from $(find tests/fuzz/${target}_corpus "$seeds" -type f | wc -l) seeds"
  if ! (cd "$work" && "../../tests/fuzz/$target" -max_total_time="$seconds" -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 . "../../../../tests/fuzz/${target}_corpus" \
        "../../fuzz-seeds/$target" 2>"$target.log"); then
    failed+=("$target")
    tail -40 "$work/$target.log" >&2
  else
    grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb' "$work/$target.log" || true
  fi
done

if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz.sh: failed: ${failed[*]} (inputs and logs under $build/fuzz-work/)" >&2
  exit 1
fi
echo "fuzz.sh: ${#targets[@]} targets ran ${seconds}s each with no crash, leak or sanitizer report"
