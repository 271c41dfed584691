#!/usr/bin/env bash
# Regenerates the Generated/*.pb.swift files of KeepsakeStore, KeepsakeMessaging
# and KeepsakeWire from Protos/.
# Needs protoc (Debian: protobuf-compiler) and protoc-gen-swift, which this
# script builds once from the swift-protobuf package the project depends on.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v protoc >/dev/null || { echo "protoc is missing: apt-get install protobuf-compiler" >&2; exit 1; }

plugin_dir=.build-protoc-gen-swift
plugin="$plugin_dir/release/protoc-gen-swift"
if [ ! -x "$plugin" ]; then
    version=$(sed -n 's/.*swift-protobuf", from: "\([0-9.]*\)".*/\1/p' Package.swift)
    src="$plugin_dir/swift-protobuf"
    rm -rf "$src"
    git clone --quiet --depth 1 --branch "$version" https://github.com/apple/swift-protobuf "$src"
    swift build --package-path "$src" --scratch-path "$plugin_dir" -c release --product protoc-gen-swift
fi

# Event payloads (KeepsakeStore and KeepsakeMessaging) and wire formats (KeepsakeWire).
generate() {
    protoc --plugin=protoc-gen-swift="$plugin" \
        --swift_opt=Visibility=Package \
        --swift_opt=FileNaming=DropPath \
        --swift_out="$1" \
        -I Protos "$2"/*.proto
    echo "generated: $(ls "$1")"
}
generate Sources/KeepsakeStore/Generated Protos/keepsake/v1
generate Sources/KeepsakeMessaging/Generated Protos/keepsake/messaging/v1
generate Sources/KeepsakeWire/Generated Protos/keepsake/wire/v1
