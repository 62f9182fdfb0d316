#!/usr/bin/env bash
# Installs the browser the console tests, screenshots and benchmark drive: Debian's `chromium`
# (/usr/bin/chromium), run headless through playwright-core. Idempotent: does nothing when the
# binary is already there. Only the browser package itself is installed (no recommends).
set -euo pipefail

BROWSER=/usr/bin/chromium

have() { command -v "$1" >/dev/null 2>&1; }

if [ -x "$BROWSER" ]; then
  echo "chromium deps: $BROWSER present ($("$BROWSER" --version 2>/dev/null | head -n 1))"
  exit 0
fi

echo "chromium deps: $BROWSER missing; installing Debian package chromium"

if ! have apt-get; then
  echo "chromium deps: cannot install: apt-get not found. Install Chromium so that $BROWSER runs" >&2
  echo "  (the console tests start it headless with playwright-core)." >&2
  exit 1
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if have sudo && sudo -n true 2>/dev/null; then
    SUDO=(sudo -n)
  else
    echo "chromium deps: cannot install: not root and no password-less sudo. As root, run:" >&2
    echo "  apt-get update && apt-get install -y --no-install-recommends chromium" >&2
    exit 1
  fi
fi

export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get -q -o DPkg::Lock::Timeout=600 update
if ! "${SUDO[@]}" apt-get -q -o DPkg::Lock::Timeout=600 install -y --no-install-recommends chromium; then
  echo "chromium deps: apt-get install chromium failed (see above); the console tests need $BROWSER" >&2
  exit 1
fi

if [ ! -x "$BROWSER" ]; then
  echo "chromium deps: $BROWSER still missing after installing chromium" >&2
  exit 1
fi
echo "chromium deps: installed ($("$BROWSER" --version 2>/dev/null | head -n 1))"
