#!/usr/bin/env bash
# The test suite: installs what the tests need (scripts/setup.sh), then runs every test of
# the workspace against real engines. Under CI=true no test may skip for a missing engine.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# End-to-end tests publish the sample's real programs: build them first.
bash samples/im-stack/build.sh
cargo test --workspace --locked --no-fail-fast
