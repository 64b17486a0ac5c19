#!/usr/bin/env bash
# Installs the system packages the tests and the demo need and starts the services they use.
# Idempotent: skips what is already there. Needs root (or sudo) for apt-get.
set -euo pipefail

need=()
command -v readelf >/dev/null || need+=(binutils)
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v skopeo >/dev/null || need+=(skopeo)
command -v htpasswd >/dev/null || need+=(apache2-utils)
command -v minisign >/dev/null || need+=(minisign)

if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
echo "setup: system packages present"
