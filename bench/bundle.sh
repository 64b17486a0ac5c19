#!/usr/bin/env bash
# Benchmark (not a test): export and import of an app version carrying BENCH_MIB MiB of
# incompressible image layers, against `docker save`, `docker load`, `cp` and `sha256sum`
# of the same bytes, all in one run; and the disc forms (an ISO image against xorriso, a
# volume set, importing both, against `cp + sync`). Prints wall time, throughput, peak memory and ratios,
# and checks the targets of the issue:
#   - export at least 5x faster than `docker save`
#   - import verification at least 1 GB/s: `appmodel verify` runs exactly the checks of
#     `appmodel import` (signature, every file's size and sha256, no unlisted or unsafe
#     entry) and writes nothing; `appmodel import` itself adds the durable write into the
#     site store, which no copy can do faster than `cp + sync` of the same bytes: both
#     are printed, with their ratio
#   - peak memory flat as the bundle grows (give two sizes: BENCH_MIB="256 1024")
# A missed target prints `TARGET MISSED` and does NOT fail the run; only a real failure
# (a command failing, bad output) exits non-zero.
#
# Environment:
#   BENCH_MIB     size(s) of the image data in MiB, space separated   (default 1024)
#   BENCH_LAYERS  number of layers (incompressible files) in the image (default 4)
#   BENCH_RUNS    measured runs per operation, after one warm-up run  (default 5)
#   BENCH_TMP     parent of the scratch directory                      (default /var/tmp)
#   BENCH_SKIP_BUILD=1  use target/release/appmodel as it is
#   BENCH_REV=COMMIT    benchmark a committed revision instead of the working tree: its
#                 `git archive` is built in the scratch directory with its own target dir
#                 ($BENCH_TMP/appmodel-bench-target, kept as a cache). Useful while others
#                 have half-done edits in the shared tree.
#
# Page cache cannot be dropped here, so every operation runs once to warm up and the
# numbers are warm-cache numbers. Ratios use the fastest of BENCH_RUNS runs (interference
# from other work on the machine only ever adds time); the median is printed too. The
# benchmark flushes nothing itself; appmodel fsyncs what it writes (tar export, every
# imported blob), docker save / cp do not -- see the `cp + sync` reference row. Before
# every run (untimed) `sync` writes back what earlier steps left dirty, so no operation
# pays for the writeback of the one before it.
# Everything (store, bundles, site states, archives) lives in one scratch directory, so
# the directory export can hard-link from the store.
set -euo pipefail

SIZES=${BENCH_MIB:-1024}
LAYERS=${BENCH_LAYERS:-4}
RUNS=${BENCH_RUNS:-5}
TMP_PARENT=${BENCH_TMP:-/var/tmp}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
IMAGE=bench/big:1

