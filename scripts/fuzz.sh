#!/usr/bin/env bash
# Coverage-guided fuzzing of appmodel's parsers of untrusted input (fuzz/, docs/fuzzing.md).
#
#   bash scripts/fuzz.sh [SECONDS]      # default 45 seconds per target
#
# Builds the fuzz crate once (stable Rust, libFuzzer, no sanitizer), then for each target:
# replays fuzz/regressions/TARGET/* (past findings must stay fixed), and fuzzes for SECONDS
# seconds from the committed seed corpus fuzz/corpus/TARGET (read only: new inputs go to a
# temporary directory). Out-of-memory (-rss_limit_mb) and hangs (-timeout) count as
# findings. Exits non-zero if any target crashed, printing where libFuzzer saved the input.
# Targets run one after another: a fuzzer keeps one core busy.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

seconds="${1:-45}"
case "$seconds" in
  '' | *[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;;
esac
targets=(model site_config bundle_manifest signature bundle_tar bundle_iso licence)
# Stable Rust: no sanitizer (the code under test has no unsafe), and 16 codegen units
# instead of cargo-fuzz's 1: a build in minutes for somewhat slower fuzzing.
build_flags=(--sanitizer none --codegen-units 16)
libfuzzer_flags=(-rss_limit_mb=2048 -timeout=10)
# The syntax each target's input is in, as a libFuzzer dictionary (fuzz/dict/).
dict_of() {
  case "$1" in
    model | site_config) echo yaml ;;
    bundle_manifest) echo json ;;
    signature) echo minisign ;;
    bundle_tar) echo tar ;;
    bundle_iso) echo iso ;;
    licence) echo licence ;;
  esac
}

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: cargo-fuzz is missing: run scripts/setup.sh (or \`cargo install cargo-fuzz --locked\`)" >&2
  exit 2
fi

# Scratch space on tmpfs: the targets write their input to a file on each execution.
shm=/dev/shm
[ -d "$shm" ] && [ -w "$shm" ] || shm="${TMPDIR:-/tmp}"
work="$(mktemp -d "$shm/appmodel-fuzz.XXXXXX")"
trap 'rm -rf "$work"' EXIT
export TMPDIR="$work"

start=$(date +%s)
echo "fuzz: building the fuzz targets (cargo fuzz build ${build_flags[*]})"
(cd fuzz && cargo fuzz build "${build_flags[@]}")
echo "fuzz: built in $(( $(date +%s) - start )) s"

failed=()
for t in "${targets[@]}"; do
  log="$work/$t.log"

  # Past findings: libFuzzer runs files given as arguments once each.
  shopt -s nullglob
  regressions=(fuzz/regressions/"$t"/*)
  shopt -u nullglob
  if [ ${#regressions[@]} -gt 0 ]; then
    if (cd fuzz && cargo fuzz run "${build_flags[@]}" "$t" "${regressions[@]/#fuzz\//$root/fuzz/}" -- \
          "${libfuzzer_flags[@]}") >"$log" 2>&1; then
      echo "fuzz: $t: ${#regressions[@]} regression inputs pass"
    else
      echo "fuzz: $t: a regression input fails again (fuzz/regressions/$t/):" >&2
      grep -E '^Running: |panicked at|ERROR: libFuzzer|SUMMARY' "$log" | tail -n 20 >&2 || tail -n 40 "$log" >&2
      failed+=("$t (regression)")
    fi
  fi

  corpus="$work/corpus-$t"
  mkdir -p "$corpus"
  t0=$(date +%s)
  if (cd fuzz && cargo fuzz run "${build_flags[@]}" "$t" "$corpus" "corpus/$t" -- \
        "${libfuzzer_flags[@]}" -dict="$root/fuzz/dict/$(dict_of "$t").dict" \
        -max_total_time="$seconds" -print_final_stats=1) >"$log" 2>&1; then
    crashes="0 crashes"
  else
    crashes="CRASHED"
    failed+=("$t")
  fi
  elapsed=$(( $(date +%s) - t0 ))
  done_line="$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 || true)"
  [ -n "$done_line" ] || done_line="$(grep -E '^#[0-9]+[[:space:]]' "$log" | tail -n 1 || true)"
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
  [ -n "$execs" ] || execs="$(sed -E -n 's/^#([0-9]+).*/\1/p' <<<"$done_line")"
  cov="$(sed -E -n 's/.* cov: ([0-9]+).*/\1/p' <<<"$done_line")"
  ft="$(sed -E -n 's/.* ft: ([0-9]+).*/\1/p' <<<"$done_line")"
  printf 'fuzz: %-16s %4s s  %10s executions  cov %-6s ft %-7s %s\n' \
    "$t" "$elapsed" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$crashes"
  if [ "$crashes" != "0 crashes" ]; then
    grep -E 'panicked at|ERROR: libFuzzer|SUMMARY|out-of-memory|timeout' "$log" | head -n 10 >&2 || true
    grep -E 'Test unit written to|artifact_prefix' "$log" | tail -n 2 >&2 || tail -n 40 "$log" >&2
    echo "fuzz: reproduce with: (cd fuzz && cargo fuzz run ${build_flags[*]} $t ARTIFACT)" >&2
  fi
done

echo "fuzz: ${#targets[@]} targets, $seconds s each, $(( $(date +%s) - start )) s in all (build included)"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: findings in: ${failed[*]} (inputs under fuzz/artifacts/)" >&2
  exit 1
fi
