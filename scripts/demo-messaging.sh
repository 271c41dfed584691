#!/usr/bin/env bash
# The messaging part of `make demo`: a relay on loopback, two accounts with one
# installation each, a direct conversation both ways and a group, all through
# the `keepsake` command line. Usage: scripts/demo-messaging.sh [path/to/keepsake]
set -euo pipefail
keepsake=$(realpath "${1:-.build/release/keepsake}")
work=$(mktemp -d)
relay_pid=
cleanup() { [ -n "$relay_pid" ] && kill "$relay_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
cd "$work"

step() { printf '\n\033[1m$ keepsake %s\033[0m\n' "$*"; "$keepsake" "$@"; }

"$keepsake" serve --data relay --port 0 > relay.out &
relay_pid=$!
for _ in $(seq 100); do grep -q listening relay.out 2>/dev/null && break; sleep 0.1; done
export KEEPSAKE_RELAY=$(sed -n 's/listening on //p' relay.out)
echo "relay listening on $KEEPSAKE_RELAY (data in a temporary folder)"

alice=$("$keepsake" account create --key-file alice.key)
bob=$("$keepsake" account create --key-file bob.key)
carol=$("$keepsake" account create --key-file carol.key)
echo "accounts: alice ${alice:0:12}…, bob ${bob:0:12}…, carol ${carol:0:12}…"

step installation add --store alice-phone --account-key alice.key --role phone
step installation add --store bob-laptop --account-key bob.key --role laptop
step installation add --store carol-tablet --account-key carol.key --role tablet
step installation list --store alice-phone "$bob"

step send --store alice-phone "$bob" "Lunch tomorrow?"
step sync --store bob-laptop
conversation=$("$keepsake" conversations --store bob-laptop --json | sed -n 's/.*"id":"\([0-9a-f]*\)".*/\1/p' | head -1)
step send --store bob-laptop "$conversation" "Yes, noon at the usual place"
step sync --store alice-phone
step messages --store alice-phone "$conversation"

group=$("$keepsake" group create --store alice-phone --title "Weekend trip" "$bob")
echo; echo "group $group created by alice with bob"
step sync --store bob-laptop
step group add --store bob-laptop "$group" "$carol"
step sync --store carol-tablet
step send --store carol-tablet "$group" "Thanks for adding me!"
step sync --store alice-phone
step messages --store alice-phone "$group"

echo; echo "Every session change is a ratchet-step event in the log; older states are erased:"
"$keepsake" log --store alice-phone | grep -E 'ratchet-step|membership-commit|account-joined' | tail -6

echo; echo "Alice adds a laptop and moves her history to it (XIP-31):"
step installation add --store alice-laptop --account-key alice.key --role laptop
asked=$("$keepsake" history request --store alice-laptop)
echo "$asked"
pin=$(echo "$asked" | sed -n 's/^PIN \([0-9]*\):.*/\1/p')
step sync --store alice-phone
request=$("$keepsake" history pending --store alice-phone | cut -c1-32)
step history approve --store alice-phone "$request" --pin "$pin"
step sync --store alice-laptop
step conversations --store alice-laptop
