#!/usr/bin/env bash
# Checks a relay on loopback against docs/relay-openapi.json with schemathesis:
# every check, every phase, SCHEMATHESIS_EXAMPLES examples per operation (10 by
# default, so `make test` stays bounded). Usage: scripts/schemathesis.sh [keepsake binary]
set -euo pipefail
cd "$(dirname "$0")/.."
keepsake=${1:-.build/debug/keepsake}
work=$(mktemp -d)
"$keepsake" serve --port 0 --data "$work/relay" > "$work/out" 2>&1 &
relay=$!
trap 'kill $relay 2>/dev/null; wait $relay 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do grep -q "^listening on " "$work/out" && break; sleep 0.1; done
url=$(sed -n 's/^listening on //p' "$work/out")
[ -n "$url" ] || { echo "the relay did not start: $(cat "$work/out")" >&2; exit 1; }
st=$(command -v st || echo "$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/st")
"$st" --config-file scripts/schemathesis.toml run docs/relay-openapi.json --url "$url" --checks all \
    --max-examples "${SCHEMATHESIS_EXAMPLES:-10}" --seed "${SCHEMATHESIS_SEED:-1}" --no-color
