#!/usr/bin/env bash
# Installs the browser the console tests, screenshots and benchmark drive: Debian's `chromium`
# (/usr/bin/chromium), run headless through playwright-core. Idempotent: does nothing when the
# binary is already there. Only the browser package itself is installed (no recommends).
set -euo pipefail

BROWSER=/usr/bin/chromium

# shellcheck source=lib/apt.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"

if [ -x "$BROWSER" ]; then
  echo "chromium deps: $BROWSER present ($("$BROWSER" --version 2>/dev/null | head -n 1))"
  exit 0
fi

echo "chromium deps: $BROWSER missing; installing Debian package chromium"

apt_prepare chromium "Install Chromium so that $BROWSER runs
  (the console tests start it headless with playwright-core)." chromium
if ! apt_install chromium chromium; then
  echo "chromium deps: the console tests need $BROWSER" >&2
  exit 1
fi

if [ ! -x "$BROWSER" ]; then
  echo "chromium deps: $BROWSER still missing after installing chromium" >&2
  exit 1
fi
echo "chromium deps: installed ($("$BROWSER" --version 2>/dev/null | head -n 1))"
