#!/usr/bin/env bash
# Upgrade check with the executables from build.sh (run it first), on loopback:
#  1. a 1.0.0 stack takes 100 messages (im-probe records what was acknowledged);
#  2. it is stopped with SIGTERM and 1.1.0 starts on the same data: im-store migrates
#     format 1 to 2, im-probe verifies every message, more are written, read receipts work;
#  3. 1.0.0 im-store refuses the migrated data with exit code 3.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dist="$here/dist"
work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
store_port=$(free_port)
push_port=$(free_port)
server_port=$(free_port)
server="http://127.0.0.1:$server_port"
secret=upgrade-check

fail() {
    echo "upgrade check FAILED: $*" >&2
    for f in "$work"/*.log; do echo "--- $f" >&2; tail -20 "$f" >&2; done
    exit 1
}

start_stack() {
    local v=$1 bin="$dist/$1/linux-amd64"
    pids=()
    STORE_DATA_DIR="$work/store" STORE_LISTEN="127.0.0.1:$store_port" \
        "$bin/im-store" >>"$work/im-store-$v.log" 2>&1 &
    pids+=($!)
    PUSH_DATA_DIR="$work/push" PUSH_LISTEN="127.0.0.1:$push_port" \
        "$bin/push-service" >>"$work/push-service-$v.log" 2>&1 &
    pids+=($!)
    IM_LISTEN="127.0.0.1:$server_port" IM_DOMAIN=upgrade.test IM_ADMIN_SECRET="$secret" \
        IM_STORE_URL="http://127.0.0.1:$store_port" IM_PUSH_URL="http://127.0.0.1:$push_port" \
        "$bin/im-server" >>"$work/im-server-$v.log" 2>&1 &
    pids+=($!)
}

stop_stack() {
    for pid in "${pids[@]}"; do kill -TERM "$pid"; done
    for pid in "${pids[@]}"; do
        wait "$pid" || fail "process $pid exited with $? after SIGTERM"
    done
    pids=()
}

probe() {
    "$dist/im-probe" --server "$server" --admin-secret "$secret" --state "$work/probe.jsonl" --wait-ready 15 "$@"
}

echo "== 1.0.0"
start_stack 1.0.0
probe write 100 || fail "writing with 1.0.0"
curl -fsS "$server/version" | grep -q '"version":"1.0.0"' || fail "1.0.0 does not report its version"
stop_stack
grep -qx 1 "$work/store/FORMAT" || fail "1.0.0 did not write format 1"

echo "== 1.1.0 on the 1.0.0 data"
start_stack 1.1.0
probe verify || fail "messages lost in the upgrade"
grep "migrated data from format 1 to format 2" "$work/im-store-1.1.0.log" || fail "no migration logged"
probe write 20 || fail "writing with 1.1.0"
probe verify || fail "verify after writing with 1.1.0"
curl -fsS "$server/version" | grep -q '"version":"1.1.0"' || fail "1.1.0 does not report its version"
curl -fsS -X POST -H 'Content-Type: application/json' -d '{"user":"probe-b","offset":119}' \
    "$server/conversations/probe-a/probe-b/read" >/dev/null || fail "marking as read"
curl -fsS "$server/conversations/probe-a/probe-b?from=119" | grep -q '"receipts":{"probe-b":119}' \
    || fail "history without the receipt"
stop_stack
grep -qx 2 "$work/store/FORMAT" || fail "1.1.0 did not leave format 2"

echo "== 1.0.0 im-store on the 1.1.0 data"
set +e
STORE_DATA_DIR="$work/store" STORE_LISTEN="127.0.0.1:$store_port" "$dist/1.0.0/linux-amd64/im-store" \
    >/dev/null 2>"$work/refusal.err"
code=$?
set -e
cat "$work/refusal.err"
[ "$code" = 3 ] || fail "1.0.0 im-store exited with $code on format 2 data, expected 3"

echo "upgrade check passed"
