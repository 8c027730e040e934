#!/usr/bin/env bash
# System packages the test suite needs: Debian's Chromium (browser tests), xmlsec (SAML),
# docker-compose (to validate docker-compose.yml; no Docker engine is used), and node with npm
# (the openid-client relying party in tests/oidc/node).
set -euo pipefail
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v xmlsec1 >/dev/null || need+=(xmlsec1)
dpkg -s libxmlsec1-dev >/dev/null 2>&1 || need+=(libxmlsec1-dev pkg-config)
command -v docker-compose >/dev/null || need+=(docker-compose)
command -v npm >/dev/null || need+=(nodejs npm)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "Missing system packages: ${need[*]}. Install them (Debian: apt-get install ${need[*]}) and run again." >&2
  exit 1
fi
echo "Installing system packages: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
