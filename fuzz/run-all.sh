#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 10), on the machine's stable toolchain.
#
# Usage: fuzz/run-all.sh [SECONDS]
#
# cargo-fuzz needs nightly-only rustc flags (-Zsanitizer=address, ...); RUSTC_BOOTSTRAP=1 lets
# the stable 1.95 toolchain accept them. cargo-fuzz itself is installed from crates.io if it is
# missing (about 40 s). New corpus entries go to fuzz/target/corpus/<target> (ignored by git);
# the committed seeds in fuzz/corpus/<target> are read, never written. A crash stops the
# script with libFuzzer's report; the input is saved under fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")"

seconds="${1:-10}"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

targets=$(cargo fuzz list)
cargo fuzz build

for target in $targets; do
  echo
  echo "=== $target (${seconds}s)"
  mkdir -p "target/corpus/$target" target/logs
  log="target/logs/$target.log"
  # Only the summary is shown; libFuzzer's progress lines go to the log.
  set +e
  cargo fuzz run "$target" "$PWD/target/corpus/$target" "$PWD/corpus/$target" -- \
    -max_total_time="$seconds" -dict="$PWD/pop3.dict" -print_final_stats=1 >"$log" 2>&1
  status=$?
  set -e
  grep -E '^(stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb|Done [0-9]+ runs)' "$log" || true
  if [ "$status" -ne 0 ]; then
    grep -E 'panicked|SUMMARY|Test unit written|Base64' "$log" || true
    echo "$target FAILED (exit $status); full report: fuzz/$log"
    exit "$status"
  fi
done
echo
echo "all targets ran ${seconds}s without a crash"
