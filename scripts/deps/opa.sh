#!/usr/bin/env bash
# Builds the real Open Policy Agent binary the OPA decision-log test runs, from source with the Go
# toolchain, into .cache/opa/bin/opa (inside the repo, ignored by git). Idempotent: does nothing when
# that binary already reports the pinned version. Static build (CGO_ENABLED=0), no system install.
set -euo pipefail
cd "$(dirname "$0")/../.."

OPA_VERSION="v1.22.2"
GOBIN_DIR="$PWD/.cache/opa/bin"
OPA_BIN="$GOBIN_DIR/opa"

installed_version() {
  [ -x "$OPA_BIN" ] || return 0
  "$OPA_BIN" version 2>/dev/null | awk '/^Version:/ { print $2 }'
}

current="$(installed_version)"
if [ "$current" = "${OPA_VERSION#v}" ]; then
  echo "opa deps: $OPA_BIN $OPA_VERSION present"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  echo "opa deps: cannot build opa $OPA_VERSION: the Go toolchain ('go') is not on PATH." >&2
  echo "  Install Go (https://go.dev/dl/), then run scripts/deps/opa.sh again; or place an opa" >&2
  echo "  $OPA_VERSION binary at $OPA_BIN yourself." >&2
  exit 1
fi

if [ -n "$current" ]; then
  echo "opa deps: $OPA_BIN reports $current, want ${OPA_VERSION#v}; rebuilding"
fi
echo "opa deps: building opa $OPA_VERSION with $(go version | awk '{ print $3 }') (first time only, a few minutes)…"
mkdir -p "$GOBIN_DIR"
started=$SECONDS
GOBIN="$GOBIN_DIR" CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -buildvcs=false" \
  go install "github.com/open-policy-agent/opa@$OPA_VERSION"

built="$(installed_version)"
if [ "$built" != "${OPA_VERSION#v}" ]; then
  echo "opa deps: built $OPA_BIN but it reports version '${built:-none}', want ${OPA_VERSION#v}" >&2
  exit 1
fi
echo "opa deps: built $OPA_BIN $OPA_VERSION in $((SECONDS - started))s"
