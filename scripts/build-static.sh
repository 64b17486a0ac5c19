#!/usr/bin/env bash
# Builds appmodel as a static executable (no shared libraries, no OpenSSL): the one that
# ships on the disc. Prints its absolute path.
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-gnu
RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --locked --target "$target" -p appmodel >&2
target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
bin="$target_dir/$target/release/appmodel"
if readelf -d "$bin" | grep -q '(NEEDED)'; then
  echo "error: $bin is not static:" >&2
  readelf -d "$bin" | grep '(NEEDED)' >&2
  exit 1
fi
echo "$bin"
