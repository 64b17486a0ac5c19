#!/usr/bin/env bash
# Builds appmodel as a static musl executable (no interpreter, no shared library, no
# OpenSSL: rustls; name lookups by musl's own resolver, which reads /etc/hosts and
# /etc/resolv.conf and needs no NSS module of the host): the one that ships on the disc and
# runs on hosts we have never seen. Stripped. Prints its absolute path.
#   APPMODEL_TARGET  the target: x86_64-unknown-linux-musl (default) or
#                    aarch64-unknown-linux-musl (cross: Debian's gcc-aarch64-linux-gnu compiles
#                    aws-lc's C, rust-lld links; run it here with qemu-aarch64-static)
set -euo pipefail
cd "$(dirname "$0")/.."
target=${APPMODEL_TARGET:-x86_64-unknown-linux-musl}
rustup target list --installed 2>/dev/null | grep -qx "$target" || rustup target add "$target" >&2
# aws-lc's C code: Debian's musl-gcc (musl-tools) for x86_64, the aarch64 cross gcc for
# arm64 (scripts/setup.sh installs both).
case "$target" in
  x86_64-*) cc=musl-gcc ar=ar strip=strip ;;
  aarch64-*)
    cc=aarch64-linux-gnu-gcc ar=aarch64-linux-gnu-ar strip=aarch64-linux-gnu-strip
    linker_var="CARGO_TARGET_$(echo "${target//-/_}" | tr a-z A-Z)_LINKER"
    [ -n "${!linker_var:-}" ] || export "$linker_var=rust-lld"
    ;;
  *) echo "error: no static build recipe for $target" >&2; exit 1 ;;
esac
for var in "CC_${target//-/_}=$cc" "AR_${target//-/_}=$ar"; do
  name=${var%%=*}
  [ -n "${!name:-}" ] || export "$var"
done
cargo build --release --locked --target "$target" -p appmodel >&2
target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
built="$target_dir/$target/release/appmodel"
bin="$target_dir/static/$target/appmodel"
mkdir -p "$(dirname "$bin")"
"$strip" -o "$bin.tmp" "$built"
mv -f "$bin.tmp" "$bin"
if readelf -l "$bin" | grep -q 'INTERP' || readelf -d "$bin" | grep -q '(NEEDED)'; then
  echo "error: $bin is not static:" >&2
  readelf -l "$bin" | grep -A1 INTERP >&2 || true
  readelf -d "$bin" | grep '(NEEDED)' >&2 || true
  exit 1
fi
echo "$bin"
