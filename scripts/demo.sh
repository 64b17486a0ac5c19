#!/usr/bin/env bash
# The main job on the bundled sample, end to end:
#   vendor: build the IM stack's static programs, validate and graph its models, publish
#           1.0.0 and 1.1.0, export signed compose bundles (1.0.0 as an ISO disc image,
#           1.1.0 as a set of volumes too, the others as tar files); 1.1.0 is for amd64
#           and arm64, and its bundles carry an appmodel for each (the arm64 one checks
#           a volume under qemu);
#   site:   trust the vendor key, import, write the site configuration, install 1.0.0,
#           write messages, import 1.1.0's volumes out of order, upgrade to it, verify,
#           roll back, verify;
#   licence: 1.2.0 takes its user limit from a licence: upgrade (a 30-day trial of the
#           standard plan), request the site code, the vendor issues a `pro` licence for
#           it, activate it (im-server now allows 1000 users), status; uninstall.
# The site part needs a Docker engine (scripts/setup.sh starts one) and host port 8080.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

echo "== building the sample programs (static executables, versions 1.0.0 and 1.1.0)"
bash samples/im-stack/build.sh
echo "== building appmodel (static: it ships inside every bundle)"
appmodel="$(bash scripts/build-static.sh)"   # an absolute path
appmodel_arm64="$(APPMODEL_TARGET=aarch64-unknown-linux-musl bash scripts/build-static.sh)"
probe="$PWD/samples/im-stack/dist/im-probe"
work=$(mktemp -d)
state="$work/site-state"
cleanup() {
  "$appmodel" uninstall --state-dir "$state" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

echo; echo "######## vendor side ########"
for v in 1.0.0 1.1.0 1.2.0; do
  echo "== appmodel validate -f samples/im-stack/versions/$v/appmodel.yaml"
  "$appmodel" validate -f "samples/im-stack/versions/$v/appmodel.yaml"
done
echo "== appmodel graph"
"$appmodel" graph -f samples/im-stack/versions/1.1.0/appmodel.yaml
store="$work/store"
for v in 1.0 1.1 1.2; do
  echo "== appmodel publish v$v"
  "$appmodel" publish "v$v" -f "samples/im-stack/versions/$v.0/appmodel.yaml" --store "$store"
done
"$appmodel" versions --store "$store"
"$appmodel" diff 1.0 1.1 --store "$store"
echo "== appmodel key generate; appmodel export --format compose --sign"
"$appmodel" key generate -o "$work/vendor" --comment "Example Messaging Ltd." >/dev/null
# 1.1.0 is for linux/amd64 and linux/arm64: its bundles carry the arm64 appmodel too.
arm=(--tool-for "linux/arm64=$appmodel_arm64")
for v in 1.0.0 1.1.0 1.2.0; do
  tools=(); [ "$v" = 1.1.0 ] && tools=("${arm[@]}")
  "$appmodel" export --format compose --version "$v" --archive "$work/im-stack-$v.tar" \
    --sign "$work/vendor.key" --store "$store" "${tools[@]}"
  # What the vendor runs on the burnt disc or copied stick before it travels.
  "$appmodel" verify "$work/im-stack-$v.tar" --key "$work/vendor.pub"
done
echo "== appmodel export --iso: 1.0.0 as a disc image (ISO 9660, Rock Ridge, Joliet)"
"$appmodel" export --format compose --version 1.0.0 --iso "$work/im-stack-1.0.0.iso" \
  --sign "$work/vendor.key" --store "$store"
"$appmodel" verify "$work/im-stack-1.0.0.iso" --key "$work/vendor.pub"
echo "== appmodel export --media: 1.1.0 as a set of volumes for small media (each verifies alone)"
# Media just large enough for what every volume carries (both appmodels, the manifests)
# and about 3.5 MiB of the images (both platforms'): three volumes.
media="$(( ($(stat -c %s "$appmodel") + $(stat -c %s "$appmodel_arm64")) / 1024 + 3600 ))K"
"$appmodel" export --format compose --version 1.1.0 -o "$work/volumes-1.1.0" --media "$media" \
  --sign "$work/vendor.key" --store "$store" "${arm[@]}"
"$appmodel" verify "$work/volumes-1.1.0/vol02" --key "$work/vendor.pub"
echo "== an arm64 site checks a volume with the arm64 appmodel it carries (under qemu)"
qemu-aarch64-static "$work/volumes-1.1.0/vol02/appmodel-linux-arm64" verify \
  "$work/volumes-1.1.0/vol02" --key "$work/vendor.pub"

echo; echo "######## site side (no network needed from here on) ########"
disc="$work/disc"; mkdir -p "$disc"
# bsdtar stands in for mounting the disc (this machine's kernel has no iso9660 driver).
bsdtar -xf "$work/im-stack-1.0.0.iso" -C "$disc" appmodel appmodel.yaml README.txt
site_tool="$disc/appmodel"
"$site_tool" trust add "$work/vendor.pub" --state-dir "$state"
"$site_tool" import "$work/im-stack-1.0.0.iso" --state-dir "$state"   # the image, as a file
"$site_tool" config init -f "$disc/appmodel.yaml" -o "$work/site-config.yaml"
sed -i 's/^  domain:$/  domain: chat.plant.example/' "$work/site-config.yaml"
"$site_tool" config check -f "$disc/appmodel.yaml" "$work/site-config.yaml"

if ! docker info >/dev/null 2>&1; then
  echo "no Docker engine: stopping before install"; exit 0
fi
"$site_tool" install --config "$work/site-config.yaml" --state-dir "$state"
"$site_tool" status --state-dir "$state"
secret=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['admin_secret'])" "$state/deploy/im-stack/secrets.json")
"$probe" --server http://127.0.0.1:8080 --admin-secret "$secret" --state "$work/acked.json" --wait-ready 30 write 100