log() { printf '>> %s\n' "$*" >&2; }
die() { printf 'bench: FAILED: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- prerequisites
need_pkgs=()
command -v dockerd >/dev/null 2>&1 || [ -x /usr/sbin/dockerd ] || need_pkgs+=(docker.io)
[ -x /usr/bin/time ] || need_pkgs+=(time)
command -v skopeo >/dev/null 2>&1 || need_pkgs+=(skopeo)
command -v jq >/dev/null 2>&1 || need_pkgs+=(jq)
command -v eatmydata >/dev/null 2>&1 || need_pkgs+=(eatmydata)
command -v openssl >/dev/null 2>&1 || need_pkgs+=(openssl)
command -v xorriso >/dev/null 2>&1 || need_pkgs+=(xorriso)
if [ ${#need_pkgs[@]} -gt 0 ]; then
    log "installing ${need_pkgs[*]}"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

# A client that talks to the daemon: the newer /usr/local/bin/docker or Debian's.
DOCKER=
pick_docker() {
    local c
    for c in /usr/local/bin/docker /usr/bin/docker; do
        if [ -x "$c" ] && "$c" info >/dev/null 2>&1; then DOCKER=$c; return 0; fi
    done
    return 1
}
if ! pick_docker; then
    log "starting dockerd"
    nohup /usr/sbin/dockerd >/tmp/dockerd.log 2>&1 &
    for _ in $(seq 60); do pick_docker && break; sleep 0.5; done
    [ -n "$DOCKER" ] || die "dockerd did not come up in 30 s (see /tmp/dockerd.log)"
fi
dockerd_pid() { pidof dockerd | awk '{print $1}'; }
[ -n "$(dockerd_pid)" ] || die "docker answers but no local dockerd process (remote daemon?)"

# ---------------------------------------------------------------- scratch + cleanup
SHM=
WORK=$(mktemp -d "$TMP_PARENT/appmodel-bench.XXXXXX")
SAMPLER=
cleanup() {
    local rc=$?
    [ -n "$SAMPLER" ] && kill "$SAMPLER" 2>/dev/null
    "$DOCKER" rmi -f "$IMAGE" >/dev/null 2>&1 || true
    rm -rf "$WORK"
    [ -n "${SHM:-}" ] && rm -rf "$SHM"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- build
if [ -n "${BENCH_REV:-}" ]; then
    REV=$(git -C "$ROOT" rev-parse --verify "${BENCH_REV}^{commit}") || die "no commit $BENCH_REV"
    SRC_DESC="commit $REV (clean git archive)"
    mkdir -p "$WORK/src"
    git -C "$ROOT" archive "$REV" | tar -x -C "$WORK/src"
    # git archive stamps files with the commit time; cargo compares mtimes, so an older
    # commit than the cached build would silently reuse the cached binary. Fresh mtimes
    # make cargo rebuild the workspace crates (dependencies stay cached).
    find "$WORK/src" -type f -exec touch {} +
    export CARGO_TARGET_DIR="$TMP_PARENT/appmodel-bench-target"
    log "cargo build --release -p appmodel ($SRC_DESC, target $CARGO_TARGET_DIR)"
    (cd "$WORK/src" && cargo build --release -p appmodel -q) || die "cargo build failed"
    APPMODEL="$CARGO_TARGET_DIR/release/appmodel"
else
    REV=$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)
    if [ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
        SRC_DESC="working tree of $ROOT (HEAD $REV, with uncommitted changes)"
    else
        SRC_DESC="working tree of $ROOT (HEAD $REV, clean)"
    fi
    if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
        log "cargo build --release -p appmodel"
        (cd "$ROOT" && cargo build --release -p appmodel -q) || die "cargo build failed"
    else
        SRC_DESC="$ROOT/target/release/appmodel as found (build skipped; HEAD $REV)"
    fi
    APPMODEL="$ROOT/target/release/appmodel"
fi
[ -x "$APPMODEL" ] || die "no $APPMODEL"

# ---------------------------------------------------------------- measuring
# measure NAME BYTES RSS_SOURCE -- CMD...
#   RSS_SOURCE: `self` (peak RSS of CMD via GNU time) or `dockerd` (the work happens in the
#   daemon; its RSS is sampled every 20 ms and the peak rise over the pre-run value is kept,
#   and the client's own peak RSS is reported next to it).
#   The `prep_NAME` function, if defined, runs (untimed) before every run.
declare -A SEC MED MIBS RSS RSS_NOTE RAW OTHER
CLK_TCK=$(getconf CLK_TCK)
busy_ticks() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9; exit}' /proc/stat; }
# utime+stime+cutime+cstime: dockerd re-execs helpers (docker-untar) for layer work.
proc_ticks() { awk '{print $14+$15+$16+$17}' "/proc/$1/stat" 2>/dev/null || echo 0; }
ORDER=()

now_ns() { date +%s%N; }

sample_dockerd() { # $1 = pid, $2 = file that holds the highest VmRSS (KiB) seen so far
    local pid=$1 out=$2 max=0 k v _
    while :; do # bash builtins only, so sampling barely competes for the 2 cores
        while read -r k v _; do
            if [ "$k" = VmRSS: ]; then
                if [ "$v" -gt "$max" ]; then max=$v; echo "$max" >"$out"; fi
                break
            fi
        done <"/proc/$pid/status"
        sleep 0.02
    done
}

# Interference: the machine is shared (other engineers compile on the same 2 cores), so
# every run also records the CPU seconds the rest of the machine used meanwhile: busy
# time of all CPUs minus the command's own user+sys (and dockerd's, for docker runs).
run_once() { # NAME RSS_SOURCE CMD... ; sets LAST_SEC LAST_RSS_KIB LAST_DRSS_KIB LAST_OTHER
    local name=$1 src=$2; shift 2
    local tf="$WORK/time.out" sf="$WORK/sample.out" t0 t1 spid dpid base b0 b1 d0=0 d1=0
    if declare -F "prep_$name" >/dev/null; then "prep_$name"; fi
    sync
    LAST_DRSS_KIB=
    if [ "$src" = dockerd ]; then
        dpid=$(dockerd_pid)
        base=$(awk '/^VmRSS:/{print $2}' "/proc/$dpid/status")
        echo "$base" >"$sf"
        sample_dockerd "$dpid" "$sf" &
        spid=$!
        SAMPLER=$spid
        d0=$(proc_ticks "$dpid")
    fi
    b0=$(busy_ticks)
    t0=$(now_ns)
    if ! /usr/bin/time -f '%e %M %U %S' -o "$tf" "$@" >"$WORK/cmd.out" 2>"$WORK/cmd.err"; then
        [ -n "${spid:-}" ] && kill "$spid" 2>/dev/null
        SAMPLER=
        cat "$WORK/cmd.out" "$WORK/cmd.err" >&2
        die "$name: $* failed"
    fi
    t1=$(now_ns)
    b1=$(busy_ticks)
    if [ "$src" = dockerd ]; then
        d1=$(proc_ticks "$dpid")
        kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null || true
        SAMPLER=
        LAST_DRSS_KIB=$(( $(cat "$sf") - base ))
        spid=
    fi
    LAST_SEC=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", (b-a)/1e9}')
    LAST_RSS_KIB=$(awk '{print $2}' "$tf" | tail -1)
    LAST_OTHER=$(tail -1 "$tf" | awk -v b="$((b1 - b0))" -v d="$((d1 - d0))" -v hz="$CLK_TCK" \
        '{o = (b - d) / hz - $3 - $4; if (o < 0) o = 0; printf "%.1f", o}')
}

median() { tr ' ' '\n' | sed '/^$/d' | sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }

measure() { # NAME BYTES RSS_SOURCE CMD...
    local name=$1 bytes=$2 src=$3; shift 3
    local secs=() rsss=() drsss=() others=() raw=() i
    log "$name (1 warm-up + $RUNS runs)"
    run_once "$name" "$src" "$@"
    for ((i = 0; i < RUNS; i++)); do
        run_once "$name" "$src" "$@"
        secs+=("$LAST_SEC"); rsss+=("$LAST_RSS_KIB"); drsss+=("${LAST_DRSS_KIB:-0}")
        others+=("$LAST_OTHER"); raw+=("$LAST_SEC/$LAST_OTHER")
    done
    ORDER+=("$name")
    MED[$name]=$(echo "${secs[*]}" | median)
    SEC[$name]=$(printf '%s\n' "${secs[@]}" | sort -g | head -1)
    OTHER[$name]=$(printf '%s\n' "${others[@]}" | sort -g | tail -1)
    RAW[$name]="${raw[*]}"
    MIBS[$name]=$(awk -v b="$bytes" -v s="${SEC[$name]}" 'BEGIN{printf "%.0f", b/1048576/s}')
    local self_mib dk_mib
    self_mib=$(printf '%s\n' "${rsss[@]}" | sort -g | tail -1 | awk '{printf "%.1f", $1/1024}')
    if [ "$src" = dockerd ]; then
        dk_mib=$(printf '%s\n' "${drsss[@]}" | sort -g | tail -1 | awk '{printf "%.1f", $1/1024}')
        RSS[$name]=$dk_mib
        RSS_NOTE[$name]="dockerd +${dk_mib} (client ${self_mib})"
    else
        RSS[$name]=$self_mib
        RSS_NOTE[$name]=$self_mib
    fi
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b > 0) printf "%.2f", a/b; else print "inf" }'; }

declare -A FLAT_RSS   # "size op" -> peak RSS MiB (appmodel ops)
SUMMARY=()
MISSED=0

# ---------------------------------------------------------------- one size
bench_size() {
    local mib=$1 d="$WORK/$1"
    local per=$(( mib / LAYERS )) i
    mkdir -p "$d/ctx"
    ORDER=(); SEC=(); MED=(); MIBS=(); RSS=(); RSS_NOTE=(); RAW=(); OTHER=()

    LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
    log "== $mib MiB: $LAYERS incompressible files of $per MiB -> image $IMAGE ($LAYERS layers)"
    {
        echo "FROM scratch"
        for ((i = 0; i < LAYERS; i++)); do
            head -c "$(( per * 1048576 ))" /dev/urandom >"$d/ctx/data$i"
            echo "COPY data$i /data$i"
        done
    } >"$d/ctx/Dockerfile"
    "$DOCKER" rmi -f "$IMAGE" >/dev/null 2>&1 || true
    # The legacy builder works offline with FROM scratch (no buildx needed).
    local builder=$DOCKER
    [ -x /usr/bin/docker ] && builder=/usr/bin/docker
    DOCKER_BUILDKIT=0 "$builder" build -q -t "$IMAGE" "$d/ctx" >/dev/null ||
        die "docker build of $IMAGE failed"
    rm -rf "$d/ctx"

    # --- docker save
    prep_docker_save() { rm -f "$d/save.tar"; }
    measure docker_save 0 dockerd "$DOCKER" save "$IMAGE" -o "$d/save.tar"
    local tarbytes
    tarbytes=$(stat -c %s "$d/save.tar")
    MIBS[docker_save]=$(awk -v b="$tarbytes" -v s="${SEC[docker_save]}" 'BEGIN{printf "%.0f", b/1048576/s}')
    cp "$d/save.tar" "$d/big.tar"

    # --- appmodel publish (into a fresh store each run)
    cat >"$d/appmodel.yaml" <<EOF
apiVersion: appmodel/v1
app: {name: bench, version: 1.0.0}
components:
  - name: big
    image: {archive: big.tar, tag: "$IMAGE"}
EOF
    prep_publish() { rm -rf "$d/store"; }
    measure publish "$tarbytes" self "$APPMODEL" publish v1 -f "$d/appmodel.yaml" --store "$d/store"

    # Bundles are signed, as every bundle a site accepts by default; the site pins the key.
    rm -f "$d/vendor.key" "$d/vendor.pub"
    "$APPMODEL" key generate -o "$d/vendor" >/dev/null || die "key generate failed"
    local sign=(--sign "$d/vendor.key") trust=(--trust-key "$d/vendor.pub")

    # --- appmodel export: directory (hard links from the store) and tar (copies everything)
    prep_export_dir() { rm -rf "$d/bundle"; }
    measure export_dir 0 self "$APPMODEL" export --format compose --store "$d/store" \
        -o "$d/bundle" --tool "$APPMODEL" "${sign[@]}"
    prep_export_tar() { rm -f "$d/bundle.tar"; }
    measure export_tar 0 self "$APPMODEL" export --format compose --store "$d/store" \
        --archive "$d/bundle.tar" --tool "$APPMODEL" "${sign[@]}"

    # Diagnostic: a directory export onto another filesystem (tmpfs, like a USB stick is
    # another device) cannot hard-link, so it copies and hashes every blob.
    local shm_free
    shm_free=$(df -k --output=avail /dev/shm 2>/dev/null | tail -1 || echo 0)
    if [ "${shm_free:-0}" -gt $(( (mib + 64) * 2048 )) ]; then
        SHM=$(mktemp -d /dev/shm/appmodel-bench.XXXXXX)
        prep_export_dir_copy() { rm -rf "$SHM/bundle"; }
        measure export_dir_copy 0 self "$APPMODEL" export --format compose --store "$d/store" \
            -o "$SHM/bundle" --tool "$APPMODEL" "${sign[@]}"
        rm -rf "$SHM"; SHM=
    fi

    # Bytes a bundle carries = every file listed in bundle.json (+ bundle.json itself).
    local bbytes layer_links
    bbytes=$(jq '[.files[].size] | add' "$d/bundle/bundle.json")
    bbytes=$(( bbytes + $(stat -c %s "$d/bundle/bundle.json") ))
    layer_links=$(find "$d/bundle/blobs" -type f -links +1 | wc -l)
    cmp -s <(tar --occurrence=1 -xOf "$d/bundle.tar" bundle.json) "$d/bundle/bundle.json" ||
        die "directory and tar bundles carry different manifests"
    for n in export_dir export_tar export_dir_copy; do
        [ -n "${SEC[$n]:-}" ] || continue
        MIBS[$n]=$(awk -v b="$bbytes" -v s="${SEC[$n]}" 'BEGIN{printf "%.0f", b/1048576/s}')
    done

    # --- appmodel verify: the import's checks alone, writing nothing
    measure verify_dir "$bbytes" self "$APPMODEL" verify "$d/bundle" --key "$d/vendor.pub" --state-dir "$d/no-site"
    measure verify_tar "$bbytes" self "$APPMODEL" verify "$d/bundle.tar" --key "$d/vendor.pub" --state-dir "$d/no-site"
    [ ! -e "$d/no-site" ] || die "appmodel verify created a state directory"

    # --- appmodel import: full verification into a fresh site state each run
    prep_import_dir() { rm -rf "$d/s1"; }
    measure import_dir "$bbytes" self "$APPMODEL" import "$d/bundle" "${trust[@]}" --state-dir "$d/s1"
    prep_import_tar() { rm -rf "$d/s2"; }
    measure import_tar "$bbytes" self "$APPMODEL" import "$d/bundle.tar" "${trust[@]}" --state-dir "$d/s2"
    # --- discs (issue 15): an ISO image against xorriso on the same directory, a volume set
    # for media a third of the bundle's size, and importing both, against cp + sync
    prep_export_iso() { rm -f "$d/bundle.iso"; }
    measure export_iso "$bbytes" self "$APPMODEL" export --format compose --store "$d/store" \
        --iso "$d/bundle.iso" --tool "$APPMODEL" "${sign[@]}"
    prep_xorriso() { rm -f "$d/x.iso"; }
    # shellcheck disable=SC2016 # $1 $2 are the inner shell's arguments
    measure xorriso "$bbytes" self sh -c 'xorriso -as mkisofs -quiet -R -J -o "$2" "$1" && sync "$2"' \
        sh "$d/bundle" "$d/x.iso"
    rm -f "$d/x.iso"
    local media=$(( bbytes / 3 + 64 * 1048576 ))
    prep_export_volumes() { rm -rf "$d/volumes"; }
    measure export_volumes "$bbytes" self "$APPMODEL" export --format compose --store "$d/store" \
        -o "$d/volumes" --media "$media" --tool "$APPMODEL" "${sign[@]}"
    VOLUMES=$(find "$d/volumes" -mindepth 1 -maxdepth 1 | wc -l)
    prep_import_iso() { rm -rf "$d/s4"; }
    measure import_iso "$bbytes" self "$APPMODEL" import "$d/bundle.iso" "${trust[@]}" --state-dir "$d/s4"
    rm -rf "$d/s4"
    prep_import_volumes() { rm -rf "$d/s5"; }
    measure import_volumes "$bbytes" self "$APPMODEL" import "$d/volumes" "${trust[@]}" --state-dir "$d/s5"
    rm -rf "$d/s5" "$d/volumes" "$d/bundle.iso"
    # Diagnostics (not targets): the same with fsync turned into a no-op (eatmydata), to
    # show what the durable writes cost; docker save / cp do not fsync either.
    prep_export_tar_nosync() { rm -f "$d/bundle2.tar"; }
    measure export_tar_nosync "$bbytes" self eatmydata "$APPMODEL" export --format compose \
        --store "$d/store" --archive "$d/bundle2.tar" --tool "$APPMODEL" "${sign[@]}"
    rm -f "$d/bundle2.tar"
    prep_import_tar_nosync() { rm -rf "$d/s3"; }
    measure import_tar_nosync "$bbytes" self eatmydata "$APPMODEL" import "$d/bundle.tar" "${trust[@]}" --state-dir "$d/s3"
    rm -rf "$d/s3"
    local imported
    imported=$(find "$d/s2/store/blobs/sha256" -type f -printf '%s\n' | awk '{s+=$1} END{print s+0}')
    [ "$imported" -ge $(( mib * 1048576 )) ] || die "import stored only $imported bytes of blobs"

    # --- docker load (image removed first, so every layer is written again)
    prep_docker_load() { "$DOCKER" rmi -f "$IMAGE" >/dev/null 2>&1 || true; }
    measure docker_load "$tarbytes" dockerd "$DOCKER" load -q -i "$d/save.tar"

    # --- references on the same bytes
    prep_cp() { rm -f "$d/copy.tar"; }
    measure cp "$tarbytes" self cp "$d/save.tar" "$d/copy.tar"
    prep_cp_sync() { rm -f "$d/copy.tar"; sync; }
    # shellcheck disable=SC2016 # $1 $2 are the inner shell's arguments
    measure cp_sync "$tarbytes" self sh -c 'cp "$1" "$2" && sync "$2"' sh "$d/save.tar" "$d/copy.tar"
    measure sha256sum "$tarbytes" self sha256sum "$d/save.tar"
    # SHA-256 with SHA-NI (OpenSSL), about what the sha2 crate does here: the hashing ceiling.
    measure openssl_sha256 "$tarbytes" self openssl dgst -sha256 "$d/save.tar"

    # --- report
    local load
    load="before $LOAD_BEFORE, after $(cut -d' ' -f1-3 /proc/loadavg)"
    echo
    echo "## $mib MiB of incompressible layers ($LAYERS layers; docker archive $(awk -v b="$tarbytes" 'BEGIN{printf "%.1f", b/1048576}') MiB, bundle $(awk -v b="$bbytes" 'BEGIN{printf "%.1f", b/1048576}') MiB)"
    echo "warm page cache; 1 warm-up + $RUNS runs; best = fastest run (ratios use it), median also shown;"
    echo "other CPU = CPU seconds used by the rest of the machine during a run (max over runs); load average $load"
    echo
    printf '| %-36s | %7s | %7s | %7s | %-26s | %6s | %s |\n' operation 'best s' 'median' 'MiB/s' 'peak RSS MiB' 'other' 'runs: seconds/other CPU s'
    printf '|%s|%s|%s|%s|%s|%s|%s|\n' -------------------------------------- --------- --------- --------- ---------------------------- -------- ----------
    local label
    for n in "${ORDER[@]}"; do
        case $n in
            docker_save) label='docker save' ;;
            publish) label='appmodel publish' ;;
            export_dir) label='appmodel export (dir)' ;;
            export_tar) label='appmodel export --archive' ;;
            verify_dir) label='appmodel verify DIR' ;;
            verify_tar) label='appmodel verify TAR' ;;
            import_dir) label='appmodel import DIR' ;;
            import_tar) label='appmodel import TAR' ;;
            docker_load) label='docker load' ;;
            cp) label='cp' ;;
            cp_sync) label='cp + sync (fsync)' ;;
            sha256sum) label='sha256sum (coreutils)' ;;
            openssl_sha256) label='openssl dgst -sha256' ;;
            export_dir_copy) label='(diag) export (dir) to tmpfs, copies' ;;
            export_tar_nosync) label='(diag) export --archive, no fsync' ;;
            import_tar_nosync) label='(diag) import TAR, no fsync' ;;
            export_iso) label='appmodel export --iso' ;;
            xorriso) label='xorriso -as mkisofs -R -J + sync' ;;
            export_volumes) label="appmodel export --media (${VOLUMES} vols)" ;;
            import_iso) label='appmodel import ISO' ;;
            import_volumes) label="appmodel import ${VOLUMES} volumes" ;;
            *) label=$n ;;
        esac
        printf '| %-36s | %7s | %7s | %7s | %-26s | %6s | %s |\n' "$label" "${SEC[$n]}" "${MED[$n]}" "${MIBS[$n]}" "${RSS_NOTE[$n]}" "${OTHER[$n]}" "${RAW[$n]}"
    done
    echo
    echo "bundle directory: $layer_links blob files hard-linked from the store"
    local worst
    worst=$(printf '%s\n' "${OTHER[@]}" | sort -g | tail -1)
    if awk -v w="$worst" 'BEGIN{exit !(w >= 0.5)}'; then
        echo "WARNING: other work used up to ${worst} CPU s during a run: medians are disturbed (best-of-$RUNS less so)"
    else
        echo "interference: at most ${worst} CPU s used by other work during any run"
    fi
    echo
    local r_dir r_tar r_load gbs_dir gbs_tar vgbs_dir vgbs_tar gbs_cps r_cps
    vgbs_dir=$(awk -v b="$bbytes" -v s="${SEC[verify_dir]}" 'BEGIN{printf "%.2f", b/1e9/s}')
    vgbs_tar=$(awk -v b="$bbytes" -v s="${SEC[verify_tar]}" 'BEGIN{printf "%.2f", b/1e9/s}')
    gbs_cps=$(awk -v b="$tarbytes" -v s="${SEC[cp_sync]}" 'BEGIN{printf "%.2f", b/1e9/s}')
    r_dir=$(ratio "${SEC[docker_save]}" "${SEC[export_dir]}")
    r_tar=$(ratio "${SEC[docker_save]}" "${SEC[export_tar]}")
    r_load=$(ratio "${SEC[docker_load]}" "${SEC[import_tar]}")
    gbs_dir=$(awk -v b="$bbytes" -v s="${SEC[import_dir]}" 'BEGIN{printf "%.2f", b/1e9/s}')
    gbs_tar=$(awk -v b="$bbytes" -v s="${SEC[import_tar]}" 'BEGIN{printf "%.2f", b/1e9/s}')
    echo "ratios ($mib MiB):"
    echo "  docker save / appmodel export (dir)     = ${r_dir}x   (target >= 5x)"
    echo "  docker save / appmodel export --archive = ${r_tar}x   (target >= 5x)"
    echo "  docker load / appmodel import TAR       = ${r_load}x"
    echo "  appmodel verify DIR (import's checks)   = ${vgbs_dir} GB/s   (target >= 1 GB/s)"
    echo "  appmodel verify TAR (import's checks)   = ${vgbs_tar} GB/s   (target >= 1 GB/s)"
    echo "  appmodel import DIR, checks + durable write = ${gbs_dir} GB/s"
    echo "  appmodel import TAR, checks + durable write = ${gbs_tar} GB/s"
    r_cps=$(awk -v a="$gbs_tar" -v b="$gbs_cps" 'BEGIN{ if (b > 0) printf "%.2f", a/b; else print "inf" }')
    echo "  import TAR / (cp + sync) throughput     = ${r_cps}   (cp + sync = ${gbs_cps} GB/s: the disk's durable-copy ceiling)"
    local gbs_iso gbs_vols
    gbs_iso=$(awk -v b="$bbytes" -v s="${SEC[import_iso]}" 'BEGIN{printf "%.2f", b/1e9/s}')
    gbs_vols=$(awk -v b="$bbytes" -v s="${SEC[import_volumes]}" 'BEGIN{printf "%.2f", b/1e9/s}')
    echo "  xorriso / appmodel export --iso         = $(ratio "${SEC[xorriso]}" "${SEC[export_iso]}")x   (target >= 1x)"
    echo "  (cp + sync) / appmodel export --media    = $(awk -v b="$bbytes" -v s="${SEC[export_volumes]}" -v c="$gbs_cps" 'BEGIN{printf "%.2f", (b/1e9/s)/c}')   (${VOLUMES} volumes)"
    echo "  import ISO / (cp + sync) throughput     = $(awk -v a="$gbs_iso" -v b="$gbs_cps" 'BEGIN{printf "%.2f", a/b}')   (target >= 0.8)"
    echo "  import volumes / (cp + sync) throughput = $(awk -v a="$gbs_vols" -v b="$gbs_cps" 'BEGIN{printf "%.2f", a/b}')   (target >= 0.8)"
    [ -n "${SEC[export_dir_copy]:-}" ] &&
        echo "  diagnostic: docker save / export (dir) onto another filesystem (copies) = $(ratio "${SEC[docker_save]}" "${SEC[export_dir_copy]}")x"
    echo "  diagnostic without fsync (eatmydata): docker save / export --archive = $(ratio "${SEC[docker_save]}" "${SEC[export_tar_nosync]}")x, import TAR = $(awk -v b="$bbytes" -v s="${SEC[import_tar_nosync]}" 'BEGIN{printf "%.2f", b/1e9/s}') GB/s"
    echo "  reference: openssl sha256 = $(awk -v b="$tarbytes" -v s="${SEC[openssl_sha256]}" 'BEGIN{printf "%.2f", b/1e9/s}') GB/s, cp = $(awk -v b="$tarbytes" -v s="${SEC[cp]}" 'BEGIN{printf "%.2f", b/1e9/s}') GB/s, cp + sync = $(awk -v b="$tarbytes" -v s="${SEC[cp_sync]}" 'BEGIN{printf "%.2f", b/1e9/s}') GB/s, sha256sum = $(awk -v b="$tarbytes" -v s="${SEC[sha256sum]}" 'BEGIN{printf "%.2f", b/1e9/s}') GB/s"
    check() { # LABEL OK?
        if awk "BEGIN{exit !($2)}"; then
            SUMMARY+=("target met    ($mib MiB): $1")
        else
            SUMMARY+=("TARGET MISSED ($mib MiB): $1"); MISSED=$((MISSED + 1))
        fi
    }
    check "export (dir) ${r_dir}x faster than docker save (>= 5x)" "$r_dir >= 5"
    check "export --archive ${r_tar}x faster than docker save (>= 5x)" "$r_tar >= 5"
    check "import verification (appmodel verify DIR) at ${vgbs_dir} GB/s (>= 1 GB/s)" "$vgbs_dir >= 1"
    check "import verification (appmodel verify TAR) at ${vgbs_tar} GB/s (>= 1 GB/s)" "$vgbs_tar >= 1"
    SUMMARY+=("info          ($mib MiB): import DIR / TAR with the durable write: ${gbs_dir} / ${gbs_tar} GB/s; cp + sync ${gbs_cps} GB/s")
    local r_iso
    r_iso=$(ratio "${SEC[xorriso]}" "${SEC[export_iso]}")
    check "export --iso ${r_iso}x the speed of xorriso -as mkisofs + sync (>= 1x)" "$r_iso >= 1"
    check "import ISO at $(awk -v a="$gbs_iso" -v b="$gbs_cps" 'BEGIN{printf "%.2f", a/b}') of cp + sync (>= 0.8)" "$gbs_iso >= 0.8 * $gbs_cps"
    check "import of ${VOLUMES} volumes at $(awk -v a="$gbs_vols" -v b="$gbs_cps" 'BEGIN{printf "%.2f", a/b}') of cp + sync (>= 0.8)" "$gbs_vols >= 0.8 * $gbs_cps"
    for n in export_iso export_volumes import_iso import_volumes; do FLAT_RSS["$mib $n"]=${RSS[$n]}; done
    for n in publish export_dir export_tar verify_dir verify_tar import_dir import_tar; do FLAT_RSS["$mib $n"]=${RSS[$n]}; done

    rm -rf "$d"
}

