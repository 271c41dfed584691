#!/usr/bin/env bash
# Keepsake's backups next to restic backing up a plain SQLite database of the same
# messages: bytes of the first backup, bytes added by a backup after 1% more
# messages, and restore times. Skips cleanly when restic is not installed.
#
#   Benchmarks/restic-compare.sh [MESSAGES]     (default 200000; builds keepsake in release mode)
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v restic >/dev/null; then
    echo "restic-compare: restic is not installed (Debian: apt-get install restic); skipping"
    exit 0
fi
messages=${1:-200000}
swift build -c release --product keepsake >/dev/null
keepsake=$PWD/.build/release/keepsake
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export RESTIC_PASSWORD=keepsake-benchmark RESTIC_REPOSITORY=$work/restic
head -c 32 /dev/urandom > "$work/key"

# A plain, single-file SQLite copy of the store's messages (the projections, checkpointed).
snapshot() {
    python3 - "$work/store/projections.sqlite" "$work/plain.sqlite" <<'PY'
import sqlite3, sys
source, target = sqlite3.connect(sys.argv[1]), sqlite3.connect(sys.argv[2])
source.backup(target)
target.execute("PRAGMA journal_mode = DELETE")
target.close()
PY
}
seconds() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$@"; }
restic_added() { restic backup --json --quiet "$work/plain.sqlite" | python3 -c "import json,sys; print([json.loads(l) for l in sys.stdin][-1]['data_added'])"; }

"$keepsake" generate --store "$work/store" --messages "$messages" --conversations 2000 --unsafe-no-sync >/dev/null
snapshot
restic init --quiet >/dev/null
restic_full=$(restic_added)
"$keepsake" backup --store "$work/store" --key-file "$work/key" --to "$work/backups" >/dev/null
keepsake_full=$(stat -c %s "$work"/backups/*.ksbak)

"$keepsake" generate --store "$work/store" --messages $((messages / 100)) --conversations 2000 --seed 2 --unsafe-no-sync >/dev/null
snapshot
restic_increment=$(restic_added)
"$keepsake" backup --store "$work/store" --key-file "$work/key" --to "$work/backups" --incremental >/dev/null
keepsake_increment=$(ls -t "$work"/backups/*.ksbak | head -1 | xargs stat -c %s)

start=$(date +%s.%N); restic restore latest --target "$work/restic-restore" --quiet; end=$(date +%s.%N)
restic_restore=$(seconds "$start" "$end")
start=$(date +%s.%N); "$keepsake" restore --store "$work/restored" --key-file "$work/key" "$work"/backups/*.ksbak >/dev/null; end=$(date +%s.%N)
keepsake_restore=$(seconds "$start" "$end")

echo "messages: $messages, then +$((messages / 100))"
printf '%-10s %16s %20s %14s\n' tool "first backup (B)" "after +1% (B added)" "restore (s)"
printf '%-10s %16s %20s %14s\n' restic "$restic_full" "$restic_increment" "$restic_restore"
printf '%-10s %16s %20s %14s\n' keepsake "$keepsake_full" "$keepsake_increment" "$keepsake_restore"
python3 -c "import sys; print(f'restic adds {int(sys.argv[1]) / int(sys.argv[2]):.1f}x the bytes of keepsake for the +1% backup')" "$restic_increment" "$keepsake_increment"
