#!/usr/bin/env bash
# Builds the im-stack programs as static Linux executables, for both versions:
#
#   dist/1.0.0/linux-amd64/{im-store,push-service,im-server}
#   dist/1.1.0/linux-amd64/{im-store,push-service,im-server}   (cargo feature v1_1)
#   dist/im-probe
#
# Safe to run again: it rebuilds what changed and replaces the files. Fails if an
# executable has a NEEDED entry (a shared library it would load at run time) or does
# not report the version it was built as.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target=x86_64-unknown-linux-gnu
dist="$here/dist"
services=(im-store push-service im-server)

cd "$root"
target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
out="$target_dir/$target/release"

# The explicit --target keeps build scripts and proc-macros dynamically linked for the
# host (crt-static applies to the target only) and the static artifacts in their own dir.
export RUSTFLAGS='-C target-feature=+crt-static'
# `cargo auditable` embeds each binary's crate list (a `.dep-v0` section), which appmodel
# reads into every bundle's bill of materials. scripts/setup.sh installs it.
if ! cargo auditable --version >/dev/null 2>&1; then
    echo "error: cargo-auditable is missing; scripts/setup.sh installs it" >&2
    exit 1
fi
build() {
    cargo auditable build --release --target "$target" "$@"
}

check_static() {
    local exe=$1
    if readelf -d "$exe" | grep -q '(NEEDED)'; then
        echo "error: $exe is not static, it needs:" >&2
        readelf -d "$exe" | grep '(NEEDED)' >&2
        exit 1
    fi
}

# Both variants land in the same output path, so copy each right after its build.
for version in 1.0.0 1.1.0; do
    features=()
    if [ "$version" = 1.1.0 ]; then
        features=(--features im-store/v1_1,push-service/v1_1,im-server/v1_1)
    fi
    build -p im-store -p push-service -p im-server "${features[@]}"
    mkdir -p "$dist/$version/linux-amd64"
    for p in "${services[@]}"; do
        dest="$dist/$version/linux-amd64/$p"
        install -m 0755 "$out/$p" "$dest"
        check_static "$dest"
        reported="$("$dest" --version)"
        if [ "$reported" != "$p $version" ]; then
            echo "error: $dest reports \`$reported\`, expected \`$p $version\`" >&2
            exit 1
        fi
    done
done

build -p im-probe
install -m 0755 "$out/im-probe" "$dist/im-probe"
check_static "$dist/im-probe"

# 1.1.0 for arm64 too: static musl, linked by rust-lld (the programs are pure Rust); they
# run here under qemu-aarch64-static (tests/bundle.rs).
arm=aarch64-unknown-linux-musl
rustup target list --installed 2>/dev/null | grep -qx "$arm" || rustup target add "$arm" >&2
arm_linker="CARGO_TARGET_$(echo "${arm//-/_}" | tr a-z A-Z)_LINKER"
export "$arm_linker=${!arm_linker:-rust-lld}"
cargo auditable build --release --target "$arm" -p im-store -p push-service -p im-server \
    --features im-store/v1_1,push-service/v1_1,im-server/v1_1
mkdir -p "$dist/1.1.0/linux-arm64"
for p in "${services[@]}"; do
    dest="$dist/1.1.0/linux-arm64/$p"
    install -m 0755 "$target_dir/$arm/release/$p" "$dest"
    check_static "$dest"
    if command -v qemu-aarch64-static >/dev/null; then
        reported="$(qemu-aarch64-static "$dest" --version)"
        if [ "$reported" != "$p 1.1.0" ]; then
            echo "error: $dest reports \`$reported\`, expected \`$p 1.1.0\`" >&2
            exit 1
        fi
    fi
done

echo "static executables (no NEEDED entries) in $dist:"
(cd "$dist" && for f in 1.0.0/linux-amd64/* 1.1.0/linux-amd64/* im-probe; do
    printf '  %-34s %8s bytes  %s\n' "$f" "$(stat -c %s "$f")" "$("./$f" --version)"
done
for f in 1.1.0/linux-arm64/*; do
    printf '  %-34s %8s bytes  arm64\n' "$f" "$(stat -c %s "$f")"
done)
