#!/usr/bin/env bash
# Builds a static appmodel WITH the crash points (cargo feature fault-injection), for the
# crash-point tests on the systemd site host (tests/common/crash.rs). Never shipped: the
# bundles carry the release build of scripts/build-static.sh. Prints its path.
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-gnu
RUSTFLAGS='-C target-feature=+crt-static' cargo build --locked --target "$target" -p appmodel \
  --features appmodel-importer/fault-injection >&2
target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
bin="$target_dir/$target/debug/appmodel"
if readelf -d "$bin" | grep -q '(NEEDED)'; then
  echo "error: $bin is not static" >&2
  exit 1
fi
echo "$bin"
