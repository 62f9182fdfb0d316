# Sourced by the scripts/deps installers (after `set -euo pipefail`): installs Debian packages with
# apt-get, as root or through password-less sudo, waiting for another apt/dpkg run to release its
# lock rather than failing. Defines `have`, `apt_prepare` and `apt_install`.

# Seconds apt-get waits for a held dpkg lock.
APT_LOCK_TIMEOUT=600

have() { command -v "$1" >/dev/null 2>&1; }

# apt_prepare LABEL HINT PACKAGE...: exits 1 with what to do by hand when apt-get is missing (HINT)
# or when neither root nor password-less sudo is available; otherwise sets SUDO for apt_install.
apt_prepare() {
  local label="$1" hint="$2"
  shift 2
  if ! have apt-get; then
    echo "$label deps: cannot install: apt-get not found. $hint" >&2
    exit 1
  fi
  SUDO=()
  if [ "$(id -u)" -ne 0 ]; then
    if have sudo && sudo -n true 2>/dev/null; then
      SUDO=(sudo -n)
    else
      echo "$label deps: cannot install: not root and no password-less sudo. As root, run:" >&2
      echo "  apt-get update && apt-get install -y --no-install-recommends $*" >&2
      exit 1
    fi
  fi
  export DEBIAN_FRONTEND=noninteractive
}

# apt_install LABEL PACKAGE...: installs the packages without recommends. The package lists are
# refreshed first when one has no install candidate, and once more when the install fails (stale
# lists answer with 404s for superseded versions). Returns non-zero when the install still fails.
apt_install() {
  local label="$1"
  shift
  local updated=0 pkg candidate
  for pkg in "$@"; do
    candidate="$(apt-cache policy "$pkg" 2>/dev/null | awk '/Candidate:/ { print $2 }')"
    if [ -z "$candidate" ] || [ "$candidate" = "(none)" ]; then
      _apt_update "$label" || return 1
      updated=1
      break
    fi
  done
  if _apt_get_install "$@"; then return 0; fi
  if [ "$updated" -eq 0 ]; then
    _apt_update "$label" && _apt_get_install "$@" && return 0
  fi
  echo "$label deps: apt-get install $* failed (see above)" >&2
  return 1
}

_apt_update() {
  echo "$1 deps: apt-get update"
  "${SUDO[@]}" apt-get -q -o DPkg::Lock::Timeout="$APT_LOCK_TIMEOUT" update
}

_apt_get_install() {
  "${SUDO[@]}" apt-get -q -o DPkg::Lock::Timeout="$APT_LOCK_TIMEOUT" install -y --no-install-recommends "$@"
}
