#!/usr/bin/env bash
# Installs what the test suite needs beyond npm packages, idempotently: each part is a script of its
# own that checks first and says clearly what is missing when it cannot install.
set -euo pipefail
cd "$(dirname "$0")/.."
for part in scripts/deps/*.sh; do
  [ -e "$part" ] || continue
  bash "$part"
done
