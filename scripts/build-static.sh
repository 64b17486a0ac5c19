#!/usr/bin/env bash
# Builds appmodel as a static musl executable (no interpreter, no shared library, no
# OpenSSL: rustls; name lookups by musl's own resolver, which reads /etc/hosts and
# /etc/resolv.conf and needs no NSS module of the host): the one that ships on the disc and
# runs on hosts we have never seen. Stripped. Prints its absolute path.
#   APPMODEL_TARGET  the target (default x86_64-unknown-linux-musl)
set -euo pipefail
cd "$(dirname "$0")/.."
target=${APPMODEL_TARGET:-x86_64-unknown-linux-musl}
rustup target list --installed 2>/dev/null | grep -qx "$target" || rustup target add "$target" >&2
# aws-lc's C code is compiled for musl by Debian's musl-gcc (musl-tools, scripts/setup.sh).
cc_var="CC_${target//-/_}"
[ -n "${!cc_var:-}" ] || export "$cc_var=musl-gcc"
cargo build --release --locked --target "$target" -p appmodel >&2
target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
built="$target_dir/$target/release/appmodel"
bin="$target_dir/static/$target/appmodel"
mkdir -p "$(dirname "$bin")"
strip -o "$bin.tmp" "$built"
mv -f "$bin.tmp" "$bin"
if readelf -l "$bin" | grep -q 'INTERP' || readelf -d "$bin" | grep -q '(NEEDED)'; then
  echo "error: $bin is not static:" >&2
  readelf -l "$bin" | grep -A1 INTERP >&2 || true
  readelf -d "$bin" | grep '(NEEDED)' >&2 || true
  exit 1
fi
echo "$bin"
