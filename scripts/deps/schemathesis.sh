#!/usr/bin/env bash
# Installs schemathesis (schema-driven API fuzzing, from PyPI) into .cache/venv for
# test/api/fuzz.test.ts. Idempotent: does nothing when the pinned version is already there.
set -euo pipefail
cd "$(dirname "$0")/../.."

VERSION="${SCHEMATHESIS_VERSION:-4.32.5}"
VENV=.cache/venv
BIN="$VENV/bin/schemathesis"

if [ -x "$BIN" ] && "$VENV/bin/python" -m pip show schemathesis 2>/dev/null | grep -qx "Version: $VERSION"; then
  echo "schemathesis deps: schemathesis $VERSION present in $VENV"
  exit 0
fi

PYTHON="${PYTHON:-}"
if [ -z "$PYTHON" ]; then
  # Only interpreters that actually run count (pyenv shims exist for versions not selected).
  for candidate in python3 python3.12 python3.11 python3.10; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys, venv; sys.exit(0 if sys.version_info >= (3, 9) else 1)' >/dev/null 2>&1; then
      PYTHON="$candidate"
      break
    fi
  done
fi
if [ -z "$PYTHON" ]; then
  echo "schemathesis deps: cannot install: no working python3 >= 3.9 with the venv module. Install it (Debian: python3 python3-venv) or set PYTHON." >&2
  exit 1
fi
if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else 1)'; then
  echo "schemathesis deps: cannot install: $PYTHON is older than 3.9." >&2
  exit 1
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "schemathesis deps: creating $VENV with $PYTHON"
  if ! "$PYTHON" -m venv "$VENV"; then
    echo "schemathesis deps: cannot create a virtualenv: install the venv module (Debian: python3-venv)." >&2
    exit 1
  fi
fi

echo "schemathesis deps: installing schemathesis $VERSION from PyPI into $VENV"
if ! "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "schemathesis==$VERSION"; then
  echo "schemathesis deps: pip could not install schemathesis==$VERSION (is PyPI reachable? a proxy may need PIP_INDEX_URL)." >&2
  exit 1
fi
"$BIN" --version
