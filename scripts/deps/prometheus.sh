#!/usr/bin/env bash
# Installs the real Prometheus tools the alert and deployment tests run: promtool and prometheus
# (Debian `prometheus`), alertmanager and amtool (Debian `prometheus-alertmanager`, whose daemon is
# /usr/bin/prometheus-alertmanager) and docker-compose (Debian `docker-compose`, used only to
# validate docker-compose.yml; no Docker engine is needed). Idempotent: does nothing when every
# tool is already on PATH. Never starts the Debian services.
set -euo pipefail

PACKAGES=(prometheus prometheus-alertmanager docker-compose)

# shellcheck source=lib/apt.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"

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

apt_prepare prometheus "Install ${PACKAGES[*]} (or the upstream
  prometheus, promtool, alertmanager, amtool and docker-compose binaries) and put them on PATH." "${PACKAGES[@]}"

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

apt_install prometheus "${PACKAGES[@]}"

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
