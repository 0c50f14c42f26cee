#!/usr/bin/env bash
# Install the Debian packages the test suite runs for real: promtool/prometheus, PostgreSQL 15,
# Alertmanager and chromium (the dashboard's browser test).
# Idempotent: installs only what is missing. Needs root (CI runs as root) or sudo.
set -euo pipefail

missing=()
# the Debian package 'prometheus' has both: promtool (backfill) and the server (collector tests)
{ command -v promtool && command -v prometheus; } >/dev/null 2>&1 || missing+=(prometheus)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v prometheus-alertmanager >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)   # benchmarks/bench_api.py (optional there)
# the dashboard's browser test drives it through Playwright (never a downloaded browser)
[ -x /usr/bin/chromium ] || missing+=(chromium)

if [ ${#missing[@]} -eq 0 ]; then
  echo "system-deps: prometheus (promtool), postgresql, prometheus-alertmanager, wrk and chromium already installed"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "system-deps: need root to install ${missing[*]} (apt-get); run as root or install them" >&2
    exit 1
  fi
fi
echo "system-deps: installing ${missing[*]}"
$SUDO apt-get update -q
# policy-rc.d on these machines keeps the packaged services from starting; tests start their own
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
