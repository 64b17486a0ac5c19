#!/usr/bin/env bash
# The test suite: installs and starts what the tests need (scripts/setup.sh), builds the
# sample's programs and the static appmodel that bundles ship, then runs every test of the
# workspace against the real engines. Under CI=true no test may skip for a missing engine.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# End-to-end tests publish the sample's real programs: build them first.
bash samples/im-stack/build.sh
# Bundles ship a static appmodel; containers run it as their health probe.
bash scripts/build-static.sh
# ... and for arm64, which the tests run under qemu-aarch64-static.
APPMODEL_TARGET=aarch64-unknown-linux-musl bash scripts/build-static.sh
# The crash-point tests on the systemd site host run a static build with crash points.
bash scripts/build-crash-tool.sh
# Every skipped test (a missing engine outside CI) is a line in this log, reported at the end.
export APPMODEL_SKIP_LOG="${APPMODEL_SKIP_LOG:-$(mktemp -t appmodel-skips.XXXXXX)}"
: > "$APPMODEL_SKIP_LOG"
report_skips() {
    local n
    n=$(wc -l < "$APPMODEL_SKIP_LOG")
    if [ "$n" -eq 0 ]; then
        echo "test.sh: no test was skipped"
    else
        echo "test.sh: $n test(s) SKIPPED for a missing engine or tool:"
        sed 's/^/  /' "$APPMODEL_SKIP_LOG"
    fi
}
trap report_skips EXIT
cargo test --workspace --locked --no-fail-fast
# Compose v2 answers here, so the run above used it (appmodel prefers v2); the compose
# scenarios, the licence gate's among them, run once more under Compose v1, and the
# compose scenarios a third time on Podman (podman-compose, no Docker daemon in the loop).
APPMODEL_COMPOSE=v1 cargo test --locked --no-fail-fast --test compose --test licence
APPMODEL_COMPOSE=podman cargo test --locked --no-fail-fast --test compose
