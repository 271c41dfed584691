#!/usr/bin/env bash
# Builds the package benchmarks in release and runs them, printing the median
# of each metric as a table: `Benchmarks/run.sh ['regex' ...]` (default: all).
#
# Runs the benchmark executable directly instead of `swift package benchmark`:
# with Swift 6.3 on Linux the plugin's runner dies in the Swift runtime unless
# the swift-runtime-interposer package is available, and it is not here
# (github.com/ordo-one/package-benchmark/issues/349); run directly, the same
# benchmarks run in the library's own debug mode and print every percentile.
set -euo pipefail
cd "$(dirname "$0")"
swift build -c release --product KeepsakeBenchmarks >&2
filters=()
for pattern in "${@:-.*}"; do filters+=(--filter "$pattern"); done
./.build/release/KeepsakeBenchmarks "${filters[@]}" 2>/dev/null | awk '
    /^Debug results for / { name = substr($0, 19); sub(/:$/, "", name); next }
    /^[A-Za-z].*:$/ { metric = substr($0, 1, length($0) - 1); next }
    $2 == "0.500000000000" && name != "" && metric ~ /^Time/ { printf "| %s | %s | %.1f ms |\n", name, metric, $1 / 1e6; next }
    $2 == "0.500000000000" && name != "" && metric ~ /^Memory/ { printf "| %s | %s | %d MiB |\n", name, metric, $1 / 1048576; next }
    $2 == "0.500000000000" && name != "" { printf "| %s | %s | %d |\n", name, metric, $1 }
' | { echo "| benchmark | metric | median |"; echo "|---|---|---:|"; cat; }
