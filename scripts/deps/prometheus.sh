#!/usr/bin/env bash
# Installs the real Prometheus tools the alert and deployment tests run: promtool and prometheus
# (Debian `prometheus`), alertmanager and amtool (Debian `prometheus-alertmanager`, whose daemon is
# /usr/bin/prometheus-alertmanager) and docker-compose (Debian `docker-compose`, used only to
# validate docker-compose.yml; no Docker engine is needed). Idempotent: does nothing when every
# tool is already on PATH. Never starts the Debian services.
set -euo pipefail

PACKAGES=(prometheus prometheus-alertmanager docker-compose)

have() { command -v "$1" >/dev/null 2>&1; }

missing=()
have promtool || missing+=(promtool)
have prometheus || missing+=(prometheus)
have alertmanager || have prometheus-alertmanager || missing+=(alertmanager)
have amtool || missing+=(amtool)
have docker-compose || missing+=(docker-compose)

if [ "${#missing[@]}" -eq 0 ]; then
  echo "prometheus deps: promtool, prometheus, alertmanager, amtool, docker-compose present"
  exit 0
fi

echo "prometheus deps: missing ${missing[*]}; installing Debian packages ${PACKAGES[*]}"

if ! have apt-get; then
  echo "prometheus deps: cannot install: apt-get not found. Install ${PACKAGES[*]} (or the upstream" >&2
  echo "  prometheus, promtool, alertmanager, amtool and docker-compose binaries) and put them on PATH." >&2
  exit 1
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if have sudo && sudo -n true 2>/dev/null; then
    SUDO=(sudo -n)
  else
    echo "prometheus deps: cannot install: not root and no password-less sudo. As root, run:" >&2
    echo "  apt-get update && apt-get install -y --no-install-recommends ${PACKAGES[*]}" >&2
    exit 1
  fi
fi

export DEBIAN_FRONTEND=noninteractive
APT_OPTS=(-y -q --no-install-recommends -o DPkg::Lock::Timeout=300)

# There is no init system to rely on here, and the tests start their own instances on loopback:
# a policy-rc.d answering 101 ("action forbidden") makes the packages' postinst skip starting the
# daemons instead of failing. An existing policy is left as it is.
POLICY=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$POLICY" ]; then
  printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$POLICY" >/dev/null
  "${SUDO[@]}" chmod 755 "$POLICY"
  created_policy=1
fi
cleanup() {
  if [ "$created_policy" -eq 1 ]; then "${SUDO[@]}" rm -f "$POLICY"; fi
}
trap cleanup EXIT

has_candidate() {
  local candidate
  candidate="$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ { print $2 }')"
  [ -n "$candidate" ] && [ "$candidate" != "(none)" ]
}

updated=0
update_lists() {
  echo "prometheus deps: apt-get update"
  "${SUDO[@]}" apt-get -q update -o DPkg::Lock::Timeout=300
  updated=1
}

for pkg in "${PACKAGES[@]}"; do
  if ! has_candidate "$pkg"; then
    update_lists
    break
  fi
done

install_packages() {
  "${SUDO[@]}" apt-get install "${APT_OPTS[@]}" "${PACKAGES[@]}"
}

if ! install_packages; then
  # Stale package lists answer with 404s for superseded versions: refresh once and retry.
  if [ "$updated" -eq 0 ]; then
    update_lists
    install_packages
  else
    echo "prometheus deps: apt-get install ${PACKAGES[*]} failed" >&2
    exit 1
  fi
fi

for tool in promtool prometheus amtool docker-compose; do
  if ! have "$tool"; then
    echo "prometheus deps: $tool still missing after installing ${PACKAGES[*]}" >&2
    exit 1
  fi
done
if ! have alertmanager && ! have prometheus-alertmanager; then
  echo "prometheus deps: alertmanager still missing after installing prometheus-alertmanager" >&2
  exit 1
fi
echo "prometheus deps: installed ($(promtool --version 2>&1 | head -n 1))"