log "appmodel $("$APPMODEL" --version 2>/dev/null || echo '?'); docker client $DOCKER; scratch $WORK"
echo "# appmodel bundle benchmark"
echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ); host: $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); docker $("$DOCKER" version --format '{{.Server.Version}}')"
echo "appmodel: $SRC_DESC"
echo "scratch: $WORK ($(df -T "$WORK" | awk 'NR==2{print $2}'))"
for s in $SIZES; do bench_size "$s"; done

# ---------------------------------------------------------------- memory flatness
echo
# shellcheck disable=SC2086 # word splitting of the size list is intended
set -- $SIZES
if [ $# -ge 2 ]; then
    small=$(printf '%s\n' "$@" | sort -n | head -1)
    big=$(printf '%s\n' "$@" | sort -n | tail -1)
    echo "peak RSS (MiB), ${small} MiB -> ${big} MiB:"
    for n in publish export_dir export_tar verify_dir verify_tar import_dir import_tar \
        export_iso export_volumes import_iso import_volumes; do
        a=${FLAT_RSS["$small $n"]}; b=${FLAT_RSS["$big $n"]}
        echo "  $n: $a -> $b"
        # Flat: grows by less than 8 MiB or 10 % while the data grows $big/$small-fold.
        if awk -v a="$a" -v b="$b" 'BEGIN{exit !(b - a < 8 || b < a * 1.10)}'; then
            SUMMARY+=("target met    : peak memory of $n flat ($a -> $b MiB)")
        else
            SUMMARY+=("TARGET MISSED : peak memory of $n grows ($a -> $b MiB)"); MISSED=$((MISSED + 1))
        fi
    done
else
    echo "peak memory flatness: run with two sizes, e.g. BENCH_MIB=\"256 1024\""
fi
echo
printf '%s\n' "${SUMMARY[@]}"
echo "($MISSED target(s) missed; a missed target is not a failure of this script)"
