#!/usr/bin/env bash
# Builds the libFuzzer targets (the `fuzz` preset: clang, ASan + UBSan) and fuzzes each
# one for a while, one target at a time in one libFuzzer process, starting from its seeds
# in tests/fuzz/<target>_corpus plus one seed per line of the shared-corpus files it
# lists. New inputs go to <work>/<target>/corpus. A crash, leak or sanitizer report stops
# that target and fails the script, and the input that caused it is left as
# <work>/<target>/crash-* (or leak-*, timeout-*, oom-*) next to the target's log.
# At the end a table lists each target's executions, executions per second and result.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]      default: 60 seconds, every target
#
# Environment:
#   VIGIL_FUZZ_WORK   folder for new inputs, logs and seeds (default build/fuzz/fuzz-work)
#   CMAKE_BUILD_PARALLEL_LEVEL   build jobs (default 2)
#
# LeakSanitizer reads tests/fuzz/lsan.supp, which explains each suppression in it.
# A failing input belongs in tests/fuzz/<target>_corpus/regression_<what> once fixed, so
# ctest replays it on every run.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

seconds="${1:-60}"
shift || true
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -eq 0 ]; then
  echo "fuzz.sh: '$seconds' is not a positive number of seconds; try: scripts/fuzz.sh 60" >&2
  exit 2
fi

bash scripts/install-deps.sh
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
cmake --preset fuzz "${launcher[@]}" >/dev/null
build="$root/build/fuzz"
work_root="${VIGIL_FUZZ_WORK:-$build/fuzz-work}"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for src in tests/fuzz/*_fuzz.cc; do targets+=("$(basename "$src" .cc)"); done
fi
for target in "${targets[@]}"; do
  if [ ! -f "tests/fuzz/$target.cc" ]; then
    echo "fuzz.sh: unknown target '$target'; targets are tests/fuzz/*_fuzz.cc without .cc" >&2
    exit 2
  fi
done
cmake --build "$build" -j "${CMAKE_BUILD_PARALLEL_LEVEL:-2}" --target "${targets[@]}"

export LSAN_OPTIONS="suppressions=$root/tests/fuzz/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"

failed=()
table=()
for target in "${targets[@]}"; do
  work="$work_root/$target"
  seeds="$work_root/seeds/$target"
  # The log stays out of the corpus folder, where libFuzzer would read it as an input.
  mkdir -p "$work/corpus" "$seeds"
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
  log="$work/$target.log"
  echo "== $target: ${seconds}s from $(find "tests/fuzz/${target}_corpus" "$seeds" -type f | wc -l) seeds"
  result=clean
  if ! (cd "$work" && "$build/tests/fuzz/$target" -max_total_time="$seconds" -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$work/" corpus \
        "$root/tests/fuzz/${target}_corpus" "$seeds" 2>"$log"); then
    failed+=("$target")
    result="FAILED ($(grep -m1 -oE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer|UndefinedBehaviorSanitizer)[^ ]*( [a-z-]+)?' "$log" || echo "exit status"))"
    tail -40 "$log" >&2
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  table+=("| \`$target\` | ${runs:-?} | $(( ${runs:-0} / seconds )) | $result |")
done

echo
echo "| target | runs | runs/s | result |"
echo "| --- | ---: | ---: | --- |"
printf '%s\n' "${table[@]}"
if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz.sh: failed: ${failed[*]} (inputs and logs under $work_root/)" >&2
  exit 1
fi
echo "fuzz.sh: ${#targets[@]} targets ran ${seconds}s each with no crash, leak or sanitizer report"
