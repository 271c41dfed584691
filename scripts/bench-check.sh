#!/usr/bin/env bash
# Instruction counts of small, fixed workloads under valgrind's callgrind,
# compared with the committed baselines (Benchmarks/callgrind-baselines.json).
# Instruction counts barely move between runs on a noisy machine, unlike
# times, so a rise of more than 10% is a regression worth a look.
#
#   scripts/bench-check.sh [keepsake binary]            compare; exit 1 on a rise over 10%
#   scripts/bench-check.sh --update [keepsake binary]   write the baselines from this run
#
# Workloads (release build): append 5,000 messages with their projections
# (`generate`), write a full backup, restore it into a fresh store, and rebuild
# the projections from the log.
set -euo pipefail
update=false
if [ "${1:-}" = "--update" ]; then update=true; shift; fi
bin=${1:-.build/release/keepsake}
baselines=Benchmarks/callgrind-baselines.json
command -v valgrind >/dev/null || { echo "valgrind is missing: apt-get install valgrind" >&2; exit 2; }
[ -x "$bin" ] || { echo "$bin is missing: build it with swift build -c release --product keepsake" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# This machine's valgrind cannot read the DWARF of Swift 6 release builds
# ("possibly corrupted debuginfo"): measure a stripped copy (totals need no symbols).
strip -o "$work/keepsake" "$bin"
bin="$work/keepsake"
head -c 32 /dev/urandom > "$work/backup.key"
# Stores made outside callgrind, so each workload measures one step.
"$bin" generate --store "$work/source" --messages 5000 --conversations 50 --seed 7 --unsafe-no-sync >/dev/null
"$bin" backup --store "$work/source" --key-file "$work/backup.key" --to "$work/backups" >/dev/null

instructions() {  # name, then the command: prints the name and its instruction count
    local name=$1; shift
    valgrind --tool=callgrind --callgrind-out-file="$work/$name.out" "$@" >/dev/null 2>"$work/$name.err" ||
        { cat "$work/$name.err" >&2; exit 1; }
    echo "$name $(awk '/^(summary|totals):/ { print $2; exit }' "$work/$name.out")"
}
{
    instructions append "$bin" generate --store "$work/appended" --messages 5000 --conversations 50 --seed 7 --unsafe-no-sync
    instructions backup "$bin" backup --store "$work/source" --key-file "$work/backup.key" --to "$work/more-backups"
    instructions restore "$bin" restore --store "$work/restored" --key-file "$work/backup.key" "$work"/backups/*.ksbak
    instructions rebuild "$bin" rebuild --store "$work/source"
} > "$work/counts"

python3 - "$work/counts" "$baselines" "$update" <<'PY'
import json, sys
counts = dict((name, int(value)) for name, value in (line.split() for line in open(sys.argv[1])))
path, update = sys.argv[2], sys.argv[3] == "true"
if update:
    json.dump(counts, open(path, "w"), indent=2, sort_keys=True)
    open(path, "a").write("\n")
    print(f"wrote {path}: " + ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items())))
    sys.exit(0)
baseline = json.load(open(path))
failed = False
for name in sorted(counts):
    ratio = counts[name] / baseline[name]
    verdict = "ok" if ratio <= 1.10 else "REGRESSION"
    failed |= ratio > 1.10
    print(f"{name:8} {counts[name]:>16,} instructions  baseline {baseline[name]:>16,}  {ratio:6.3f}x  {verdict}")
sys.exit(1 if failed else 0)
PY
