#!/usr/bin/env bash
# Browser tests drive Debian's Chromium (no browser download); install it if missing.
set -euo pipefail
if ! command -v chromium >/dev/null 2>&1; then
  echo "installing Chromium (Debian package)..."
  ${SUDO:-} apt-get update -qq && DEBIAN_FRONTEND=noninteractive ${SUDO:-} apt-get install -y -qq chromium >/dev/null
fi
