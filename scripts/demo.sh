#!/usr/bin/env bash
# The main job on the bundled sample: build the IM stack's static programs, check both
# versions of its app model, show the dependency graph, write and check a site config, and
# publish both versions into a fresh store (no network needed).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

echo "== building the sample programs (static executables, versions 1.0.0 and 1.1.0)"
bash samples/im-stack/build.sh

echo "== building appmodel"
cargo build --release --locked -p appmodel
appmodel=target/release/appmodel
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for v in 1.0.0 1.1.0; do
  model=samples/im-stack/versions/$v/appmodel.yaml
  echo "== appmodel validate -f $model"
  $appmodel validate -f "$model"
done
model=samples/im-stack/versions/1.1.0/appmodel.yaml
echo "== appmodel graph -f $model"
$appmodel graph -f "$model"

echo "== appmodel config init / check"
$appmodel config init -f "$model" -o "$work/site-config.yaml"
sed -i 's/^  domain:$/  domain: chat.plant.example/' "$work/site-config.yaml"
$appmodel config check -f "$model" "$work/site-config.yaml"

store="$work/store"
for v in 1.0 1.1; do
  echo "== appmodel publish v$v"
  $appmodel publish "v$v" -f "samples/im-stack/versions/$v.0/appmodel.yaml" --store "$store"
done
echo "== appmodel versions / show / diff"
$appmodel versions --store "$store"
$appmodel show 1.1 --store "$store"
$appmodel diff 1.0 1.1 --store "$store"
echo "== done"
