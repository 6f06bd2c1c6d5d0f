#!/usr/bin/env bash
# Runs the dot-stuffing benches of `benches/codec.rs` with quick settings and prints the
# medians and the ratios stuffing/copy and unstuffing/copy, the copy being a plain
# `extend_from_slice` of the same bytes in the same chunks, measured in the same run.
#
# Usage: benches/ratio.sh [MEASUREMENT_SECONDS]   (default 3; warm-up is 1 s)
#        POP3_BENCH_MIB=32 benches/ratio.sh        (a 32 MiB message instead of 1 MiB)
#
# Design target (docs/performance.md): every ratio at most 3 (dot-stuffing and unstuffing
# within 3x of memcpy of the same bytes on one core). The script reports; it does not fail
# on a miss, since a shared 2-core machine is too noisy for a hard gate.
set -euo pipefail
cd "$(dirname "$0")/.."

measure="${1:-3}"
target_dir="$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
criterion_dir="${CRITERION_HOME:-$target_dir/criterion}"

# Results older than this marker are from an earlier run and must not be read.
marker="$(mktemp)"
trap 'rm -f "$marker"' EXIT

cargo bench -p pop3-benches --bench codec -- '^dot_(stuff|unstuff)/' \
  --warm-up-time 1 --measurement-time "$measure"

python3 - "$criterion_dir" "$marker" <<'EOF'
import json, os, sys

criterion_dir, marker = sys.argv[1], sys.argv[2]
since = os.path.getmtime(marker)
TARGET = 3.0


def median_ns(bench):
    path = os.path.join(criterion_dir, bench, "new", "estimates.json")
    if not os.path.exists(path) or os.path.getmtime(path) < since:
        sys.exit(f"ratio.sh: no fresh result for {bench} at {path}")
    with open(path) as f:
        return json.load(f)["median"]["point_estimate"]


pairs = [
    ("stuff/copy, CRLF storage", "dot_stuff/stuff/crlf", "dot_stuff/copy/crlf"),
    ("stuff/copy, bare-LF storage", "dot_stuff/stuff/lf", "dot_stuff/copy/lf"),
    ("unstuff/copy (data collected)", "dot_unstuff/unstuff", "dot_unstuff/copy"),
    ("unstuff/copy (scan only)", "dot_unstuff/unstuff_scan", "dot_unstuff/copy"),
]

print()
print(f"medians ({os.environ.get('POP3_BENCH_MIB', '1')} MiB message, 64 KiB chunks):")
seen = set()
for _, work, base in pairs:
    for bench in (base, work):
        if bench not in seen:
            seen.add(bench)
            print(f"  {bench:<28} {median_ns(bench) / 1000:10.1f} us")
print()
print(f"ratios (design target: <= {TARGET:g}x):")
for name, work, base in pairs:
    ratio = median_ns(work) / median_ns(base)
    verdict = "within target" if ratio <= TARGET else "OVER target"
    print(f"  {name:<32} {ratio:6.2f}x  {verdict}")
EOF