# 1.1.0 arrives as volumes, read in any order; each import says what is still missing.
vols=($(ls "$work/volumes-1.1.0"))
for v in $(printf '%s\n' "${vols[@]:1}" | sort -r); do   # the last first, vol01 at the end
  "$site_tool" import "$work/volumes-1.1.0/$v" --state-dir "$state" || echo "   (kept; waiting for the rest)"
done
"$site_tool" import "$work/volumes-1.1.0/${vols[0]}" --state-dir "$state"
"$site_tool" preflight --state-dir "$state"          # the host against 1.1.0's requirements
"$site_tool" upgrade --state-dir "$state"
"$probe" --server http://127.0.0.1:8080 --admin-secret "$secret" --state "$work/acked.json" verify
"$site_tool" rollback --state-dir "$state"
"$probe" --server http://127.0.0.1:8080 --admin-secret "$secret" --state "$work/acked.json" --wait-ready 30 verify
"$site_tool" history --state-dir "$state"

echo; echo "######## licence (1.2.0: plans standard and pro, a 30-day trial) ########"
"$site_tool" import "$work/im-stack-1.2.0.tar" --state-dir "$state"
"$site_tool" upgrade --state-dir "$state"
"$site_tool" license status --state-dir "$state"
"$site_tool" license request -o "$work/site.req" --state-dir "$state"
echo "== vendor: appmodel license issue --request site.req --plan pro (the sample's demo key)"
"$appmodel" license issue --request "$work/site.req" --plan pro --expires "$(date -u -d "+1 year" +%F)" \
  --customer "ACME Energy" --key samples/im-stack/licensing/licensing.key --store "$store" \
  -o "$work/site.lic"
"$site_tool" license activate "$work/site.lic" --state-dir "$state"
"$site_tool" license status --state-dir "$state"
server=$(docker ps -q --filter label=com.docker.compose.project=im-stack --filter label=com.docker.compose.service=im-server)
echo "im-server's environment: $(docker inspect --format '{{range .Config.Env}}{{println .}}{{end}}' "$server" | grep IM_MAX_USERS)"
"$probe" --server http://127.0.0.1:8080 --admin-secret "$secret" --state "$work/acked.json" --wait-ready 30 verify
echo "== done"
